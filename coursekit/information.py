"""The information plane: I(X;T) and I(Y;T) of each layer T over training.

Shwartz-Ziv & Tishby 2017 ("Opening the Black Box of Deep Neural Networks via
Information") train a 12-10-7-5-4-3-2 tanh network on a 12-bit task and estimate
the mutual information of every layer with the input and the label by binning the
activations. They see two phases: fitting (both grow), then compression (I(X;T)
falls). Saxe et al. 2018 ("On the Information Bottleneck Theory of Deep Learning")
reply that compression comes from tanh saturating into a few bins: ReLU networks,
or a noise-based (kernel density) estimator, need not compress. The lecture shows
both, with both estimators.

Because each input is seen once and the network is deterministic, ``T = f(X)``:
``I(X;T) = H(T)`` and ``I(Y;T) = H(T) - H(T|Y)``, measured on a discretised or
noise-blurred ``T``, in bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from coursekit import models, runtime
from coursekit.claims import Claim
from coursekit.data import Dataset
from coursekit.spectra import FisherTrace
from coursekit.train import TrainSettings, fit

ESTIMATORS = ("binned", "kde")


def twelve_bit_task(seed: int = 0, train_fraction: float = 0.85) -> Dataset:
    """All 4096 12-bit inputs with a balanced, rotation-invariant label, as in Shwartz-Ziv & Tishby.

    The 12 bits sit on the vertices ``u_i`` of an icosahedron (12 points evenly spread
    on a sphere); the label says whether ``||Σ_i x_i u_i||²`` exceeds the threshold that
    splits the inputs most evenly, a function unchanged by rotations of the sphere
    (their task thresholds an O(3)-invariant function of the same kind). The inputs
    are ±1. ``seed`` draws the train split; val and test are both the held-out rest.
    """
    if not 0 < train_fraction < 1 or not 1 <= round(train_fraction * 4096) < 4096:
        raise ValueError(f"train_fraction must be in (0, 1) and leave inputs on both sides of the split, got "
                         f"{train_fraction!r}")
    phi = (1 + 5**0.5) / 2
    ico = torch.tensor([[0, s1, s2 * phi] for s1 in (-1, 1) for s2 in (-1, 1)], dtype=torch.float64)
    vertices = torch.cat([ico, ico.roll(1, dims=1), ico.roll(2, dims=1)])
    bits = (torch.arange(4096)[:, None] >> torch.arange(12)) & 1
    f = (bits.double() @ vertices).pow(2).sum(1)
    values = f.unique()
    balance = torch.stack([(f > v).double().mean() for v in values])
    y = (f > values[(balance - 0.5).abs().argmin()]).long()
    x = (2 * bits - 1).float()
    order = torch.randperm(4096, generator=torch.Generator().manual_seed(seed))
    n = round(train_fraction * 4096)
    tr, rest = order[:n], order[n:]
    return Dataset("twelve_bit", ("0", "1"), x[tr], y[tr], x[rest], y[rest], x[rest], y[rest])


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


@dataclass(frozen=True)
class InfoPlaneSettings(TrainSettings):
    """The 12-10-7-5-4-3-2 network of Shwartz-Ziv & Tishby on the 12-bit task."""

    model: str = "mlp"
    hidden: tuple[int, ...] = (10, 7, 5, 4, 3)
    activation: str = "tanh"
    epochs: int = 1000
    lr: float = 1e-3
    optimizer: str = "adam"
    batch_size: int = 256
    snapshots: int = 30
    bins: int = 30
    noise_var: float = 0.1
    kde_examples: int = 1024
    fisher_examples: int | None = None  # training inputs the Fisher trace averages over (None: all)
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model != "mlp":
            raise ValueError(f"the information plane trains an 'mlp' (hidden widths from hidden=), got {self.model!r}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must list positive layer widths, got {self.hidden}")
        if self.activation not in models.ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; expected one of {tuple(models.ACTIVATIONS)}")
        if self.bins < 2 or not self.noise_var > 0 or self.kde_examples < 2 or self.snapshots < 1:
            raise ValueError(f"InfoPlaneSettings needs bins >= 2, noise_var > 0, kde_examples >= 2 and snapshots "
                             f">= 1; got {self.bins}, {self.noise_var}, {self.kde_examples}, {self.snapshots}")
        if self.fisher_examples is not None and self.fisher_examples < 1:
            raise ValueError(f"fisher_examples must be a positive int or None, got {self.fisher_examples}")


def _snapshot_epochs(epochs: int, snapshots: int) -> list[int]:
    """About ``snapshots`` epochs spread evenly on a log scale from 0 to ``epochs``."""
    grid = torch.logspace(0, math.log10(epochs + 1), snapshots).round().long() - 1
    return sorted(set(grid.tolist()) | {0, epochs})


def layer_outputs(model: nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each hidden layer's activations (after its nonlinearity) and the softmax output."""
    outputs, h = {}, x
    with torch.no_grad():
        for module in model:
            h = module(h)
            if isinstance(module, tuple(models.ACTIVATIONS.values())):
                outputs[f"layer {len(outputs) + 1}"] = h
        outputs["output"] = h.softmax(1)
    return outputs


