"""Spectral bias: networks fit the low frequencies of a function first.

Rahaman et al. 2019 ("On the Spectral Bias of Neural Networks", ICML) fit a ReLU
network to ``λ(x) = Σ_i A_i sin(2π k_i x + φ_i)`` on ``[0, 1)`` (``k_i = 5, 10, …, 50``)
and follow the Fourier coefficient of the fitted function at each ``k_i`` over
training: the low frequencies are learned first, the high ones much later. Together
with critical periods and Early-Bird tickets this is the slides' story that what a
network becomes is settled early, coarse first. :func:`plot_spectrum` draws the
coefficients over training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from coursekit.core import models, runtime
from coursekit.core.claims import Claim
from coursekit.core.plots import require_columns, styled
from coursekit.core.progress import tqdm
from coursekit.core.runtime import check_fields
from coursekit.core.train import make_optimizer


@dataclass(frozen=True)
class SpectralSettings:
    """Target frequencies and the network fitted to them (Rahaman et al. use depth 6, width 256)."""

    frequencies: tuple[int, ...] = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    amplitude: float = 1.0
    points: int = 200
    depth: int = 6
    width: int = 256
    steps: int = 4000
    lr: float = 3e-4
    record_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        _check_frequencies(self.frequencies, self.points)
        if not self.amplitude > 0:
            raise ValueError(f"SpectralSettings.amplitude must be positive, got {self.amplitude}")
        if min(self.points, self.depth, self.width, self.steps, self.record_every) < 1 or not self.lr > 0:
            raise ValueError(f"SpectralSettings: points, depth, width, steps and record_every must be positive ints "
                             f"and lr must be positive; got {self}")


def _grid(points: int) -> torch.Tensor:
    return torch.arange(points, dtype=torch.float32) / points


def target(settings: SpectralSettings) -> torch.Tensor:
    """``λ(x)`` on ``settings.points`` evenly spaced ``x`` in ``[0, 1)``, phases drawn from ``seed``."""
    freqs = torch.tensor(settings.frequencies, dtype=torch.float32)  # checked by SpectralSettings
    phases = 2 * math.pi * torch.rand(len(freqs), generator=torch.Generator().manual_seed(settings.seed))
    x = _grid(settings.points)[:, None]
    return (settings.amplitude * torch.sin(2 * math.pi * freqs * x + phases)).sum(1)


def _check_frequencies(frequencies: tuple[int, ...], points: int) -> None:
    """Distinct ints from 1 to below ``points / 2`` (Nyquist): the coefficients that mean ``A sin(2π k x + φ)``."""
    ok = (not isinstance(frequencies, (int, str)) and len(frequencies) > 0
          and all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k < points / 2 for k in frequencies)
          and len(set(frequencies)) == len(frequencies))
    if not ok:
        raise ValueError(f"frequencies must be distinct integers from 1 to below points/2 = {points / 2} "
                         f"(Nyquist), got {frequencies!r}")


def fourier_coefficients(values: torch.Tensor, frequencies: tuple[int, ...]) -> torch.Tensor:
    """Complex Fourier coefficients at integer ``frequencies`` of values sampled evenly on ``[0, 1)``.

    Scaled so that ``A sin(2π k x + φ)`` has a coefficient of modulus ``A`` at ``k``.

    >>> x = torch.arange(100) / 100
    >>> round(fourier_coefficients(3 * torch.sin(2 * math.pi * 7 * x), (7,)).abs().item(), 4)
    3.0
    """
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D samples of a function, got shape {tuple(values.shape)}")
    _check_frequencies(frequencies, values.numel())
    spectrum = torch.fft.rfft(values.double()) * 2 / values.numel()
    return spectrum[list(frequencies)]


def fit_spectrum(settings: SpectralSettings, device: str | torch.device = "cpu",
                 progress: bool = True) -> pd.DataFrame:
    """Fit a ReLU MLP to :func:`target` by full-batch Adam and track its spectrum.

    Returns one row per (recorded step, frequency): ``amplitude`` (``|f̂_k| / A``) and
    ``error`` (``|f̂_k − λ̂_k| / A``: 0 once the component is learned, phase included),
    plus ``loss``.
    """
    if settings.depth < 1 or settings.width < 1 or settings.steps < 1 or settings.record_every < 1:
        raise ValueError(f"depth, width, steps and record_every must be positive, got {settings}")
    y = target(settings).to(device)
    wanted = fourier_coefficients(y, settings.frequencies)
    x = _grid(settings.points)[:, None].to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        net = models.mlp((1,), 1, hidden=(settings.width,) * settings.depth).to(device)
    opt = make_optimizer("adam", net.parameters(), settings.lr)
    rows = []
    with runtime.one_thread(device):  # a small network: a second CPU thread only adds waiting
        for step in tqdm(range(settings.steps + 1), desc="fitting sinusoids", disable=not progress, leave=False):
            out = net(x).squeeze(1)
            loss = F.mse_loss(out, y)
            if step % settings.record_every == 0 or step == settings.steps:
                got = fourier_coefficients(out.detach(), settings.frequencies)
                for k, g, w in zip(settings.frequencies, got, wanted, strict=True):
                    rows.append({"step": step, "frequency": k, "amplitude": g.abs().item() / settings.amplitude,
                                 "error": (g - w).abs().item() / settings.amplitude, "loss": loss.item()})
            if step < settings.steps:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return pd.DataFrame(rows)


def learned_at(spectrum: pd.DataFrame, tolerance: float = 0.1) -> pd.Series:
    """First recorded step at which each frequency's ``error`` falls below ``tolerance`` (NaN: never).

    Full-batch Adam makes the error flicker once learned; the first crossing is what
    the heat map shows as the change of colour.
    """
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance!r}")
    below = spectrum[spectrum["error"] < tolerance]
    first = below.groupby("frequency")["step"].min()
    return first.reindex(sorted(spectrum["frequency"].unique())).astype(float).rename("learned_at_step")


def headline(spectrum: pd.DataFrame, settings: SpectralSettings, tolerance: float = 0.1) -> list[Claim]:
    """Lecture 05's checks of :func:`fit_spectrum` (Rahaman et al. 2019, weak form).

    The lowest frequency is learned within the run, and the highest later (a frequency
    never learned counts as learned one record after the end).
    """
    learned = learned_at(spectrum, tolerance)
    low, high = min(settings.frequencies), max(settings.frequencies)
    never = settings.steps + settings.record_every
    high_at = never if math.isnan(learned[high]) else learned[high]
    return [Claim(f"lowest frequency ({low}) learned by the last step", learned[low], "<=", settings.steps),
            Claim(f"highest frequency ({high}) learned after the lowest (steps later)",
                  high_at - learned[low], ">", 0),
            Claim("final loss over the initial loss", spectrum["loss"].iloc[-1] / spectrum["loss"].iloc[0],
                  "<", 0.1)]


PRESETS = {  # lectures/05_early_bird.ipynb
    "ci": SpectralSettings(frequencies=(2, 4, 6, 8, 10), points=64, depth=4, width=256, steps=1500, lr=1e-3,
                           record_every=25),
    "cpu": SpectralSettings(steps=8000, lr=1e-3),
    "gpu": SpectralSettings(steps=30000, lr=1e-3, record_every=100),
}


# ------------------------------------------------------------------ figures

def plot_spectrum(spectrum: pd.DataFrame, learned: pd.Series | None = None) -> Figure:
    """Heat map of ``|f̂_k − λ̂_k| / A`` per frequency over training (Rahaman et al. Fig. 1)."""
    require_columns(spectrum, ["step", "frequency", "error"], "spectrum")
    grid = spectrum.pivot(index="frequency", columns="step", values="error")
    with styled():
        fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
        steps = grid.columns.to_numpy()
        image = ax.pcolormesh(steps, np.arange(len(grid.index)), grid.values, cmap="viridis_r", vmin=0, vmax=1,
                              shading="nearest")
        ax.set_yticks(np.arange(len(grid.index)), [str(k) for k in grid.index])
        fig.colorbar(image, ax=ax, label="remaining error of the component  |f̂ₖ − λ̂ₖ| / A")
        if learned is not None:
            rows = [i for i, k in enumerate(grid.index) if not np.isnan(learned.get(k, np.nan))]
            ax.plot([learned[grid.index[i]] for i in rows], rows, "w^", ms=8, mec="k", label="learned")
            ax.legend(loc="lower right", fontsize="small")
        ax.set_xlabel("training step")
        ax.set_ylabel("frequency k")
        ax.set_title("low frequencies are learned first")
        ax.grid(False)
    return fig
