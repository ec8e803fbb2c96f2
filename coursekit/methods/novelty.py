"""Novelty search's measure of novelty and its archive (slide 13; Lehman & Stanley 2011).

"Abandoning Objectives: Evolution through the Search for Novelty Alone": instead of
rewarding progress toward the goal, reward being *different*. Each individual's
*behaviour* (in the maze, where the robot ends up) is compared with those of the current
population and of an archive of past novel behaviours; its novelty is the mean distance
to its ``k`` nearest neighbours among them (:func:`novelty_scores`). An individual whose
novelty exceeds a threshold enters the archive; the threshold falls when nothing has been
added for a while and rises when too much is (:class:`Archive`).
"""

from __future__ import annotations

import torch


def novelty_scores(behaviours: torch.Tensor, archive: torch.Tensor | None = None, k: int = 15) -> torch.Tensor:
    """Mean distance of each behaviour (row) to its ``k`` nearest others in the population and the archive.

    An individual is not its own neighbour; with fewer than ``k`` others, all of them count.
    """
    if behaviours.ndim != 2 or behaviours.shape[0] < 1:
        raise ValueError(f"behaviours must be (individuals ≥ 1, features), got shape {tuple(behaviours.shape)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k (novelty neighbours) must be a positive int, got {k!r}")
    if archive is not None and archive.numel() and (archive.ndim != 2 or archive.shape[1] != behaviours.shape[1]):
        raise ValueError(f"archive behaviours have {archive.shape[-1]} features, the population {behaviours.shape[1]}")
    others = behaviours if archive is None or archive.numel() == 0 else torch.cat([behaviours, archive.to(behaviours)])
    d = torch.cdist(behaviours.double(), others.double())
    n = behaviours.shape[0]
    d[torch.arange(n), torch.arange(n)] = float("inf")  # not its own neighbour
    m = min(k, others.shape[0] - 1)
    if m == 0:
        return torch.zeros(n, dtype=torch.float64)
    return d.topk(m, dim=1, largest=False).values.mean(1)


class Archive:
    """The archive of novel behaviours with Lehman & Stanley's adaptive threshold.

    :meth:`update` adds every behaviour whose novelty exceeds ``threshold``; after
    ``patience`` generations without an addition the threshold is multiplied by ``lower``
    (0.95 in their code), and after a generation adding more than ``too_many`` it is
    multiplied by ``raise_by`` (1.2).
    """

    def __init__(self, threshold: float, patience: int = 10, too_many: int = 4, lower: float = 0.95,
                 raise_by: float = 1.2):
        if not threshold > 0 or not 0 < lower <= 1 or not raise_by >= 1:
            raise ValueError(f"the archive threshold must be positive, lower in (0, 1] and raise_by ≥ 1; got "
                             f"{threshold}, {lower}, {raise_by}")
        if patience < 1 or too_many < 1:
            raise ValueError(f"patience and too_many must be positive, got {patience}, {too_many}")
        self.threshold, self.patience, self.too_many = float(threshold), patience, too_many
        self.lower, self.raise_by = lower, raise_by
        self.behaviours = torch.empty(0, 0, dtype=torch.float64)
        self._idle = 0

    def __len__(self) -> int:
        return self.behaviours.shape[0]

    def update(self, behaviours: torch.Tensor, novelty: torch.Tensor) -> int:
        """Add the behaviours whose novelty exceeds the threshold, adapt the threshold; returns how many."""
        if novelty.shape != (behaviours.shape[0],):
            raise ValueError(f"need one novelty per behaviour: {behaviours.shape[0]} behaviours, novelty "
                             f"{tuple(novelty.shape)}")
        new = behaviours[novelty > self.threshold].double()
        if len(new):
            self.behaviours = new if len(self) == 0 else torch.cat([self.behaviours, new])
        self._idle = 0 if len(new) else self._idle + 1
        if self._idle >= self.patience:
            self.threshold *= self.lower
            self._idle = 0
        elif len(new) > self.too_many:
            self.threshold *= self.raise_by
        return len(new)
