"""Low-rank replacement: a Linear or conv layer becomes two thinner layers (truncated SVD).

**Low rank** (Denton, Zaremba, Bruna, LeCun & Fergus 2014, "Exploiting Linear Structure
Within Convolutional Networks for Efficient Evaluation"): a Linear weight ``W``
(``out × in``) is replaced by the truncated SVD ``W ≈ B·C`` with ``B = U_r √S_r``
(``out × r``) and ``C = √S_r V_rᵀ`` (``r × in``), i.e. two Linear layers with ``r·(in +
out)`` weights, fewer than ``in·out`` when ``r < in·out / (in + out)``. A conv is
factorised the same way through its ``out × (in·k·k)`` matrix: a k×k conv with ``r``
output channels, then a 1×1 conv (the channel decomposition of Zhang, Zou, He & Sun
2016; Jaderberg, Vedaldi & Zisserman 2014 split k×k into k×1 then 1×k instead).

Like filter pruning (:mod:`coursekit.methods.structured`) and unlike a weight mask, the result is
a smaller dense network: fewer parameters *and* fewer multiply–adds, whatever the
hardware. The rank of each layer comes from a number (``rank``) or a rule
(:func:`choose_rank`: kept energy, parameter budget or share of the singular values).

>>> from torch import nn
>>> pair = factorize(nn.Linear(100, 50), rank=10)
>>> [tuple(m.weight.shape) for m in pair]  # 1500 weights instead of 5000
[(10, 100), (50, 10)]
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from coursekit.core import runtime


def svd_factors(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``B (m × r)`` and ``C (r × n)`` with ``B @ C`` the best rank-``r`` approximation of ``matrix``.

    Eckart–Young: keeping the ``r`` largest singular values minimises the Frobenius error;
    the error is ``√(Σ_{i>r} s_i²)``. Computed in float64, returned in ``matrix``'s dtype.
    """
    if matrix.dim() != 2:
        raise ValueError(f"SVD needs a 2-D matrix, got shape {tuple(matrix.shape)}; reshape a conv "
                         "weight to (out, in·k·k) first: weight.reshape(weight.shape[0], -1)")
    m, n = matrix.shape
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= min(m, n):
        raise ValueError(f"rank must be an int in 1..{min(m, n)} (the smaller side of the {m}×{n} "
                         f"matrix), got {rank!r}")
    with runtime.one_thread():
        u, s, vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    return (u[:, :rank] * root).to(matrix.dtype), (root[:, None] * vh[:rank]).to(matrix.dtype)


RULES = ("energy", "param_fraction", "rank_fraction")


