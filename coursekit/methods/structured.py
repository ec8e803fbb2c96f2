"""Structured pruning: remove whole filters and rebuild smaller layers; count what that saves.

Unstructured sparsity saves memory but rarely time (see :mod:`coursekit.methods.sparse_speed`);
removing a whole filter shrinks a dense layer, which any hardware runs faster.

**Filter pruning** (Li, Kadav, Durdanovic, Samet & Graf 2017, "Pruning Filters for
Efficient ConvNets") ranks the filters of a layer by their L1 norm ``Σ|K|`` and removes
the smallest, with no data. Removing output channel ``j`` of a conv removes

* row ``j`` of its weight (and bias),
* entry ``j`` of the BatchNorm after it (γ, β, running mean and variance),
* input channel ``j`` of the next conv, or, after a ``Flatten``, the ``H·W`` input
  features ``j·H·W … (j+1)·H·W − 1`` of the next Linear (channel-major order).

:func:`prune_filters` returns a new, smaller model (the original is untouched); it
understands ``nn.Sequential`` models of convs and Linear layers, BatchNorm,
activations, pools, Dropout and Flatten (the course's ``conv2``, ``conv4``, ``vgg_bn``,
``lenet300_100``; a neuron of a Linear layer is pruned like a filter). The last layer
is never pruned: its outputs are the classes. :func:`channel_mask` gives the same
pruning as a :class:`coursekit.core.masks.Mask` on the unpruned model: with the filter, its
bias and its BatchNorm γ and β at zero, the channel outputs exactly 0 (BatchNorm gives
β = 0, then ReLU 0), so both models compute the same function. Torch-Pruning (Fang et
al. 2023) does the same for any graph: :func:`torch_pruning_filters`.

Replacing a layer by a low-rank pair of layers, the other data-oblivious way to make a
network physically smaller, is in :mod:`coursekit.methods.lowrank`.
"""

from __future__ import annotations

import copy
import numbers
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from coursekit.core.masks import Mask

PRODUCERS = (nn.Conv1d, nn.Conv2d, nn.Linear)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
# Channel-wise modules that map a zero channel to zero: pruned channels stay silent through them.
PASS_THROUGH = (nn.ReLU, nn.Tanh, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
                nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout,
                nn.Flatten, nn.Identity)


@dataclass(frozen=True)
class _Unit:
    """A prunable layer, the BatchNorm after it, and the layer that reads its outputs."""

    layer: str
    norm: str | None
    consumer: str
    spatial: int  # inputs of the consumer per channel: H·W after a Flatten, else 1


