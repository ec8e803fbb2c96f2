"""Lecture 13's experiments: architectures sparsified by hand against pruned dense nets (slide 14).

SqueezeNet's fire module (Iandola et al. 2016), MobileNet's depthwise-separable block
(Howard et al. 2017) and ResNet's bottleneck replace a dense 3×3 convolution by cheaper
structured pieces: a sparsity designed by hand. :func:`train_nets` trains the same small
convnet (:func:`coursekit.core.models.blocknet`) with each block, and the dense and one
compact block at several width multipliers; :func:`compare` counts their weights and
multiply-accumulates and times them; :func:`prune_sweep` prunes each trained net by weight
magnitude, layer by layer, to the same densities. :func:`headline` states the checks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from coursekit.core import data as datasets
from coursekit.core import masks, models, pruning
from coursekit.core.claims import Claim
from coursekit.core.plots import percent, remaining_axis, rows_where, styled
from coursekit.core.progress import tqdm
from coursekit.core.train import TrainSettings, evaluate, fit
from coursekit.methods.sparse_speed import measure_latency
from coursekit.methods.structured import count_flops, count_parameters

BLOCK_COLORS = {"standard": "#444444", "bottleneck": "#0072B2", "fire": "#009E73", "depthwise": "#D55E00"}


@dataclass(frozen=True)
class ArchitectureSettings(TrainSettings):
    """``lectures/13_sparse_architectures.ipynb``'s knobs: the data set and how many training images
    (``train_size``, ``None``: the scale's), training (SGD with ``momentum``), the
    width multiplier ``width`` at which every block is compared, the ``widths`` at which the dense (standard)
    and the ``compact`` block are also trained (for the widget), the ``densities`` every net is pruned to, and
    the batch the forward passes are timed on; ``calibration`` training images re-estimate the BatchNorm
    statistics of every trained and every pruned net."""

    model: str = "blocknet"
    dataset: str = "digits"
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    batch_size: int = 128
    epochs: int = 6
    width: float = 0.5
    widths: tuple[float, ...] = (0.25, 0.5, 0.75)
    compact: str = "depthwise"
    densities: tuple[float, ...] = (1.0, 0.7, 0.5, 0.35, 0.25, 0.15, 0.08)
    train_size: int | None = 800
    timing_batch: int = 256
    calibration: int = 512

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dataset not in datasets.DATASETS:
            raise ValueError(f"dataset must be one of {datasets.DATASETS}, got {self.dataset!r}")
        if self.compact not in models.BLOCKS or self.compact == "standard":
            raise ValueError(f"compact must be one of {models.BLOCKS[1:]}, got {self.compact!r}")
        if self.width not in self.widths or min(self.widths) <= 0:
            raise ValueError(f"widths must be positive and include width={self.width}, got {self.widths}")
        if 1.0 not in self.densities or min(self.densities) <= 0 or max(self.densities) > 1:
            raise ValueError(f"densities must lie in (0, 1] and include 1.0 (the unpruned net), got {self.densities}")
        if self.timing_batch < 1 or self.calibration < 1:
            raise ValueError(f"timing_batch and calibration must be ≥ 1, got {self.timing_batch}, {self.calibration}")

    def fit_kwargs(self) -> dict:
        return super().fit_kwargs() | {"momentum": self.momentum}


PRESETS = {
    "ci": ArchitectureSettings(),
    "cpu": ArchitectureSettings(dataset="fashion_mnist", epochs=6, train_size=10_000, widths=(0.25, 0.5, 0.75),
                                densities=(1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05, 0.03)),
    "gpu": ArchitectureSettings(dataset="fashion_mnist", epochs=20, train_size=None, width=1.0, widths=(0.5, 1.0, 2.0),
                                densities=(1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05, 0.03, 0.02)),
}


def load_data(settings: ArchitectureSettings, scale: str | None = None, device=None) -> datasets.Dataset:
    """The data set at the scale's sizes, with at most ``train_size`` training images."""
    sizes = datasets.preset(datasets.SIZES, scale)
    if settings.train_size is not None:
        sizes = datasets.Sizes(train=settings.train_size, val=sizes.val, test=sizes.test)
    return datasets.load(settings.dataset, sizes=sizes, device=device)


def jobs(settings: ArchitectureSettings) -> list[tuple[str, float]]:
    """The (block, width) pairs trained: every block at ``width``, the standard and the compact one at all
    ``widths``."""
    found = [(block, settings.width) for block in models.BLOCKS]
    found += [(block, w) for w in settings.widths for block in ("standard", settings.compact) if w != settings.width]
    return found


def train_nets(settings: ArchitectureSettings, data: datasets.Dataset, seed: int = 0,
               progress: bool = True) -> dict[tuple[str, float], nn.Module]:
    """Every (block, width) net of :func:`jobs`, trained from the same seed, its BatchNorm statistics then
    re-estimated (:func:`recalibrate`)."""
    nets = {}
    for block, width in tqdm(jobs(settings), desc="nets", disable=not progress):
        net = models.build("blocknet", data.input_shape, data.num_classes, seed=seed, device=data.device,
                           block=block, width=width)
        fit(net, data, seed=seed, progress=False, **settings.fit_kwargs())
        recalibrate(net, data.x_train[: settings.calibration])
        nets[(block, width)] = net
    return nets


def compare(nets: dict[tuple[str, float], nn.Module], data: datasets.Dataset,
            settings: ArchitectureSettings) -> pd.DataFrame:
    """One row per block at ``width``: weights, multiply-accumulates per image, test accuracy, and the median
    time of a forward pass of ``timing_batch`` images (one thread, timed side by side) with its ratio to the
    standard block's (``speed-up``)."""
    chosen = {block: nets[(block, settings.width)] for block in models.BLOCKS}
    x = data.x_test[: settings.timing_batch]
    latency = measure_latency(chosen, x, baseline="standard")
    rows = [{"block": block, "weights": count_parameters(net),
             "MACs": count_flops(net, data.input_shape), "test_acc": evaluate(net, data.x_test, data.y_test)["acc"],
             "forward ms": 1e3 * latency.loc[block, "latency_s"], "speed-up": latency.loc[block, "speedup"]}
            for block, net in chosen.items()]
    return pd.DataFrame(rows).set_index("block")


@torch.no_grad()
def recalibrate(net: nn.Module, x: torch.Tensor, batch: int = 512) -> None:
    """Re-estimate every BatchNorm's running statistics on ``x`` (pruning changes what each layer sees)."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    was_training = net.training
    net.train()
    try:
        for start in range(0, len(x), batch):
            net(x[start:start + batch])
    finally:
        net.train(was_training)
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum  # further training updates the statistics as before


def prune_sweep(nets: dict[tuple[str, float], nn.Module], data: datasets.Dataset,
                settings: ArchitectureSettings) -> pd.DataFrame:
    """Every net pruned one-shot by weight magnitude, each layer to the same density, BatchNorm statistics
    re-estimated, no retraining: ``block``, ``width``, ``density``, ``weights left``, ``test_acc``."""
    rows = []
    for (block, width), net in nets.items():
        total = count_parameters(net)
        for density in settings.densities:
            pruned = copy.deepcopy(net)
            if density < 1:
                scores = {n: p.abs() for n, p in masks.prunable_parameters(pruned).items()}
                mask = pruning.mask_from_scores(scores, density, scope="layerwise")
                mask.apply(pruned)
                recalibrate(pruned, data.x_train[: settings.calibration])
                removed = mask.size - mask.kept
            else:
                removed = 0
            rows.append({"block": block, "width": width, "density": density, "weights left": total - removed,
                         "test_acc": evaluate(pruned, data.x_test, data.y_test)["acc"]})
    return pd.DataFrame(rows)


def breaking_density(sweep: pd.DataFrame, drop: float = 0.05) -> pd.DataFrame:
    """Per (block, width): the unpruned net's test accuracy, the highest density at which it falls more than
    ``drop`` below that (NaN if it never does), and ``retained``: the mean over the pruned densities of
    accuracy / unpruned accuracy (1: pruning cost nothing)."""
    rows = []
    for (block, width), part in sweep.groupby(["block", "width"], sort=False):
        part = part.sort_values("density", ascending=False)
        dense = part["test_acc"].iloc[0]
        fallen = part[part["test_acc"] < dense - drop]
        rows.append({"block": block, "width": width, "unpruned": dense,
                     "breaks at density": fallen["density"].iloc[0] if len(fallen) else float("nan"),
                     "retained": (part["test_acc"].iloc[1:] / dense).mean()})
    return pd.DataFrame(rows)


def headline(comparison: pd.DataFrame, sweep: pd.DataFrame, settings: ArchitectureSettings) -> list[Claim]:
    """Lecture 13's checks, weak forms that hold at ``ci`` scale for seeds 0–4.

    Each hand-made block has at least 3× fewer weights and multiply-accumulates than the standard one and is
    within 10 points of its accuracy (at ``ci``, 6 epochs on 800 digits: 0–7 points behind); pruned alike, the
    compact net keeps less of its accuracy than the standard net of the same width multiplier (the mean over the
    pruned densities of accuracy / unpruned accuracy, averaged over the widths, is 5 points lower or more).
    """
    claims = []
    standard = comparison.loc["standard"]
    for block in models.BLOCKS[1:]:
        row = comparison.loc[block]
        claims += [Claim(f"{block}: weights saved (×)", standard["weights"] / row["weights"], ">", 3),
                   Claim(f"{block}: MACs saved (×)", standard["MACs"] / row["MACs"], ">", 3),
                   Claim(f"{block} − standard test accuracy", row["test_acc"] - standard["test_acc"], ">", -0.1)]
    table = breaking_density(sweep).pivot(index="width", columns="block", values="retained")
    gap = (table["standard"] - table[settings.compact]).mean()
    claims.append(Claim(f"accuracy retained under pruning: standard − {settings.compact}, mean over widths",
                        float(gap), ">", 0.05))
    return claims


# ------------------------------------------------------------------ figures

def plot_comparison(comparison: pd.DataFrame) -> Figure:
    """Four panels, one bar per block: weights, multiply-accumulates per image, test accuracy, forward time."""
    panels = {"weights": "weights", "MACs": "multiply-accumulates per image", "test_acc": "test accuracy",
              "forward ms": "forward pass (ms, one thread)"}
    with styled():
        fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), layout="constrained")
        colors = [BLOCK_COLORS[b] for b in comparison.index]
        for ax, (column, title) in zip(axes, panels.items(), strict=True):
            values = comparison[column]
            ax.bar(comparison.index, values, color=colors)
            ax.set_title(title, fontsize=10)
            ax.tick_params(axis="x", rotation=30)
            for i, v in enumerate(values):
                text = f"{v:.1%}" if column == "test_acc" else (f"{v:.2g}" if column == "forward ms" else f"{v:,.0f}")
                ax.annotate(text, (i, v), ha="center", va="bottom", fontsize=8)
            if column == "test_acc":
                ax.set_ylim(max(0.0, values.min() - 0.1), 1.0)
                percent(ax.yaxis)
            else:
                ax.margins(y=0.15)
    return fig


def plot_pruning(sweep: pd.DataFrame, width: float) -> Figure:
    """Test accuracy of every block at ``width`` pruned alike: against the share of weights kept (left) and
    against the number of weights left (right)."""
    part = rows_where(sweep, "width", width, "plot_pruning")
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained", sharey=True)
        for block, rows in part.groupby("block", sort=False):
            rows = rows.sort_values("density", ascending=False)
            style = {"color": BLOCK_COLORS[block], "marker": "o", "lw": 2, "label": block}
            left.plot(rows["density"] * 100, rows["test_acc"], **style)
            right.plot(rows["weights left"], rows["test_acc"], **style)
        remaining_axis(left, part["density"])
        right.set_xscale("log")
        right.set_xlabel("weights left")
        left.set_ylabel("test accuracy (pruned, not retrained)")
        percent(left.yaxis)
        left.legend(fontsize="small", loc="lower left")
        fig.suptitle(f"width multiplier {width:g}: magnitude pruning, every layer to the same density", fontsize=10)
    return fig


def plot_choice(sweep: pd.DataFrame, width: float, density: float, compact: str) -> Figure:
    """The widget's figure: the standard and the compact net at one width multiplier, pruned to ``density``
    — their accuracy curves with the chosen density marked, and the weights left and accuracy there."""
    part = rows_where(sweep, "width", width, "plot_choice")
    at = rows_where(part, "density", density, "plot_choice").set_index("block")
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.0), layout="constrained", width_ratios=[1.6, 1])
        for block in ("standard", compact):
            rows = part[part["block"] == block].sort_values("density", ascending=False)
            left.plot(rows["density"] * 100, rows["test_acc"], marker="o", lw=2, color=BLOCK_COLORS[block],
                      label=block)
        left.axvline(density * 100, color="0.4", ls=":", lw=1)
        remaining_axis(left, part["density"])
        left.set_ylabel("test accuracy")
        percent(left.yaxis)
        left.legend(fontsize="small", loc="lower left")
        left.set_title(f"width multiplier {width:g}", fontsize=10)
        blocks = ["standard", compact]
        right.barh(blocks, [at.loc[b, "weights left"] for b in blocks], color=[BLOCK_COLORS[b] for b in blocks])
        for i, b in enumerate(blocks):
            right.annotate(f" {at.loc[b, 'weights left']:,.0f} weights, {at.loc[b, 'test_acc']:.0%}",
                           (at.loc[b, "weights left"], i), va="center", fontsize=9)
        right.set_xlim(0, at["weights left"].max() * 1.9)
        right.set_xlabel("weights left")
        right.set_title(f"at {density:.0%} of each layer's weights", fontsize=10)
    return fig
