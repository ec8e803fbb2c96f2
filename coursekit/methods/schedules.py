"""Pruning schedules: how fast density falls.

* :func:`one_shot`: prune once to the final density (Han et al. 2015 with one round).
* :func:`iterative`: remove a fraction ``p`` **of the remaining** weights per round,
  so after ``r`` rounds ``(1 - p)^r`` **of all** remain (Frankle & Carbin 2019: p = 0.2);
  :func:`iterative_budgets` gives each layer its own rate (their conv nets prune the
  output layer at half the rate).
* :func:`cubic_density` and :class:`GradualPruning`: prune a little every few steps
  *during* training, sparsity following Zhu & Gupta 2017's cubic ramp
  s_t = s_f + (s_i − s_f)(1 − (t − t_0)/(t_1 − t_0))³.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from coursekit.core.hooks import StepContext
from coursekit.core.masks import Mask
from coursekit.core.pruning import mask_from_scores


def _check_fraction(value: float, name: str, low_open: bool = True) -> None:
    if not isinstance(value, (int, float)) or not (0 < value < 1 if low_open else 0 < value <= 1):
        raise ValueError(f"{name} must lie in (0, 1{')' if low_open else ']'}, got {value!r}")


def one_shot(density_of_all: float) -> list[float]:
    """One round straight to ``density_of_all``."""
    _check_fraction(density_of_all, "density_of_all", low_open=False)
    return [float(density_of_all)]


def iterative(prune_fraction_of_remaining: float, rounds: int) -> list[float]:
    """Densities (of all weights) after each of ``rounds`` rounds: ``(1 - p)^r``.

    >>> [round(d, 3) for d in iterative(0.2, 3)]
    [0.8, 0.64, 0.512]
    """
    _check_fraction(prune_fraction_of_remaining, "prune_fraction_of_remaining")
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive int, got {rounds!r}")
    return [(1 - prune_fraction_of_remaining) ** r for r in range(1, rounds + 1)]


def iterative_budgets(prune_fraction_of_remaining: float, rounds: int,
                      layers: list[str], rate_multipliers: Mapping[str, float] | None = None
                      ) -> list[dict[str, float]]:
    """Per-layer densities after each round; layer ``l`` prunes ``p × multiplier_l`` of its remaining.

    ``rate_multipliers`` defaults to 1 for every layer, e.g. ``{"5.weight": 0.5}`` prunes
    LeNet's output layer at half the rate (Frankle & Carbin 2019, Appendix).
    """
    if isinstance(layers, str) or not layers:
        raise ValueError(f"layers must be a non-empty list of layer names, got {layers!r}")
    rate_multipliers = dict(rate_multipliers or {})
    unknown = set(rate_multipliers) - set(layers)
    if unknown:
        raise ValueError(f"rate_multipliers name unknown layers {sorted(unknown)}; layers: {layers}")
    iterative(prune_fraction_of_remaining, rounds)  # validates both
    rates = {layer: prune_fraction_of_remaining * rate_multipliers.get(layer, 1.0) for layer in layers}
    bad = {layer: rate for layer, rate in rates.items() if not 0 < rate < 1}
    if bad:
        raise ValueError(f"each layer's rate, prune_fraction_of_remaining × its multiplier, must lie in (0, 1); "
                         f"got {bad}")
    return [{layer: (1 - rate) ** r for layer, rate in rates.items()} for r in range(1, rounds + 1)]


def cubic_density(step: int, final_density_of_all: float, start_step: int, end_step: int,
                  initial_density_of_all: float = 1.0) -> float:
    """Zhu & Gupta 2017: density at ``step`` on the cubic ramp from ``start_step`` to ``end_step``.

    Pruning is fast early (many redundant weights) and slow late, when few remain.

    >>> cubic_density(0, 0.1, 0, 100), cubic_density(100, 0.1, 0, 100)
    (1.0, 0.1)
    """
    _check_fraction(final_density_of_all, "final_density_of_all", low_open=False)
    _check_fraction(initial_density_of_all, "initial_density_of_all", low_open=False)
    if initial_density_of_all < final_density_of_all:
        raise ValueError(f"initial_density_of_all {initial_density_of_all} is below final_density_of_all "
                         f"{final_density_of_all}; pruning only removes weights")
    if not 0 <= start_step < end_step:
        raise ValueError(f"need 0 <= start_step < end_step, got {start_step}, {end_step}")
    s_i, s_f = 1 - initial_density_of_all, 1 - final_density_of_all
    progress = min(max((step - start_step) / (end_step - start_step), 0.0), 1.0)
    return 1 - (s_f + (s_i - s_f) * (1 - progress) ** 3)


class GradualPruning:
    """A :func:`coursekit.core.train.fit` hook: magnitude pruning on Zhu & Gupta's cubic schedule.

    Every ``every`` steps between ``start_step`` and ``end_step`` the smallest surviving
    weights (global scope by default) are removed to reach :func:`cubic_density`;
    after every step pruned weights are re-zeroed. ``mask`` holds the current mask.
    """

    masks_weights = True  # fit runs it before other hooks

    def __init__(self, model: nn.Module, final_density_of_all: float, start_step: int, end_step: int,
                 every: int = 10, scope: str = "global",
                 mask: Mask | None = None) -> None:
        cubic_density(start_step, final_density_of_all, start_step, end_step)  # validates
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        if scope not in ("global", "layerwise"):
            raise ValueError(f"GradualPruning's scope must be 'global' or 'layerwise' (one density for all, "
                             f"reached step by step), got {scope!r}")
        self.model, self.final, self.start, self.end, self.every = (
            model, final_density_of_all, start_step, end_step, every)
        self.scope = scope
        self.mask = mask if mask is not None else Mask.ones_like(model)
        self._rezero = self.mask.hook(model)

    def __call__(self, ctx: StepContext) -> None:
        step = ctx.step
        if self.start <= step <= self.end and (step - self.start) % self.every == 0:
            target = cubic_density(step, self.final, self.start, self.end)
            if target < self.mask.density:
                params = dict(self.model.named_parameters())
                scores = {n: params[n].detach().abs() for n in self.mask}
                self.mask = mask_from_scores(scores, target, self.scope, previous=self.mask)
                self._rezero = self.mask.hook(self.model)
        self._rezero(ctx)