def _width(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _units(model: nn.Module) -> list[_Unit]:
    """The filters :func:`prune_filters` can remove, checking the model is a chain it understands."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"filter surgery rebuilds nn.Sequential models, got {type(model).__name__}; "
                         "for other architectures use torch_pruning_filters")
    children = list(model.named_children())
    for name, m in children:
        if not isinstance(m, PRODUCERS + NORMS + PASS_THROUGH):
            raise ValueError(f"layer {name!r} is a {type(m).__name__}; filter surgery understands "
                             f"{', '.join(t.__name__ for t in PRODUCERS + NORMS + PASS_THROUGH)}")
        if getattr(m, "groups", 1) != 1:
            raise ValueError(f"layer {name!r} is a grouped conv (groups={m.groups}); not supported")
    units = []
    for i, (name, m) in enumerate(children):
        if not isinstance(m, PRODUCERS):
            continue
        norm = None
        for later_name, later in children[i + 1:]:
            if isinstance(later, NORMS):
                norm = later_name
            elif isinstance(later, PRODUCERS):
                fan_in = later.in_features if isinstance(later, nn.Linear) else later.in_channels
                if fan_in % _width(m):
                    raise ValueError(f"layer {later_name!r} reads {fan_in} inputs, not a multiple of the "
                                     f"{_width(m)} channels of layer {name!r}")
                units.append(_Unit(name, norm, later_name, fan_in // _width(m)))
                break
    return units


def filter_scores(model: nn.Module) -> dict[str, torch.Tensor]:
    """Layer name → L1 norm of each of its filters, ``Σ|K|`` (Li et al. 2017); the last layer excluded.

    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 0.0], [-3.0, 1.0]]))
    >>> filter_scores(net)
    {'0': tensor([2.0000, 0.5000, 4.0000])}
    """
    modules = dict(model.named_modules())
    return {u.layer: modules[u.layer].weight.detach().abs().flatten(1).sum(1) for u in _units(model)}


def select_filters(model: nn.Module, amount: float | Mapping[str, float],
                   scores: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Which filters each layer keeps: its highest scores, after removing ``round(amount × width)``.

    Args:
        amount: fraction of filters to remove, in ``[0, 1)``: one for every prunable layer,
            or ``{layer name: fraction}`` (layers left out keep all their filters).
        scores: layer name → score per filter; default :func:`filter_scores` (L1 norms).

    Returns:
        layer name → sorted int64 indices of the kept filters. Ties go to the earlier filter.
    """
    modules = dict(model.named_modules())
    widths = {u.layer: _width(modules[u.layer]) for u in _units(model)}
    scores = dict(filter_scores(model) if scores is None else scores)
    amounts = dict.fromkeys(scores, amount) if not isinstance(amount, Mapping) else dict(amount)
    unknown = (set(amounts) | set(scores)) - set(widths)
    if unknown:
        raise ValueError(f"no prunable layers named {sorted(unknown)}; the prunable layers are "
                         f"{list(widths)} (the last layer's outputs are the classes)")
    wrong = {n: (s.numel(), widths[n]) for n, s in scores.items() if s.numel() != widths[n]}
    if wrong:
        raise ValueError(f"scores need one entry per filter; (scores, filters) per layer: {wrong}")
    missing = set(amounts) - set(scores)
    if missing:
        raise ValueError(f"no scores for layers {sorted(missing)}")
    nan = sorted(n for n, s in scores.items() if torch.isnan(torch.as_tensor(s, dtype=torch.float)).any())
    if nan:
        raise ValueError(f"scores of layers {nan} contain NaN; a filter's score must be a number")
    kept = {}
    for name, a in amounts.items():
        if isinstance(a, bool) or not isinstance(a, numbers.Real) or not 0 <= a < 1:
            raise ValueError(f"amount for layer {name!r} must lie in [0, 1), got {a!r}")
        width = scores[name].numel()
        n_keep = width - round(a * width)
        if n_keep < 1:
            raise ValueError(f"amount {a} removes all {width} filters of layer {name!r}, which would "
                             "disconnect the network; keep at least one")
        order = torch.sort(scores[name].detach().cpu(), descending=True, stable=True).indices
        kept[name] = order[:n_keep].sort().values
    return kept


def _sliced(module: nn.Module, out_idx: torch.Tensor | None, in_idx: torch.Tensor | None) -> nn.Module:
    """A copy of ``module`` keeping output entries ``out_idx`` and inputs ``in_idx`` (None: all)."""
    new = copy.deepcopy(module)
    with torch.no_grad():
        if isinstance(module, NORMS):
            for attr in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(module, attr)
                if t is not None:
                    t = t[out_idx.to(t.device)].clone()
                    setattr(new, attr, nn.Parameter(t) if attr in ("weight", "bias") else t)
            new.num_features = len(out_idx)
            return new
        w, b = module.weight, module.bias
        if out_idx is not None:
            w, b = w[out_idx.to(w.device)], None if b is None else b[out_idx.to(b.device)]
        if in_idx is not None:
            w = w[:, in_idx.to(w.device)]
        new.weight = nn.Parameter(w.clone(), requires_grad=module.weight.requires_grad)
        if b is not None:
            new.bias = nn.Parameter(b.clone(), requires_grad=module.bias.requires_grad)
    if isinstance(module, nn.Linear):
        new.out_features, new.in_features = w.shape
    else:
        new.out_channels, new.in_channels = w.shape[:2]
    return new


