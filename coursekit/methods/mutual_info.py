"""Mutual information between a layer's activations and the input or the label, in bits.

Two estimators, as in the information-plane debate: binning each unit (Shwartz-Ziv &
Tishby 2017) and a Gaussian-noise kernel-density bound (Kolchinsky & Tracey 2017, as
used by Saxe et al. 2018). Each input is seen once and the network is deterministic, so
``T = f(X)``: ``I(X;T) = H(T)`` and ``I(Y;T) = H(T) - H(T|Y)``, measured on a discretised
or noise-blurred ``T``.
"""

from __future__ import annotations

import math

import torch

ESTIMATORS = ("binned", "kde")


def _check_layer(t: torch.Tensor, y: torch.Tensor) -> None:
    if t.ndim != 2 or t.shape[0] < 2:
        raise ValueError(f"activations must be (examples ≥ 2, units), got shape {tuple(t.shape)}")
    if y.shape != (t.shape[0],):
        raise ValueError(f"need one label per row of t: t has {t.shape[0]} rows, y shape {tuple(y.shape)}")
    if torch.isnan(t).any():
        raise ValueError("activations contain NaN (a network that diverged?); mutual information is undefined")


def _entropy_bits(counts: torch.Tensor) -> float:
    counts = counts[counts > 0]
    p = counts.double() / counts.sum()
    return float(-(p * p.log2()).sum())


def binned_mi(t: torch.Tensor, y: torch.Tensor, bins: int = 30,
              limits: tuple[float, float] | None = None) -> tuple[float, float]:
    """``(I(X;T), I(Y;T))`` in bits by binning each unit into ``bins`` equal bins.

    ``limits`` is the range binned: ``(-1, 1)`` for tanh (Shwartz-Ziv & Tishby); by
    default the range of ``t`` itself (Saxe et al.'s choice for unbounded ReLU units).
    Each input is one distinct ``x``, so ``I(X;T) = H(T)`` of the binned patterns.
    """
    _check_layer(t, y)
    if not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an int ≥ 2 (one bin holds no information), got {bins!r}")
    lo, hi = limits if limits is not None else (t.min().item(), t.max().item())
    if limits is not None and not lo < hi:
        raise ValueError(f"limits must be (low, high) with low < high, got {limits!r}")
    width = max(hi - lo, 1e-12) / bins
    codes = ((t - lo) / width).floor().clamp(0, bins - 1).long()
    _, pattern = torch.unique(codes, dim=0, return_inverse=True)
    h_t = _entropy_bits(torch.bincount(pattern))
    h_t_given_y = 0.0
    for label in y.unique():
        members = pattern[y == label]
        h_t_given_y += (members.numel() / y.numel()) * _entropy_bits(torch.bincount(members))
    return h_t, h_t - h_t_given_y


def _kde_entropy_bits(t: torch.Tensor, noise_var: float) -> torch.Tensor:
    """Kolchinsky & Tracey's pairwise upper bound on H(T + noise), without the constant noise term."""
    d2 = torch.cdist(t, t).pow(2)
    n = t.shape[0]
    return -(torch.logsumexp(-d2 / (2 * noise_var), dim=1) - math.log(n)).mean() / math.log(2)


def kde_mi(t: torch.Tensor, y: torch.Tensor, noise_var: float = 0.1) -> tuple[float, float]:
    """``(I(X;T), I(Y;T))`` in bits of ``T + N(0, noise_var·I)``, Kolchinsky & Tracey 2017's bound.

    The estimator Saxe et al. 2018 use: each activation is blurred by Gaussian noise,
    so ``H(T|X)`` is the noise entropy and cancels; ``H(T)`` is bounded by pairwise
    distances between examples. Costs ``O(N²)``: pass a subsample for large ``N``.
    """
    _check_layer(t, y)
    if not noise_var > 0:
        raise ValueError(f"noise_var must be positive, got {noise_var!r}")
    t = t.double()
    h_t = _kde_entropy_bits(t, noise_var)
    h_t_given_y = sum((y == c).double().mean() * _kde_entropy_bits(t[y == c], noise_var) for c in y.unique())
    return float(h_t), float(h_t - h_t_given_y)


def unit_label_information(t: torch.Tensor, y: torch.Tensor, bins: int = 10) -> torch.Tensor:
    """``I(T_j; Y)`` in bits for each unit ``j`` of ``t`` on its own, binned over the unit's range.

    A score for pruning units by how much they say about the label (the mutual-information
    view of redundancy, as in Dai et al. 2018's information-bottleneck pruning); a constant
    unit scores 0.
    """
    _check_layer(t, y)
    return torch.tensor([binned_mi(t[:, j:j + 1], y, bins)[1] for j in range(t.shape[1])])
