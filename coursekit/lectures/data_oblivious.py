"""Data-oblivious pruning (lecture 06): weight masks vs filter pruning vs low rank, and Deep Compression.

Three ways to shrink a trained network without looking at data (slide 7), compared on
one small VGG with BatchNorm trained on Fashion-MNIST:

* **magnitude** (Han, Pool, Tran & Dally 2015, "Learning both Weights and Connections"):
  zero the smallest ``|w|`` of every layer; the network keeps its shape;
* **filters** (Li et al. 2017): remove the filters of smallest L1 norm and rebuild
  smaller layers (:mod:`coursekit.methods.structured`);
* **low rank** (Denton et al. 2014): replace each layer by a truncated-SVD pair
  (:mod:`coursekit.methods.lowrank`).

Each method is taken to the same budgets (fractions of the conv and Linear weights
kept), then evaluated before and after a short fine-tuning (:func:`compare_methods`).
Only the two structured methods make the dense kernels do less work, so only they show
a measured speed-up; the weight mask reduces the FLOPs an *ideal* sparse kernel would
do, which no dense kernel does. :func:`knob_grid` reads filter and rank settings without
fine-tuning (what the lecture's widget browses), and :func:`deep_compression_stages`
runs Han, Mao & Dally 2016's pipeline: prune → retrain → quantise → Huffman code.
The lecture's figures are here too (``plot_*``).

On the CPU the drivers train and time on one thread (:func:`coursekit.core.runtime.one_thread`):
these networks are small, and on a busy machine a second thread costs far more in waiting
than it gains. Latency is measured by :func:`coursekit.methods.sparse_speed.measure_latency`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, NullLocator
from torch import nn

from coursekit.core import models, runtime
from coursekit.core.claims import Claim
from coursekit.core.data import Dataset
from coursekit.core.masks import Mask, prunable_parameters
from coursekit.core.plots import bytes_label, percent, require_columns, rows_where, styled
from coursekit.core.progress import tqdm
from coursekit.core.train import SGDSettings, evaluate, fit
from coursekit.methods import compress, lowrank, structured
from coursekit.methods.coding import check_bits
from coursekit.methods.sparse_speed import measure_latency

METHODS = ("magnitude", "filters", "low rank")


@dataclass(frozen=True)
class ObliviousSettings(SGDSettings):
    """The knobs of ``lectures/06_data_oblivious.ipynb`` (training ones from :class:`SGDSettings`).

    ``budgets`` are fractions of the conv and Linear weights kept by every method;
    ``filter_amounts`` (fractions of each layer's filters removed) and ``rank_fractions``
    (fractions of each layer's singular values kept) are the widget's settings;
    ``deep_density``, ``bits`` and ``index_bits`` are Deep Compression's pruning density,
    codebook bits (``2^bits`` shared weights per layer) and relative-index bits.
    """

    epochs: int = 4
    lr_decay: float = 0.8
    budgets: tuple[float, ...] = (0.5, 0.2)
    finetune_epochs: int = 2
    finetune_lr: float = 0.02
    filter_amounts: tuple[float, ...] = (0.25, 0.5, 0.75)
    rank_fractions: tuple[float, ...] = (0.5, 0.25, 0.1)
    deep_density: float = 0.3
    bits: int = 5
    index_bits: int = 5
    latency_batch: int = 128
    repeats: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        fractions = {"budgets": (self.budgets, False), "filter_amounts": (self.filter_amounts, False),
                     "rank_fractions": (self.rank_fractions, True)}
        for name, (values, closed) in fractions.items():
            if not values or not all(0 < v < 1 or (closed and v == 1) for v in values):
                raise ValueError(f"ObliviousSettings.{name} must be a non-empty tuple of fractions in "
                                 f"(0, 1{']' if closed else ')'}, got {values}")
        if not 0 < self.deep_density <= 1 or not self.finetune_lr > 0:
            raise ValueError(f"ObliviousSettings needs deep_density in (0, 1] and finetune_lr > 0, got "
                             f"{self.deep_density} and {self.finetune_lr}")
        if min(self.finetune_epochs, self.latency_batch, self.repeats) < 1:
            raise ValueError("ObliviousSettings needs finetune_epochs, latency_batch and repeats >= 1, got "
                             f"{self.finetune_epochs}, {self.latency_batch} and {self.repeats}")
        check_bits(self.bits)
        check_bits(self.index_bits, "index_bits")


PRESETS = {  # lectures/06_data_oblivious.ipynb
    "ci": ObliviousSettings(repeats=9),  # timings are cheap here; 3 repeats let a busy machine blur them
    "cpu": ObliviousSettings(width=1.0, epochs=8, lr_decay=0.8, budgets=(0.5, 0.3, 0.2, 0.1),
                             finetune_epochs=2, filter_amounts=(0.1, 0.25, 0.5, 0.75, 0.9),
                             rank_fractions=(0.75, 0.5, 0.25, 0.1, 0.05), latency_batch=256, repeats=9),
    "gpu": ObliviousSettings(width=2.0, epochs=30, lr_decay=0.92, budgets=(0.7, 0.5, 0.3, 0.2, 0.1, 0.05),
                             finetune_epochs=8, filter_amounts=(0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9),
                             rank_fractions=(0.75, 0.5, 0.35, 0.25, 0.15, 0.1, 0.05), latency_batch=1024,
                             repeats=15),
}


def _fit(settings: ObliviousSettings, model: nn.Module, data: Dataset, epochs: int, lr: float,
         hooks=(), desc: str = "training", progress: bool = False) -> float:
    """Train in place; returns the final test accuracy."""
    with runtime.one_thread(data.device):
        fit(model, data, **settings.fit_kwargs() | {"epochs": epochs, "lr": lr}, seed=settings.seed,
            hooks=hooks, progress=progress, desc=desc)
    return accuracy(model, data)


def accuracy(model: nn.Module, data: Dataset) -> float:
    """Accuracy of ``model`` on the test split."""
    with runtime.one_thread(data.device):
        return evaluate(model, *data.split("test"))["acc"]


@dataclass
class Dense:
    """The trained network every method starts from."""

    model: nn.Module
    test_acc: float


def train_dense(settings: ObliviousSettings, data: Dataset, progress: bool = True) -> Dense:
    """Train the lecture's network (``settings.model`` at ``settings.width``) from ``settings.seed``."""
    model = models.build(settings.model, data.input_shape, data.num_classes, seed=settings.seed,
                         device=data.device, width=settings.width)
    acc = _fit(settings, model, data, settings.epochs, settings.lr, desc="dense network", progress=progress)
    return Dense(model.eval(), acc)


def _weights(model: nn.Module) -> int:
    """Nonzero conv and Linear weights: what the budgets count."""
    return sum(int(torch.count_nonzero(p)) for p in prunable_parameters(model).values())


def _smallest_fitting(weights_at, limit: float, steps: int) -> int | None:
    """The smallest ``k`` in ``0..steps`` with ``weights_at(k) ≤ limit``, for a ``weights_at`` that never grows.

    ``weights_at`` may raise ``ValueError`` (a setting that empties a layer): such a ``k``
    counts as too far, and is never returned.
    """
    def fits(k: int) -> bool:
        try:
            return weights_at(k) <= limit
        except ValueError:
            return True

    low, high = 0, steps
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid + 1, high)
    try:
        return low if weights_at(low) <= limit else None
    except ValueError:
        return None


def filter_amount_for(model: nn.Module, budget: float, resolution: float = 0.01) -> float:
    """The smallest fraction of filters to remove from every layer so that at most ``budget`` of the weights remain.

    Removing a fraction ``a`` of the filters of every layer keeps about ``(1 − a)²`` of a
    middle layer's weights (its outputs *and* the next layer's inputs shrink); the exact
    count depends on rounding, so ``a`` is found by bisection on the real surgery (the
    weights left never grow with ``a``), to ``resolution``.
    """
    _check_budget(budget)
    _check_resolution(resolution)
    steps = round(1 / resolution)
    k = _smallest_fitting(lambda k: _weights(structured.prune_filters(model, k / steps)),
                          budget * _weights(model), steps - 1)
    if k is None:
        raise ValueError(f"filter pruning cannot reach {budget:.1%} of the weights: each layer keeps at "
                         "least one filter, and the input and output layers keep their sizes")
    return round(k / steps, 6)


def low_rank_layers(model: nn.Module) -> list[str]:
    """The layers low rank replaces: every Linear and ungrouped conv but the first and the last.

    The first conv reads the raw image (here one channel: a 3×3 filter bank is an
    ``out × 9`` matrix): factorising it saves a few dozen weights and adds a layer at the
    highest resolution. The last layer maps features to classes: at a low rank it cannot
    tell the classes apart (rank 1 sends every image through one number). Both are left
    whole, as filter pruning leaves the input and output sizes whole.
    """
    names = [n for n, m in model.named_modules()
             if isinstance(m, nn.Linear) or (isinstance(m, nn.modules.conv._ConvNd) and m.groups == 1)]
    return names[1:-1]


def low_rank_fraction_for(model: nn.Module, budget: float, resolution: float = 0.01) -> float:
    """The largest ``param_fraction`` of :func:`coursekit.methods.lowrank.low_rank` on :func:`low_rank_layers`
    that leaves at most ``budget`` of the whole network's weights (the first and last layers included)."""
    _check_budget(budget)
    _check_resolution(resolution)
    steps, layers = round(1 / resolution), low_rank_layers(model)
    k = _smallest_fitting(
        lambda k: _weights(lowrank.low_rank(model, param_fraction=(steps - k) / steps, layers=layers)),
        budget * _weights(model), steps - 1)
    if k is None:
        raise ValueError(f"low rank cannot reach {budget:.1%} of the weights: rank 1 in every middle layer "
                         "keeps more, and the first and last layers stay whole")
    return round((steps - k) / steps, 6)


def _check_resolution(resolution: float) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not 0 < resolution < 1:
        raise ValueError(f"resolution must lie in (0, 1), e.g. 0.01, got {resolution!r}")


def _check_budget(budget: float) -> None:
    if not isinstance(budget, (int, float)) or not 0 < budget <= 1:
        raise ValueError(f"budget must lie in (0, 1], got {budget!r}")


def prune(model: nn.Module, method: str, budget: float) -> tuple[nn.Module, Mask | None]:
    """A pruned copy of ``model`` keeping about ``budget`` of its conv and Linear weights.

    Returns the copy and, for ``magnitude``, the :class:`~coursekit.core.masks.Mask` that keeps
    its zeros at zero during fine-tuning (``None`` for the structured methods).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    _check_budget(budget)
    if method == "magnitude":
        pruned = copy.deepcopy(model)
        mask = compress.magnitude_mask(pruned, density=budget)
        return mask.apply(pruned), mask
    if method == "filters":
        return structured.prune_filters(model, filter_amount_for(model, budget)), None
    return lowrank.low_rank(model, param_fraction=low_rank_fraction_for(model, budget),
                            layers=low_rank_layers(model)), None


def _costs(model: nn.Module, data: Dataset) -> dict:
    return {"params": structured.count_parameters(model, nonzero=True), "weights": _weights(model),
            "flops": structured.count_flops(model, data.input_shape, skip_zeros=True),
            "dense_kernel_flops": structured.count_flops(model, data.input_shape)}


def compare_methods(settings: ObliviousSettings, data: Dataset, dense: Dense,
                    progress: bool = True) -> pd.DataFrame:
    """Accuracy, size, FLOPs and measured latency of every method at every budget, fine-tuned and not.

    Returns one row per (method, budget) plus the dense network (method ``dense``, budget 1):
    ``params`` (nonzero parameters), ``weights`` (nonzero conv/Linear weights), ``flops``
    (MACs per image an ideal kernel does, zeros skipped), ``dense_kernel_flops`` (MACs the
    network as stored makes a dense kernel do), ``flop_reduction`` (dense ``flops`` / ``flops``),
    ``test_acc`` (before fine-tuning), ``test_acc_ft`` (after ``finetune_epochs``),
    ``latency_s`` and ``speedup`` (measured side by side with the dense network).
    """
    rows, nets = [{"method": "dense", "budget": 1.0, **_costs(dense.model, data), "test_acc": dense.test_acc,
                   "test_acc_ft": dense.test_acc}], {"dense": dense.model}
    jobs = [(m, b) for b in settings.budgets for m in METHODS]
    for method, budget in tqdm(jobs, desc="prune + fine-tune", disable=not progress, leave=False):
        pruned, mask = prune(dense.model, method, budget)
        row = {"method": method, "budget": budget, **_costs(pruned, data), "test_acc": accuracy(pruned, data)}
        hooks = [mask.hook(pruned)] if mask is not None else []
        row["test_acc_ft"] = _fit(settings, pruned, data, settings.finetune_epochs, settings.finetune_lr, hooks)
        rows.append(row)
        nets[f"{method} {budget}"] = pruned  # fine-tuning changes the weights, not the work
    table = pd.DataFrame(rows)
    table["flop_reduction"] = table["flops"].iloc[0] / table["flops"]
    speed = measure_latency(nets, data.x_test[:settings.latency_batch], settings.repeats)
    return table.join(speed.reset_index(drop=True))


def knob_grid(settings: ObliviousSettings, data: Dataset, dense: Dense, progress: bool = True) -> pd.DataFrame:
    """Filter pruning and low rank at each of their settings, without fine-tuning (the lecture's widget).

    ``knob`` is the fraction of every layer's filters removed (``filters``; 0 = the dense
    network) or of its singular values kept (``low rank``; 1 = the dense network). Returns
    one row per (method, knob): ``params``, ``flops``, ``test_acc``, ``latency_s``, ``speedup``.
    """
    nets = {("filters", 0.0): dense.model, ("low rank", 1.0): dense.model}
    for a in settings.filter_amounts:
        nets["filters", a] = structured.prune_filters(dense.model, a)
    for f in settings.rank_fractions:
        nets["low rank", f] = lowrank.low_rank(dense.model, rank_fraction=f, layers=low_rank_layers(dense.model))
    rows = [{"method": m, "knob": k, "params": structured.count_parameters(net),
             "flops": structured.count_flops(net, data.input_shape), "test_acc": accuracy(net, data)}
            for (m, k), net in tqdm(nets.items(), desc="evaluating", disable=not progress, leave=False)]
    labels = {key: f"{key[0]} {key[1]}" for key in nets}
    speed = measure_latency({"dense": dense.model} | {labels[k]: net for k, net in nets.items()},
                            data.x_test[:settings.latency_batch], settings.repeats)
    table = pd.DataFrame(rows)
    table[list(speed.columns)] = speed.loc[[labels[k] for k in nets]].to_numpy()
    return table.sort_values(["method", "knob"], ignore_index=True)


@torch.no_grad()
def _decoded(model: nn.Module, bits: int, index_bits: int) -> nn.Module:
    """A copy whose conv and Linear weights went through Deep Compression's encoder and back."""
    copy_ = copy.deepcopy(model)
    for p in prunable_parameters(copy_).values():
        p.copy_(compress.DeepCompressed.encode(p, bits, index_bits).decode().to(p.device))
    return copy_


def deep_compression_stages(settings: ObliviousSettings, data: Dataset, dense: Dense) -> pd.DataFrame:
    """Han, Mao & Dally 2016 on the lecture's network: bytes, ratio and test accuracy after each stage.

    Magnitude-prune every layer to ``deep_density``, retrain with the mask (``finetune_epochs``),
    quantise each layer's nonzeros to ``2^bits`` k-means centroids (no centroid fine-tuning,
    which Han et al. add), then Huffman-code codes and relative positions. Bytes count the
    conv and Linear weights (BatchNorm and biases, a few hundred numbers, are left out);
    the last stage's accuracy is measured on weights decoded from the Huffman streams.
    """
    model = copy.deepcopy(dense.model)
    mask = compress.magnitude_mask(model, density=settings.deep_density)
    pruned_acc = accuracy(mask.apply(model), data)
    retrained_acc = _fit(settings, model, data, settings.finetune_epochs, settings.finetune_lr, [mask.hook(model)])
    compress.quantize_model(model, settings.bits)
    quantised_acc = accuracy(model, data)
    huffman_acc = accuracy(_decoded(model, settings.bits, settings.index_bits), data)
    total = compress.deep_compression(model, settings.bits, settings.index_bits)
    total = total[total["layer"] == "total"].set_index("stage")["bytes"]
    rows = [("dense fp32", "dense", dense.test_acc),
            (f"pruned to {settings.deep_density:.0%}", "pruned", pruned_acc),
            ("pruned + retrained", "pruned", retrained_acc),
            (f"quantised ({settings.bits}-bit k-means)", "quantized", quantised_acc),
            ("Huffman coded", "huffman", huffman_acc)]
    table = pd.DataFrame([{"stage": s, "bytes": int(total[k]), "test_acc": a} for s, k, a in rows])
    table.insert(2, "ratio", total["dense"] / table["bytes"])
    return table


def headline(table: pd.DataFrame, dense: Dense, stages: pd.DataFrame) -> list[Claim]:
    """Lecture 06's checks of :func:`compare_methods` and :func:`deep_compression_stages` (weak forms).

    At the smallest budget fine-tuning recovers what each method lost; at the mildest a
    weight mask costs under 5 points once fine-tuned; removing filters is faster than
    masking as many weights (a timing, measured side by side); Deep Compression shrinks
    the weights more than fivefold, its shared weights costing under 5 points.
    """
    pruned = table[table["method"] != "dense"]
    smallest = pruned[pruned["budget"] == pruned["budget"].min()].set_index("method")
    mildest = pruned[(pruned["budget"] == pruned["budget"].max()) & (pruned["method"] == "magnitude")].iloc[0]
    acc = stages["test_acc"]
    claims = [Claim(f"{m} at the smallest budget: fine-tuned minus pruned accuracy",
                    row["test_acc_ft"] - row["test_acc"], ">", 0) for m, row in smallest.iterrows()]
    return [*claims,
            Claim("mildest weight mask, fine-tuned, minus dense accuracy", mildest["test_acc_ft"] - dense.test_acc,
                  ">", -0.05),
            Claim("log2 of filters' speed-up over the weight mask's (smallest budget)",
                  math.log2(smallest.loc["filters", "speedup"] / smallest.loc["magnitude", "speedup"]), ">", 0),
            Claim("Deep Compression's size ratio", stages["ratio"].iloc[-1], ">", 5),
            Claim("quantised minus pruned + retrained accuracy", acc.iloc[3] - acc.iloc[2], ">", -0.05)]


# ------------------------------------------------------------------ figures

METHOD_ORDER = ("magnitude", "filters", "low rank")


# -- lecture 06 ------------------------------------------------------------------------------
def _method_colors(methods) -> dict[str, tuple]:
    palette = sns.color_palette(n_colors=len(METHOD_ORDER))
    return {m: palette[METHOD_ORDER.index(m)] if m in METHOD_ORDER else "k" for m in methods}


def plot_accuracy_vs_parameters(table: pd.DataFrame) -> Figure:
    """Test accuracy against nonzero parameters per method: fine-tuned (solid) and not (dashed)."""
    require_columns(table, ["method", "params", "test_acc", "test_acc_ft"], "accuracy_vs_parameters")
    dense = table[table["method"] == "dense"]
    pruned = table[table["method"] != "dense"]
    methods = [m for m in METHOD_ORDER if m in set(pruned["method"])]
    colors = _method_colors(methods)
    with styled():
        fig, ax = plt.subplots(figsize=(8.4, 4.6), layout="constrained")
        for m in methods:
            rows = pruned[pruned["method"] == m].sort_values("params")
            ax.plot(rows["params"], rows["test_acc_ft"], "o-", color=colors[m], lw=2, ms=7)
            ax.plot(rows["params"], rows["test_acc"], "o--", color=colors[m], lw=1.5, ms=6, mfc="white", mew=1.5)
        if not dense.empty:
            ax.axhline(dense["test_acc"].iloc[0], color="k", lw=1.2, ls=":")
            ax.plot(dense["params"], dense["test_acc"], "*", color="k", ms=15)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 3, 5)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
        ax.axhline(0.1, color="grey", lw=1, ls="-.")
        ax.annotate("chance", (1, 0.1), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                    textcoords="offset points", ha="right", fontsize="x-small", color="grey")
        ax.set_xlabel("nonzero parameters (log scale)")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        percent(ax.yaxis)
        ax.set_title("accuracy vs size: three data-oblivious methods", fontsize="medium")
        handles = [Line2D([], [], color=colors[m], lw=2, label=m) for m in methods] + [
            Line2D([], [], color="grey", lw=2, marker="o", label="fine-tuned"),
            Line2D([], [], color="grey", lw=1.5, ls="--", marker="o", mfc="white", label="not fine-tuned"),
            Line2D([], [], color="k", ls="", marker="*", ms=12, label="dense network")]
        ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def plot_speedup_vs_flops(table: pd.DataFrame) -> Figure:
    """Measured speed-up against FLOP reduction per method; the diagonal is time ∝ FLOPs."""
    require_columns(table, ["method", "budget", "flop_reduction", "speedup"], "speedup_vs_flops")
    pruned = table[table["method"] != "dense"]
    methods = [m for m in METHOD_ORDER if m in set(pruned["method"])]
    colors = _method_colors(methods)
    right = max(2.0, float(pruned["flop_reduction"].max())) * 1.3
    top = max(2.0, float(pruned.get("speedup_hi", pruned["speedup"]).max())) * 1.3
    low = min(0.5, float(pruned.get("speedup_lo", pruned["speedup"]).min()) / 1.3)
    offsets = {"magnitude": (5, 5), "filters": (5, 5), "low rank": (5, -13)}
    with styled():
        fig, ax = plt.subplots(figsize=(7.8, 4.8), layout="constrained")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.plot([1, right], [1, right], color="grey", lw=1.5, ls="--", label="ideal: time ∝ FLOPs")
        ax.axhline(1, color="k", lw=1.2, label="no speed-up")
        for m in methods:
            rows = pruned[pruned["method"] == m].sort_values("flop_reduction")
            ax.plot(rows["flop_reduction"], rows["speedup"], "o-", color=colors[m], lw=2, ms=8, label=m)
            if "speedup_lo" in rows:  # the spread over repeats: what machine load did to the ratio
                ax.errorbar(rows["flop_reduction"], rows["speedup"], fmt="none", ecolor=colors[m], capsize=3,
                            yerr=[rows["speedup"] - rows["speedup_lo"], rows["speedup_hi"] - rows["speedup"]])
            for r in rows.itertuples():
                ax.annotate(f"{r.budget:.0%}", (r.flop_reduction, r.speedup), xytext=offsets.get(m, (5, 5)),
                            textcoords="offset points", fontsize="x-small", color=colors[m])
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            axis.set_minor_locator(NullLocator())
            axis.set_major_formatter(lambda v, _: f"{v:g}×")
        ax.set_xlim(0.9, right)
        ax.set_ylim(low, top)
        ax.set_xlabel("FLOP reduction (dense MACs ÷ MACs with zeros skipped)")
        ax.set_ylabel("measured speed-up over dense")
        ax.set_title("FLOPs saved vs time saved (labels: share of weights kept;\n"
                     "bars: slowest to fastest repeat)", fontsize="medium")
        ax.legend(fontsize="small", loc="upper left")
    return fig