def information_plane(settings: InfoPlaneSettings, data: Dataset | None = None,
                      progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train ``settings``' network and estimate I(X;T), I(Y;T) of every layer at log-spaced epochs.

    Returns ``(plane, fisher)``: ``plane`` has one row per (epoch, layer, estimator) with
    ``I_XT`` and ``I_YT`` in bits, measured on all inputs of ``data`` (default:
    :func:`twelve_bit_task`; tanh layers binned over (-1, 1), ReLU layers over their
    current range); ``fisher`` the trace of the Fisher information per layer at the same
    epochs (:class:`coursekit.spectra.FisherTrace` on the training inputs). Both carry
    an ``activation`` column, so runs can be stacked with ``pd.concat``.
    """
    data = data if data is not None else twelve_bit_task(settings.seed)
    model = models.build(settings.model, data.input_shape, data.num_classes, seed=settings.seed,
                         device=data.device, hidden=settings.hidden, activation=settings.activation)
    x = torch.cat([data.x_train, data.x_val])
    y = torch.cat([data.y_train, data.y_val])
    when = set(_snapshot_epochs(settings.epochs, settings.snapshots))
    snapshots = {0: layer_outputs(model, x)}
    n_fisher = settings.fisher_examples or len(data.y_train)
    fisher = FisherTrace(data.x_train[:n_fisher], data.y_train[:n_fisher], seed=settings.seed)
    fisher.record(model, 0)

    def snapshot(ctx) -> None:
        if ctx.end_of_epoch and ctx.epoch + 1 in when:
            snapshots[ctx.epoch + 1] = layer_outputs(ctx.model, x)
            fisher.record(ctx.model, ctx.epoch + 1)

    steps = -(-len(data.y_train) // settings.batch_size) * settings.epochs
    with runtime.one_thread():  # a 12-10-7-5-4-3-2 network: a second thread only adds waiting
        fit(model, data, **settings.fit_kwargs(), seed=settings.seed, eval_every=steps, hooks=[snapshot],
            progress=progress, desc=f"{settings.activation} network")
    sub = torch.randperm(len(y), generator=torch.Generator().manual_seed(settings.seed))[:settings.kde_examples]
    rows = []
    for epoch, layers in tqdm(snapshots.items(), desc="mutual information", disable=not progress, leave=False):
        for layer, t in layers.items():
            bounded = settings.activation == "tanh" and layer != "output"
            limits = (-1.0, 1.0) if bounded else (0.0, 1.0) if layer == "output" else None
            for estimator, (ixt, iyt) in (("binned", binned_mi(t, y, settings.bins, limits)),
                                          ("kde", kde_mi(t[sub], y[sub], settings.noise_var))):
                rows.append({"epoch": epoch, "layer": layer, "estimator": estimator,
                             "I_XT": ixt, "I_YT": iyt})
    tag = {"activation": settings.activation}
    return pd.DataFrame(rows).assign(**tag), fisher.table().assign(**tag)


def headline(planes: pd.DataFrame, fisher: pd.DataFrame) -> list[Claim]:
    """Lecture 04's 12-bit checks for each activation (Achille et al. 2019; Shwartz-Ziv & Tishby 2017).

    The total true-Fisher trace rises more than fivefold from its initial value (at ``ci``
    scale the ReLU network's rise ranged from 25- to 400-fold over seeds 0-4) and ends
    below its peak; the output layer gains more than half a bit about the label
    (binned); no layer holds more than the input's 12 bits.
    """
    totals = fisher[fisher["kind"] == "true"].groupby(["activation", "epoch"])["trace"].sum()
    out = planes[(planes["layer"] == "output") & (planes["estimator"] == "binned")].sort_values("epoch")
    claims = []
    for act, trace in totals.groupby(level=0):
        claims += [Claim(f"{act}: log10 of the peak Fisher trace over the initial one",
                         math.log10(trace.max() / trace.iloc[0]), ">", math.log10(5)),
                   Claim(f"{act}: final Fisher trace over the peak", trace.iloc[-1] / trace.max(), "<", 1)]
    for act, rows in out.groupby("activation"):
        claims.append(Claim(f"{act}: bits about the label gained by the output",
                            rows["I_YT"].iloc[-1] - rows["I_YT"].iloc[0], ">", 0.5))
    return [*claims, Claim("largest I(X;T) of any layer (bits)", planes["I_XT"].max(), "<=", 12 + 1e-6)]


PRESETS = {  # lectures/04_critical_periods.ipynb
    # ci trains 500 epochs: at 100 the tanh network's Fisher trace was still at its peak at the end for 2
    # of seeds 0-4 (`make margins`); the trace averages over 2 048 of the 3 482 inputs to pay for them
    "ci": InfoPlaneSettings(epochs=500, snapshots=10, kde_examples=512, fisher_examples=2048),
    "cpu": InfoPlaneSettings(epochs=1500, snapshots=30),
    "gpu": InfoPlaneSettings(epochs=5000, snapshots=40, kde_examples=4096),
}