def choose_rank(matrix: torch.Tensor, energy: float | None = None, param_fraction: float | None = None,
                rank_fraction: float | None = None) -> int:
    """A rank for :func:`svd_factors`, from exactly one of three rules.

    * ``energy``: the smallest ``r`` whose singular values hold that fraction of
      ``Σ s_i²`` (the squared Frobenius norm);
    * ``param_fraction``: the largest ``r`` (at least 1) whose two factors, ``r·(m + n)``
      weights, fit in that fraction of the ``m·n`` weights of the matrix;
    * ``rank_fraction``: that share of the ``min(m, n)`` singular values, rounded (at least 1).

    A conv weight is read as its ``out × (in·k·k)`` matrix.

    >>> choose_rank(torch.eye(10), rank_fraction=0.25), choose_rank(torch.eye(10), param_fraction=0.5)
    (2, 2)
    """
    given = {k: v for k, v in zip(RULES, (energy, param_fraction, rank_fraction), strict=True) if v is not None}
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(RULES)}; got {sorted(given) or 'none'}")
    m, n = matrix.reshape(matrix.shape[0], -1).shape
    if param_fraction is not None:
        if not param_fraction > 0:
            raise ValueError(f"param_fraction must be positive, got {param_fraction!r}")
        return max(1, min(min(m, n), int(param_fraction * m * n // (m + n))))
    if rank_fraction is not None:
        if not 0 < rank_fraction <= 1:
            raise ValueError(f"rank_fraction must lie in (0, 1], got {rank_fraction!r}")
        return max(1, round(rank_fraction * min(m, n)))
    if not 0 < energy <= 1:
        raise ValueError(f"energy must lie in (0, 1], got {energy!r}")
    with runtime.one_thread():
        s2 = torch.linalg.svdvals(matrix.detach().reshape(m, n).double()).pow(2)
    share = s2.cumsum(0) / s2.sum()
    return min(int((share < energy - 1e-12).sum()) + 1, min(m, n))


def factorize(layer: nn.Module, rank: int) -> nn.Sequential:
    """``layer`` (Linear or conv) as two layers of rank ``rank``; at full rank the same function.

    Linear ``in → out`` becomes Linear ``in → r`` (no bias) then Linear ``r → out``;
    a k×k conv becomes a k×k conv with ``r`` outputs (same stride, padding, dilation, no
    bias) then a 1×1 conv ``r → out`` carrying the bias.
    """
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        raise ValueError(f"transposed convs ({type(layer).__name__}) are not factorised")
    if isinstance(layer, nn.modules.conv._ConvNd) and layer.groups != 1:
        raise ValueError(f"grouped convs (groups={layer.groups}) are not factorised")
    b, c = svd_factors(layer.weight.reshape(layer.weight.shape[0], -1), rank)
    has_bias = layer.bias is not None
    kw = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    if isinstance(layer, nn.Linear):
        first, second = nn.Linear(layer.in_features, rank, bias=False, **kw), nn.Linear(rank, layer.out_features, bias=has_bias, **kw)
    elif isinstance(layer, nn.modules.conv._ConvNd):
        conv = type(layer)
        first = conv(layer.in_channels, rank, layer.kernel_size, layer.stride, layer.padding,
                     layer.dilation, bias=False, padding_mode=layer.padding_mode, **kw)
        second = conv(rank, layer.out_channels, 1, bias=has_bias, **kw)
    else:
        raise ValueError(f"only Linear and conv layers are factorised, got {type(layer).__name__}")
    with torch.no_grad():
        first.weight.copy_(c.reshape(first.weight.shape))
        second.weight.copy_(b.reshape(second.weight.shape))
        if has_bias:
            second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def low_rank(model: nn.Module, rank: int | Mapping[str, int] | None = None, energy: float | None = None,
             param_fraction: float | None = None, rank_fraction: float | None = None,
             layers: Sequence[str] | None = None, only_if_smaller: bool = True) -> nn.Module:
    """A copy of ``model`` with Linear and conv layers replaced by their :func:`factorize` pair.

    Args:
        rank, energy, param_fraction, rank_fraction: exactly one: a rank (or ``{layer:
            rank}``), or a rule of :func:`choose_rank` applied to each layer. A rank larger
            than a layer's matrix allows (``min(out, in·k·k)``) is an error.
        layers: module names to factorise; default every Linear and ungrouped conv.
        only_if_smaller: leave a layer as it is when its factors would not have fewer
            weights than it (``r·(m + n) ≥ m·n``).
    """
    if sum(x is not None for x in (rank, energy, param_fraction, rank_fraction)) != 1:
        raise ValueError("give exactly one of rank, energy, param_fraction and rank_fraction")
    if isinstance(layers, str):
        raise ValueError(f"layers must be a list of module names, e.g. [{layers!r}], got the string {layers!r}")
    modules = dict(model.named_modules())
    names = list(layers) if layers is not None else list(rank) if isinstance(rank, Mapping) else [
        n for n, m in modules.items()
        if isinstance(m, nn.Linear) or (isinstance(m, nn.modules.conv._ConvNd) and m.groups == 1
                                        and not isinstance(m, nn.modules.conv._ConvTransposeNd))]
    if isinstance(rank, Mapping) and set(names) - set(rank):
        raise ValueError(f"rank gives no value for layers {sorted(set(names) - set(rank))}; it names {sorted(rank)}")
    unknown = [n for n in names if not isinstance(modules.get(n), (nn.Linear, nn.modules.conv._ConvNd))]
    if unknown:
        raise ValueError(f"{unknown} are not Linear or conv layers of the model")
    new = copy.deepcopy(model)
    new_modules = dict(new.named_modules())
    for name in names:
        w = modules[name].weight.reshape(modules[name].weight.shape[0], -1)
        r = (rank[name] if isinstance(rank, Mapping) else rank) if rank is not None \
            else choose_rank(w, energy, param_fraction, rank_fraction)
        if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= min(w.shape):
            raise ValueError(f"rank {r!r} for layer {name!r}: its {w.shape[0]}×{w.shape[1]} matrix has ranks "
                             f"1..{min(w.shape)}; give {{layer: rank}} or a rule (param_fraction, "
                             "rank_fraction, energy) for layers of different sizes")
        if only_if_smaller and r * sum(w.shape) >= w.numel():
            continue
        parent, _, child = name.rpartition(".")
        setattr(new_modules[parent] if parent else new, child, factorize(modules[name], r))
    return new
