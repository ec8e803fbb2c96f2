"""Scores → mask: keep the highest-scoring weights at a target density.

One function, :func:`mask_from_scores`, serves every criterion of the course
(magnitude, movement, saliencies, ...). A criterion produces *scores* (parameter
name → tensor, higher = more worth keeping); this module decides *how many* to
keep and *where*:

* ``scope="global"``: one threshold over all layers (Frankle & Carbin 2019 pruned
  their VGG-19 and ResNet-18 this way; their LeNet and Conv-2/4/6, and Han et al.
  2015, pruned layer by layer). A layer may lose all its weights: that is layer
  collapse (Tanaka et al. 2020), shown, not hidden: check ``Mask.table()``.
* ``scope="layerwise"``: every layer keeps the same fraction (Han et al. 2015's
  per-layer thresholds; Frankle & Carbin's LeNet and Conv-2/4/6).
* a budget ``{name: density}``: each layer keeps its own fraction (ERK budgets,
  Frankle & Carbin's slower pruning of the output layer).

Rules, chosen deliberately and tested:

* the number kept is ``round(density × count)``; with layer-wise scopes at least
  one weight per layer is kept, so a tiny density cannot silently disconnect the
  network; a global density that rounds to no weight at all is an error;
* ties are broken by position, so the result is exact and repeatable: within a
  layer the earlier entry in flattened order wins; across layers (global scope)
  tied weights are shared in proportion to each layer's tied weights, so equal
  scores never empty the last layers merely for coming last;
* a NaN score is an error (a saliency that produced NaN says nothing about the
  weight), unless the weight was already pruned by ``previous``;
* with ``previous=``, a weight already pruned stays pruned: its score counts as
  −∞ (the ``torch.nn.utils.prune`` contract), and asking for more weights than are
  still alive is an error.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import torch

from coursekit.core.masks import Mask

Scope = str | Mapping[str, float]
SCOPES = ("global", "layerwise")


def _check_density(density: float, what: str = "density_of_all") -> None:
    if isinstance(density, bool) or not isinstance(density, numbers.Real):
        raise ValueError(f"{what} must be a number in (0, 1], got {type(density).__name__} {density!r}")
    if not 0 < density <= 1:
        raise ValueError(f"{what} must lie in (0, 1], got {density!r}")


def _top_k(flat: torch.Tensor, k: int, tie_break: torch.Tensor | None = None) -> torch.Tensor:
    """Bool vector keeping the ``k`` largest entries of ``flat``.

    Ties go to the smaller ``tie_break`` value, then to the earlier index.
    """
    keep = torch.zeros_like(flat, dtype=torch.bool)
    if k > 0:
        if tie_break is None:
            order = torch.sort(flat, descending=True, stable=True).indices
        else:
            first = torch.sort(tie_break, stable=True).indices
            order = first[torch.sort(flat[first], descending=True, stable=True).indices]
        keep[order[:k]] = True
    return keep


def _check_no_nan(live: Mapping[str, torch.Tensor], previous: Mask | None) -> None:
    """NaN scores of weights still alive are refused, naming the layers."""
    bad = {}
    for n, s in live.items():
        nan = torch.isnan(s)
        if previous is not None:
            nan &= previous[n].flatten().to(s.device)
        if nan.any():
            bad[n] = int(nan.sum())
    if bad:
        raise ValueError(f"scores contain NaN for weights still alive (layer: count) {bad}; the criterion "
                         "failed for them (check for 0/0 or an exploded loss); scores must be numbers")


def mask_from_scores(scores: Mapping[str, torch.Tensor], density_of_all: float | None = None,
                     scope: Scope = "global", previous: Mask | None = None) -> Mask:
    """Keep the highest-scoring weights so that ``density_of_all`` of them remain.

    Args:
        scores: parameter name → scores of that parameter's shape (higher = keep).
        density_of_all: fraction of **all** scored weights to keep, in (0, 1]; for the
            ``"global"`` and ``"layerwise"`` scopes. Leave it out with a budget.
        scope: ``"global"``, ``"layerwise"`` or a budget ``{name: density of that layer}``.
        previous: an existing mask; weights it pruned stay pruned.

    Returns:
        a :class:`Mask` over the names of ``scores``.

    >>> s = {"w": torch.tensor([[0.1, 0.5], [0.3, 0.2]])}
    >>> mask_from_scores(s, 0.5)["w"]
    tensor([[False,  True],
            [ True, False]])
    """
    if not isinstance(scores, Mapping):
        raise ValueError(f"scores must be a {{parameter name: tensor}} mapping, got {type(scores).__name__}")
    if not scores:
        raise ValueError("no scores given")
    if not isinstance(scope, (str, Mapping)):
        raise ValueError(f"scope must be one of {SCOPES} or a {{layer name: density}} budget, got {scope!r}")
    if isinstance(scope, Mapping):
        if density_of_all is not None:
            raise ValueError("give either density_of_all or a per-layer budget, not both")
    else:
        _check_density(density_of_all)
    if previous is not None and previous.keys() != scores.keys():
        raise ValueError(f"previous mask covers {sorted(previous)} but scores cover {sorted(scores)}")
    for n, s in scores.items():
        if not isinstance(s, torch.Tensor) or s.is_complex() or s.numel() == 0:
            what = f"a {s.dtype} tensor" if isinstance(s, torch.Tensor) else type(s).__name__
            raise ValueError(f"scores of {n!r} must be a non-empty real tensor, got {what} "
                             f"{tuple(s.shape) if isinstance(s, torch.Tensor) else ''}".rstrip())
        if previous is not None and previous[n].shape != s.shape:
            raise ValueError(f"scores of {n!r} have shape {tuple(s.shape)} but the previous mask "
                             f"{tuple(previous[n].shape)}")
    live = {n: s.detach().float().flatten() for n, s in scores.items()}
    _check_no_nan(live, previous)
    if previous is not None:
        live = {n: s.masked_fill(~previous[n].flatten().to(s.device), float("-inf"))
                for n, s in live.items()}
        alive = previous.kept
    else:
        alive = sum(s.numel() for s in live.values())

    if scope == "global":
        total = sum(s.numel() for s in live.values())
        k = round(density_of_all * total)
        if k == 0:
            raise ValueError(f"density_of_all {density_of_all} keeps none of the {total} weights; the "
                             f"smallest density that keeps one is {1 / total:.3g}")
        if k > alive:
            raise ValueError(f"density_of_all {density_of_all} keeps {k} weights but only {alive} "
                             "are still alive; a new mask can only remove weights")
        sizes = [s.numel() for s in live.values()]
        position = torch.cat([torch.arange(n, dtype=torch.float64) / n for n in sizes])  # within its layer
        flat = _top_k(torch.cat([s.cpu() for s in live.values()]), k, tie_break=position)
        parts = dict(zip(live, torch.split(flat, sizes), strict=True))
        return Mask({n: parts[n].to(scores[n].device).reshape(scores[n].shape) for n in live})

    if isinstance(scope, str):
        if scope != "layerwise":
            raise ValueError(f"unknown scope {scope!r}; expected one of {SCOPES} or a "
                             "{layer name: density} budget")
        budget = dict.fromkeys(live, density_of_all)
    else:
        budget = dict(scope)
        missing, extra = set(live) - set(budget), set(budget) - set(live)
        if missing or extra:
            raise ValueError(f"budget must name exactly the scored layers; missing {sorted(missing)}, "
                             f"unknown {sorted(extra)}")
        for name, d in budget.items():
            _check_density(d, f"budget density of {name!r}")
    tensors = {}
    for name, s in live.items():
        k = max(1, round(budget[name] * s.numel()))
        still = int(torch.isfinite(s).sum()) if previous is not None else s.numel()
        if k > still:
            raise ValueError(f"layer {name!r}: density {budget[name]} keeps {k} weights but only "
                             f"{still} are still alive; a new mask can only remove weights")
        tensors[name] = _top_k(s, k).reshape(scores[name].shape)
    return Mask(tensors)