def _kept_indices(name: str, idx: object, width: int) -> torch.Tensor:
    """``idx`` as an int64 CPU tensor, refused unless it lists distinct filters in ``0..width-1`` (one at least)."""
    given = torch.as_tensor(idx)
    if given.numel() and (given.is_floating_point() or given.is_complex() or given.dtype == torch.bool):
        raise ValueError(f"kept filters of layer {name!r} must be int indices, got {given.dtype} {given.tolist()}")
    idx = given.to(torch.long).cpu().flatten()
    if idx.numel() == 0:
        raise ValueError(f"keeping no filter of layer {name!r} removes all {width} of them, which "
                         "would disconnect the network; keep at least one")
    if idx.min() < 0 or idx.max() >= width or idx.unique().numel() != idx.numel():
        raise ValueError(f"kept filters of layer {name!r} must be distinct indices in 0..{width - 1}, "
                         f"got {idx.tolist()}")
    return idx


def remove_filters(model: nn.Module, kept: Mapping[str, torch.Tensor]) -> nn.Module:
    """A smaller copy of ``model`` with only the ``kept`` filters (see :func:`select_filters`)."""
    units = {u.layer: u for u in _units(model)}
    unknown = set(kept) - set(units)
    if unknown:
        raise ValueError(f"no prunable layers named {sorted(unknown)}; the prunable layers are {list(units)}")
    modules = dict(model.named_modules())
    out_idx, in_idx = {}, {}
    for name, idx in kept.items():
        u, idx = units[name], _kept_indices(name, idx, _width(modules[name]))
        out_idx[name] = idx
        if u.norm is not None:
            out_idx[u.norm] = idx
        in_idx[u.consumer] = (idx[:, None] * u.spatial + torch.arange(u.spatial)).flatten()
    pruned = copy.deepcopy(model)
    for name in out_idx.keys() | in_idx.keys():
        setattr(pruned, name, _sliced(getattr(model, name), out_idx.get(name), in_idx.get(name)))
    return pruned


