"""Per-layer budgets: how many weights each layer keeps at a given overall density (slide 10).

A budget is ``{parameter name: density of that layer}``, the third kind of scope of
:func:`coursekit.core.pruning.mask_from_scores` (beside ``"global"`` and ``"layerwise"``):

* :func:`uniform`: every layer keeps the same fraction (the ``"layerwise"`` scope);
* :func:`erk`: Erdős–Rényi-Kernel (Evci et al. 2020, "Rigging the Lottery"): a layer's
  density is proportional to ``Σ dims / Π dims`` of its weight (``(n_in + n_out) /
  (n_in n_out)`` for a Linear layer, plus the kernel's height and width for a
  convolution), scaled so the whole network keeps the requested density; a layer the
  rule would fill beyond 1 is kept dense and the rest rescaled;
* :func:`erdos_renyi`: Mocanu et al. 2018's sparse layers, ``ε (n_in + n_out)``
  connections per layer (density ``ε (n_in + n_out) / (n_in n_out)``), set by ``ε``;
* :func:`global_with_floor`: one global threshold on the scores, but every layer keeps at
  least ``minimum`` weights (the simplest guard against layer collapse).

:func:`random_mask` draws a mask with a budget's densities (the start of SET and RigL).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from coursekit.core.masks import Mask, prunable_parameters

Shapes = Mapping[str, torch.Size]


def shapes_of(model: nn.Module) -> dict[str, torch.Size]:
    """The shapes of ``model``'s prunable weights, by parameter name."""
    shapes = {n: p.shape for n, p in prunable_parameters(model).items()}
    if not shapes:
        raise ValueError(f"{type(model).__name__} has no prunable weights (Linear or convolution)")
    return shapes


def _check(shapes: Shapes, density: float) -> dict[str, int]:
    if not shapes:
        raise ValueError("a budget needs at least one layer")
    if isinstance(density, bool) or not isinstance(density, int | float) or not 0 < density <= 1:
        raise ValueError(f"density must lie in (0, 1] (sparsity in [0, 1)), got {density!r}")
    return {n: math.prod(s) for n, s in shapes.items()}


def achieved(budget: Mapping[str, float], shapes: Shapes) -> float:
    """The overall density of ``budget`` (the weights it keeps, rounded per layer as masks are, over all)."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    return sum(max(1, round(budget[n] * sizes[n])) for n in sizes) / sum(sizes.values())


def uniform(shapes: Shapes, density: float) -> dict[str, float]:
    """Every layer at ``density``."""
    _check(shapes, density)
    return dict.fromkeys(shapes, float(density))


def erk(shapes: Shapes, density: float, power: float = 1.0) -> dict[str, float]:
    """Erdős–Rényi-Kernel densities (Evci et al. 2020, Appendix: their ``erk_power_scale`` is ``power``).

    Solves ``Σ_l ε p_l n_l = density · Σ_l n_l`` for ``ε`` with ``p_l = (Σ dims_l / Π dims_l)^power``;
    while the densest layer would need ``ε p_l > 1`` it is made dense and ``ε`` solved
    again over the others.
    """
    sizes = _check(shapes, density)
    raw = {n: (sum(shapes[n]) / sizes[n]) ** power for n in shapes}
    dense: set[str] = set()
    while True:
        kept = density * sum(sizes.values()) - sum(sizes[n] for n in dense)
        divisor = sum(raw[n] * sizes[n] for n in shapes if n not in dense)
        if divisor == 0:  # every layer dense
            return dict.fromkeys(shapes, 1.0)
        eps = kept / divisor
        over = [n for n in shapes if n not in dense and eps * raw[n] > 1]
        if not over:
            return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}
        top = max(raw[n] for n in over)
        dense |= {n for n in over if raw[n] == top}


def erdos_renyi(shapes: Shapes, epsilon: float) -> dict[str, float]:
    """Mocanu et al. 2018's densities ``ε (n_in + n_out) / (n_in n_out)`` (capped at 1), for Linear layers.

    ``n_out = shape[0]``, ``n_in`` the product of the other dimensions.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not epsilon > 0:
        raise ValueError(f"ε must be a positive number (connections per unit), got {epsilon!r}")
    if not shapes:
        raise ValueError("a budget needs at least one layer")
    out = {}
    for n, s in shapes.items():
        n_out, n_in = s[0], math.prod(s[1:])
        out[n] = min(1.0, epsilon * (n_in + n_out) / (n_in * n_out))
    return out


def global_with_floor(scores: Mapping[str, torch.Tensor], density: float, minimum: int = 1) -> dict[str, float]:
    """A global threshold on ``scores`` at ``density``, but every layer keeps at least ``minimum`` weights.

    Layers the global threshold would leave below ``minimum`` keep exactly ``minimum``; the
    threshold over the other layers is then raised so that the total is unchanged.
    """
    sizes = _check({n: s.shape for n, s in scores.items()}, density)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
        raise ValueError(f"minimum must be an int ≥ 1 (weights per layer), got {minimum!r}")
    small = {n: k for n, k in sizes.items() if k < minimum}
    if small:
        raise ValueError(f"cannot keep {minimum} weights in layers that have fewer: {small}")
    total = sum(sizes.values())
    k = round(density * total)
    if k < minimum * len(sizes):
        raise ValueError(f"density {density} keeps {k} weights, fewer than {minimum} in each of {len(sizes)} layers")
    floored: dict[str, int] = {}
    while True:
        rest = [n for n in scores if n not in floored]
        budget = k - sum(floored.values())
        flat = torch.cat([scores[n].detach().flatten().float().cpu() for n in rest])
        keep = torch.zeros_like(flat, dtype=torch.bool)
        keep[torch.sort(flat, descending=True, stable=True).indices[:budget]] = True
        counts = dict(zip(rest, (int(p.sum()) for p in keep.split([sizes[n] for n in rest])), strict=True))
        under = {n: c for n, c in counts.items() if c < minimum}
        if not under:
            return {n: floored.get(n, counts.get(n, 0)) / sizes[n] for n in scores}
        floored |= dict.fromkeys(under, minimum)


def random_mask(shapes: Shapes, budget: Mapping[str, float], generator: torch.Generator | None = None) -> Mask:
    """A mask keeping ``round(budget[name] · size)`` (at least 1) uniformly random weights per layer."""
    missing = set(shapes) - set(budget)
    if missing:
        raise ValueError(f"the budget has no density for {sorted(missing)}")
    tensors = {}
    for n, s in shapes.items():
        size = math.prod(s)
        k = max(1, round(budget[n] * size))
        keep = torch.zeros(size, dtype=torch.bool)
        keep[torch.randperm(size, generator=generator)[:k]] = True
        tensors[n] = keep.view(s)
    return Mask(tensors)