def plot_compression_stages(table: pd.DataFrame) -> Figure:
    """Deep Compression (:func:`coursekit.lectures.data_oblivious.deep_compression_stages`): ratio and accuracy per stage."""
    require_columns(table, ["stage", "bytes", "ratio", "test_acc"], "compression_stages")
    stages = list(table["stage"])[::-1]
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.6), layout="constrained", sharey=True)
        colors = sns.color_palette("crest", n_colors=len(stages))
        left.barh(stages, table["ratio"][::-1], color=colors)
        for y, r in enumerate(list(table.itertuples())[::-1]):
            left.annotate(f" {r.ratio:.1f}×  ({bytes_label(r.bytes)})", (r.ratio, y), va="center", fontsize="small")
        left.set_xlim(0, 1.45 * table["ratio"].max())
        left.xaxis.set_major_formatter(lambda v, _: f"{v:g}×")
        left.set_xlabel("compression ratio (dense bytes ÷ bytes)")
        right.barh(stages, table["test_acc"][::-1], color=colors)
        for y, a in enumerate(table["test_acc"][::-1]):
            right.annotate(f" {a:.1%}", (a, y), va="center", fontsize="small")
        right.set_xlim(0, 1.12)
        percent(right.xaxis)
        right.set_xlabel("test accuracy")
        fig.suptitle("Deep Compression, stage by stage (conv and Linear weights)", fontsize="medium")
    return fig


