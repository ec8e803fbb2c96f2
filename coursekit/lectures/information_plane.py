"""The information plane: I(X;T) and I(Y;T) of each layer T over training.

Shwartz-Ziv & Tishby 2017 ("Opening the Black Box of Deep Neural Networks via
Information") train a 12-10-7-5-4-3-2 tanh network on a 12-bit task and estimate
the mutual information of every layer with the input and the label by binning the
activations. They see two phases: fitting (both grow), then compression (I(X;T)
falls). Saxe et al. 2018 ("On the Information Bottleneck Theory of Deep Learning")
reply that compression comes from tanh saturating into a few bins: ReLU networks,
or a noise-based (kernel density) estimator, need not compress. The lecture shows
both, with both estimators.

The estimators are :mod:`coursekit.methods.mutual_info`'s; :func:`plot_information_plane`
draws the plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import nn

from coursekit.core import models, runtime
from coursekit.core.claims import Claim
from coursekit.core.data import Dataset
from coursekit.core.plots import require_columns, styled
from coursekit.core.progress import tqdm
from coursekit.core.train import TrainSettings, fit
from coursekit.methods.mutual_info import binned_mi, kde_mi
from coursekit.methods.spectra import FisherTrace


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
    epochs (:class:`coursekit.methods.spectra.FisherTrace` on the training inputs). Both carry
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


def compression(planes: pd.DataFrame) -> pd.DataFrame:
    """Bits of :math:`I(X;T)` each layer gives up after its peak (peak minus final value), one row per
    activation and estimator, one column per layer: Shwartz-Ziv & Tishby's compression, measured."""
    require_columns(planes, ["epoch", "layer", "estimator", "I_XT", "activation"], "information_plane")
    by = planes.sort_values("epoch").groupby(["activation", "estimator", "layer"], sort=False)["I_XT"]
    table = (by.max() - by.last()).unstack("layer")
    return table[list(dict.fromkeys(planes["layer"]))]


def describe_compression(table: pd.DataFrame, bits: float = 0.5) -> str:
    """One Markdown line per activation and estimator of :func:`compression`: the layers that give up
    more than ``bits`` after their peak — what *this* run shows, whatever the scale and seed."""
    lines = []
    for (activation, estimator), row in table.iterrows():
        losing = [f"{layer} ({lost:.1f} bits)" for layer, lost in row.items() if lost > bits]
        lines.append(f"- **{activation}, {estimator}**: " + (", ".join(losing) if losing else
                                                              f"no layer loses more than {bits} bit"))
    return f"Layers whose $I(X;T)$ falls by more than {bits} bit after its peak, in this run:\n" + "\n".join(lines)


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
    # ci trains 400 epochs: at 100 the tanh network's Fisher trace was still at its peak at the end for 2
    # of seeds 0-4; at 400 it ends at 0.44 of its peak or less (`make margins`, seeds 0-4, 1 and 2
    # threads). The trace averages over 2 048 of the 3 482 inputs, all in one vectorised call
    "ci": InfoPlaneSettings(epochs=400, snapshots=10, kde_examples=512, fisher_examples=2048),
    "cpu": InfoPlaneSettings(epochs=1500, snapshots=30),
    "gpu": InfoPlaneSettings(epochs=5000, snapshots=40, kde_examples=4096),
}


# ------------------------------------------------------------------ figures

def plot_information_plane(planes: pd.DataFrame, estimator: str = "binned", layer: str | None = None) -> Figure:
    """I(X;T) against I(Y;T), one trajectory per layer, coloured by epoch; one panel per activation.

    ``planes`` stacks :func:`coursekit.lectures.information_plane.information_plane` tables (column
    ``activation``). ``layer`` draws that layer bold and the others faint.
    """
    require_columns(planes, ["epoch", "layer", "estimator", "I_XT", "I_YT", "activation"], "information_plane")
    data = planes[planes["estimator"] == estimator]
    if data.empty:
        raise ValueError(f"no rows for estimator {estimator!r}; the table has {sorted(planes['estimator'].unique())}")
    activations = list(dict.fromkeys(data["activation"]))
    markers = dict(zip(dict.fromkeys(data["layer"]), "os^Dvp*hX", strict=False))
    norm = LogNorm(vmin=1, vmax=max(2, data["epoch"].max()))
    with styled():
        fig, axes = plt.subplots(1, len(activations), figsize=(5.6 * len(activations), 4.4), squeeze=False,
                                 layout="constrained", sharey=True)
        for ax, act in zip(axes[0], activations, strict=True):
            for name, rows in data[data["activation"] == act].groupby("layer", sort=False):
                rows = rows.sort_values("epoch")
                focus = layer is None or name == layer
                ax.plot(rows["I_XT"], rows["I_YT"], color="grey", lw=1.2 if focus else 0.5,
                        alpha=0.8 if focus else 0.3, zorder=1)
                points = ax.scatter(rows["I_XT"], rows["I_YT"], c=rows["epoch"].clip(lower=1), cmap="viridis",
                                    norm=norm, marker=markers[name], s=45 if focus else 12,
                                    alpha=1 if focus else 0.3, edgecolors="k" if focus and layer else "none",
                                    linewidths=0.6, zorder=2)
            ax.set_xlabel("I(X;T)  [bits]")
            ax.set_title(f"{act} network, {estimator} estimator")
        axes[0, 0].set_ylabel("I(Y;T)  [bits]")
        handles = [Line2D([], [], ls="", marker=m, color="grey", label=n) for n, m in markers.items()]
        axes[0, 0].legend(handles=handles, fontsize="small", loc="lower right", title="layer T")
        fig.colorbar(points, ax=axes[0, -1], label="epoch")
    return fig
