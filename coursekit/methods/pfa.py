"""Principal Filter Analysis: how many units a layer needs, read off the spectrum of its responses.

Suau et al. 2020 ("Filter Distillation for Network Compression", WACV; first as
"Principal Filter Analysis for Guided Network Compression") observe that the responses
of a trained layer's units are correlated: the eigenvalues of their covariance over the
data fall fast, and the layer needs only as many units as the spectrum has significant
directions. Two rules pick a width per layer from the eigenvalues ``λ_1 ≥ … ≥ λ_n``:

* **energy** (PFA-En): the smallest ``k`` whose top ``k`` eigenvalues hold a fraction
  ``τ`` of the total;
* **KL** (PFA-KL), with no parameter: the KL divergence ``D`` of the normalised spectrum
  from the uniform one runs from 0 (every direction used alike: keep all ``n``) to
  ``log n`` (one direction: keep 1); the width is ``⌈n (1 − D / log n)⌉``, their linear
  mapping.

Responses are read by :func:`coursekit.core.models.responses` (after the activation; a
convolution channel's is its spatial mean). The network is then
retrained at the chosen widths (the lecture's experiment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from coursekit.core import models


def spectrum(r: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the covariance of responses ``r`` (examples × units), largest first, ≥ 0."""
    if r.ndim != 2 or r.shape[0] < 2:
        raise ValueError(f"responses must be (examples ≥ 2, units), got shape {tuple(r.shape)}")
    centred = r.double() - r.double().mean(0)
    cov = centred.T @ centred / (r.shape[0] - 1)
    return torch.linalg.eigvalsh(cov).flip(0).clamp_min(0)


def _check_eigenvalues(eigenvalues: torch.Tensor) -> torch.Tensor:
    e = torch.as_tensor(eigenvalues, dtype=torch.float64)
    if e.ndim != 1 or e.numel() == 0 or bool((e < 0).any()) or not bool(torch.isfinite(e).all()):
        raise ValueError("eigenvalues must be a non-empty 1-d tensor of finite values ≥ 0")
    if not float(e.sum()) > 0:
        raise ValueError("all eigenvalues are 0: the layer's responses do not vary over the data (a dead layer?)")
    return e.sort(descending=True).values


def energy_width(eigenvalues: torch.Tensor, tau: float) -> int:
    """The smallest ``k`` whose ``k`` largest eigenvalues hold at least ``tau`` of the sum (PFA-En)."""
    if isinstance(tau, bool) or not isinstance(tau, int | float) or not 0 < tau <= 1:
        raise ValueError(f"the energy fraction τ must lie in (0, 1], got {tau!r}")
    e = _check_eigenvalues(eigenvalues)
    share = e.cumsum(0) / e.sum()
    return min(int((share < tau - 1e-12).sum()) + 1, e.numel())


def kl_width(eigenvalues: torch.Tensor) -> int:
    """``⌈n (1 − D / log n)⌉`` with ``D`` the KL divergence of the normalised spectrum from uniform (PFA-KL)."""
    e = _check_eigenvalues(eigenvalues)
    n = e.numel()
    if n == 1:
        return 1
    p = e / e.sum()
    d = float((p[p > 0] * (p[p > 0] * n).log()).sum())
    return max(1, min(n, math.ceil(n * (1 - d / math.log(n)) - 1e-9)))


def widths(model: nn.Sequential, layers: Sequence[str], x: torch.Tensor, tau: float = 0.95) -> pd.DataFrame:
    """Per layer: its width, and the widths the energy rule (at ``tau``) and the KL rule pick."""
    rows = []
    for layer in [layers] if isinstance(layers, str) else layers:
        e = spectrum(models.responses(model, layer, x))
        rows.append({"layer": layer, "units": e.numel(), "energy": energy_width(e, tau), "kl": kl_width(e)})
    return pd.DataFrame(rows, columns=["layer", "units", "energy", "kl"])