def prune_filters(model: nn.Module, amount: float | Mapping[str, float],
                  scores: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """A copy of ``model`` without the lowest-scoring filters: :func:`select_filters`, then surgery.

    >>> from coursekit import models
    >>> net = models.build("vgg_bn", (3, 16, 16), 10)
    >>> [m.out_channels for m in prune_filters(net, 0.5) if isinstance(m, nn.Conv2d)]
    [8, 16, 32]
    """
    return remove_filters(model, select_filters(model, amount, scores))


def channel_mask(model: nn.Module, kept: Mapping[str, torch.Tensor]) -> Mask:
    """The pruning of :func:`remove_filters` as a :class:`Mask` on the unpruned ``model``.

    Masks each removed filter's weights, its bias and its BatchNorm γ and β, so the
    channel outputs exactly zero; ``mask.apply(model)`` then computes what the pruned
    model computes, and ``mask.hook(model)`` keeps it so while training.
    """
    units = {u.layer: u for u in _units(model)}
    params, modules = dict(model.named_parameters()), dict(model.named_modules())
    tensors = {}
    for name, idx in kept.items():
        if name not in units:
            raise ValueError(f"no prunable layer named {name!r}; the prunable layers are {list(units)}")
        idx = _kept_indices(name, idx, _width(modules[name]))
        for owner in (name, units[name].norm):
            for kind in ("weight", "bias"):
                p = params.get(f"{owner}.{kind}") if owner is not None else None
                if p is not None:
                    alive = torch.zeros(p.shape[0], dtype=torch.bool, device=p.device)
                    alive[torch.as_tensor(idx, dtype=torch.long, device=p.device)] = True
                    tensors[f"{owner}.{kind}"] = alive.reshape(-1, *[1] * (p.dim() - 1)).expand_as(p).clone()
    return Mask(tensors, model)


# -- cost ------------------------------------------------------------------------------------
def count_parameters(model: nn.Module, nonzero: bool = False) -> int:
    """Number of parameters (weights, biases, BatchNorm γ and β); with ``nonzero``, only those not zero.

    A weight mask leaves the first number unchanged (the zeros are still stored); the
    second is what a sparse format would have to store.
    """
    return sum(int(torch.count_nonzero(p)) if nonzero else p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, input_shape: Sequence[int], skip_zeros: bool = False) -> int:
    """Multiply–accumulates of the conv and Linear layers for one input of ``input_shape`` (no batch axis).

    A conv does ``in/groups × k_h × k_w`` MACs per output value, a Linear ``in_features``;
    forward hooks count the output values on a zero input. BatchNorm, activations and pools
    do no multiply–adds and are not counted, though on a small network they can take much
    of the time (:func:`coursekit.methods.sparse_speed.time_by_layer_type`). With ``skip_zeros`` a zero weight costs
    nothing: the MACs an ideal sparse kernel would do (each layer's count times its
    density), what papers report as the FLOPs of an unstructured-pruned network.
    """
    if isinstance(input_shape, (int, str)) or not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise ValueError(f"input_shape must be the shape of one example without the batch axis, e.g. (1, 28, 28); "
                         f"got {input_shape!r}")
    param = next(model.parameters(), None)
    if param is None:
        raise ValueError("the model has no parameters, so no conv or Linear layer to count")
    total = 0

    def count(module, inputs, output):
        nonlocal total
        per_output = (module.in_features if isinstance(module, nn.Linear)
                      else module.in_channels // module.groups * module.weight[0, 0].numel())
        if skip_zeros:  # every output value of a filter uses that filter's nonzero weights
            total += output.numel() // module.weight.shape[0] * int(torch.count_nonzero(module.weight))
        else:
            total += output.numel() * per_output

    handles = [m.register_forward_hook(count) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(1, *input_shape, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


@torch.no_grad()
def latency(model: nn.Module, x: torch.Tensor, repeats: int = 20, warmup: int = 3) -> float:
    """Median seconds of one forward pass of ``x`` in eval mode (CUDA synchronised)."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats!r}, warmup={warmup!r}")
    if len(x) == 0:
        raise ValueError("x holds no example to time; give at least one")
    was_training = model.training
    model.eval()
    times = []
    for i in range(warmup + repeats):
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    model.train(was_training)
    return statistics.median(times)


# -- Torch-Pruning ---------------------------------------------------------------------------
def torch_pruning_filters(model: nn.Module, example_input: torch.Tensor,
                          amount: float | Mapping[str, float]) -> nn.Module:
    """A copy of ``model`` filter-pruned by Torch-Pruning (Fang et al. 2023, "DepGraph") with L1 norms.

    Torch-Pruning traces ``example_input`` through the model to find which layers must
    shrink together (any graph, residuals included), scores each group by the L1 norm of
    its first layer's filters (``MagnitudeImportance(p=1, group_reduction="first")``, Li et
    al.'s rule) and keeps ``int(width × (1 − amount))`` filters per layer (our
    :func:`select_filters` keeps ``width − round(amount × width)``: the same whenever
    ``amount × width`` is an integer). The last prunable module (the classifier) is left
    whole. ``amount`` may be ``{module name: fraction}``; other layers are then not pruned.
    """
    try:
        import torch_pruning as tp
    except ImportError as err:
        raise ImportError("torch_pruning_filters needs Torch-Pruning: pip install torch-pruning") from err
    model = copy.deepcopy(model)
    modules = dict(model.named_modules())
    prunable = [m for m in modules.values() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    ratios = {"pruning_ratio": amount} if not isinstance(amount, Mapping) else {
        "pruning_ratio": 0.0, "pruning_ratio_dict": {modules[n]: a for n, a in amount.items()}}
    importance = tp.importance.MagnitudeImportance(p=1, group_reduction="first", normalizer=None)
    pruner = tp.pruner.BasePruner(model, example_input, importance=importance,
                                  ignored_layers=prunable[-1:], **ratios)
    pruner.step()
    return model
