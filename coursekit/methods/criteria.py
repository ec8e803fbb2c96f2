"""Mask criteria of Zhou et al. 2019, "Deconstructing Lottery Tickets", registered by name.

A criterion scores every weight from its value at initialisation ``w_init`` and
after training ``w_final`` (same shape); :func:`coursekit.core.pruning.mask_from_scores`
keeps the highest scores. Frankle & Carbin's lottery tickets use ``large_final``.

>>> w_i, w_f = torch.tensor([1.0, -0.1, 0.5]), torch.tensor([0.2, -2.0, 0.6])
>>> score("movement", w_i, w_f)
tensor([0.8000, 1.9000, 0.1000])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

Criterion = Callable[[torch.Tensor, torch.Tensor, torch.Generator | None], torch.Tensor]
CRITERIA: dict[str, Criterion] = {}


def register(name: str, replace: bool = False) -> Callable[[Criterion], Criterion]:
    """Decorator registering a criterion as ``name``; a taken name needs ``replace=True``."""
    if name in CRITERIA and not replace:
        raise ValueError(f"criterion {name!r} is already registered; choose another name (or replace=True)")

    def add(fn: Criterion) -> Criterion:
        CRITERIA[name] = fn
        return fn
    return add


@register("large_final")
def large_final(w_init, w_final, generator=None):
    """Keep weights large after training, |w_f| (Han et al. 2015; the lottery ticket criterion)."""
    return w_final.abs()


@register("small_final")
def small_final(w_init, w_final, generator=None):
    """Keep weights small after training, −|w_f| (a control: expected to be poor)."""
    return -w_final.abs()


@register("large_init")
def large_init(w_init, w_final, generator=None):
    """Keep weights large at initialisation, |w_i|: a mask chosen before any training."""
    return w_init.abs()


@register("small_init")
def small_init(w_init, w_final, generator=None):
    """Keep weights small at initialisation, −|w_i|."""
    return -w_init.abs()


def percentile_rank(x: torch.Tensor) -> torch.Tensor:
    """Each entry's rank in its own tensor, scaled to (0, 1] (ties by position).

    >>> percentile_rank(torch.tensor([0.3, 0.1, 0.2]))
    tensor([1.0000, 0.3333, 0.6667])
    """
    ranks = torch.empty(x.numel(), device=x.device)
    ranks[torch.sort(x.flatten(), stable=True).indices] = torch.arange(1, x.numel() + 1, device=x.device,
                                                                        dtype=ranks.dtype)
    return (ranks / x.numel()).reshape(x.shape)


@register("large_init_large_final")
def large_init_large_final(w_init, w_final, generator=None):
    """Keep weights large at both ends: above the same percentile of |w_i| and of |w_f|.

    Zhou et al.'s code thresholds each magnitude at the same percentile of its own
    distribution; the score min(rank|w_i|, rank|w_f|) (percentile ranks within the
    tensor) keeps exactly the weights above a common percentile in both. A raw
    min(|w_i|, |w_f|) would mix two scales (trained weights are larger) instead.
    """
    return torch.minimum(percentile_rank(w_init.abs()), percentile_rank(w_final.abs()))


@register("small_init_small_final")
def small_init_small_final(w_init, w_final, generator=None):
    """Keep weights small at both ends: below the same percentile of |w_i| and of |w_f| (as above)."""
    return -torch.maximum(percentile_rank(w_init.abs()), percentile_rank(w_final.abs()))


@register("magnitude_increase")
def magnitude_increase(w_init, w_final, generator=None):
    """Keep weights whose magnitude grew most, |w_f| − |w_i| (Zhou et al.'s best with large_final)."""
    return w_final.abs() - w_init.abs()


@register("movement")
def movement(w_init, w_final, generator=None):
    """Keep weights that moved most, |w_f − w_i|."""
    return (w_final - w_init).abs()


@register("random")
def random(w_init, w_final, generator=None):
    """Random scores, uniform in [0, 1): the random-pruning control."""
    return torch.rand(w_final.shape, generator=generator, device=w_final.device)


def get(name: str) -> Criterion:
    """The criterion registered as ``name``."""
    if name not in CRITERIA:
        raise ValueError(f"no such criterion {name!r}; known criteria: {sorted(CRITERIA)}")
    return CRITERIA[name]


def score(name: str, w_init: torch.Tensor, w_final: torch.Tensor,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """Scores of criterion ``name`` for one tensor (``w_init`` and ``w_final`` of one shape)."""
    if w_init.shape != w_final.shape:
        raise ValueError(f"w_init {tuple(w_init.shape)} and w_final {tuple(w_final.shape)} differ in shape")
    return get(name)(w_init, w_final, generator)


def scores(name: str, init: Mapping[str, torch.Tensor], final: Mapping[str, torch.Tensor],
           names: list[str], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Scores of criterion ``name`` for each parameter in ``names`` (state dicts in, dict out)."""
    missing = [n for n in names if n not in init or n not in final]
    if missing:
        raise ValueError(f"parameters {missing} are missing from the initial or final weights")
    return {n: score(name, init[n], final[n], generator) for n in names}