KNOB_LABELS = {"filters": "share of each layer's filters removed",
               "low rank": "share of each layer's singular values kept"}


def plot_knob_view(grid: pd.DataFrame, filters: float, rank: float) -> Figure:
    """Filter pruning (top row) and low rank (bottom row) across their settings, the chosen ones circled.

    Panels: test accuracy without fine-tuning, parameters as a share of the dense network,
    and the measured speed-up over it (:func:`coursekit.lectures.data_oblivious.knob_grid`).
    """
    require_columns(grid, ["method", "knob", "params", "test_acc", "speedup"], "knob_view")
    panels = (("test_acc", "accuracy, not fine-tuned"), ("params", "parameters (share of dense)"),
              ("speedup", "measured speed-up"))
    with styled():
        fig, axes = plt.subplots(2, 3, figsize=(13, 6.8), layout="constrained")
        for row, (method, knob) in zip(axes, (("filters", filters), ("low rank", rank)), strict=True):
            rows = rows_where(grid, "method", method, "knob_view").sort_values("knob")
            chosen = rows_where(rows, "knob", knob, "knob_view").iloc[0]
            dense = rows.loc[np.isclose(rows["knob"], 0.0 if method == "filters" else 1.0), "params"]
            dense = float(dense.iloc[0]) if len(dense) else float(rows["params"].max())
            color = _method_colors([method])[method]
            for ax, (column, label) in zip(row, panels, strict=True):
                scale = dense if column == "params" else 1.0
                ax.plot(rows["knob"], rows[column] / scale, "o-", color=color, lw=2)
                value = chosen[column] / scale
                ax.plot([knob], [value], "o", ms=14, mfc="none", mec="k", mew=2)
                ax.axvline(knob, color="grey", lw=1, ls=":")
                ax.annotate(f"{value:.0%}" if column != "speedup" else f"{value:.2f}×", (knob, value),
                            xytext=(11, 7), textcoords="offset points", fontweight="bold",
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
                ax.set_title(f"{method}: {label}", fontsize="medium")
                ax.set_xlabel(KNOB_LABELS.get(method, "setting"))
                ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
                if column == "speedup":
                    ax.axhline(1, color="k", lw=1)
                    ax.yaxis.set_major_formatter(lambda v, _: f"{v:g}×")
                    ax.set_ylim(0, max(2.0, 1.15 * grid["speedup"].max()))
                else:
                    ax.set_ylim(0, 1.05)
                    percent(ax.yaxis)
        fig.suptitle("no fine-tuning; speed measured side by side with the dense network", fontsize="medium")
    return fig


def plot_time_by_layer_type(table: pd.DataFrame, title: str = "where a forward pass spends its time") -> Figure:
    """Share of forward time per layer type (:func:`coursekit.methods.sparse_speed.time_by_layer_type`) next to its share of MACs."""
    require_columns(table, ["layer type", "time_share", "flop_share"], "time_by_layer_type")
    data = table.sort_values("time_share")
    with styled():
        fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(data) + 1.6), layout="constrained")
        y = np.arange(len(data))
        colors = sns.color_palette(n_colors=2)
        ax.barh(y + 0.2, data["time_share"], height=0.4, color=colors[0], label="share of measured time")
        ax.barh(y - 0.2, data["flop_share"], height=0.4, color=colors[1], label="share of counted MACs")
        for i, (t, f) in enumerate(zip(data["time_share"], data["flop_share"], strict=True)):
            for offset, share in ((0.2, t), (-0.2, f)):
                if share >= 0.005:
                    ax.annotate(f" {share:.0%}", (share, i + offset), va="center", fontsize="x-small")
        ax.set_yticks(y, data["layer type"])
        ax.set_xlim(0, 1.08)
        percent(ax.xaxis)
        ax.set_title(title, fontsize="medium")
        ax.legend(fontsize="small", loc="lower right")
    return fig
