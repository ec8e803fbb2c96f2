"""Figures of lectures 01 (why sparsity) and 06 (data-oblivious pruning): data in, a ``Figure`` out.

Same contract as :mod:`coursekit.plots` (whose style they share): each interactive
figure is one of these functions wrapped by :func:`coursekit.widgets.interactive_plot`,
and the notebook draws it once more with fixed arguments.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, LogLocator, MaxNLocator, NullLocator

from coursekit.plots import _styled
from coursekit.sparse_speed import break_even, csr_storage_break_even

FORMAT_ORDER = ("dense", "bitmask", "csr", "coo", "relative index")
VARIANT_LABELS = {"dense": "dense (zeros multiplied)", "csr": "CSR sparse kernel",
                  "structured": "structured (fewer rows)"}
METHOD_ORDER = ("magnitude", "filters", "low rank")
_DENSITY_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _require(table: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} needs columns {missing}; it has {list(table.columns)}")


def _percent(axis) -> None:
    axis.set_major_formatter(lambda v, _: f"{v:.0%}")


def _density_axis(ax, densities) -> None:
    """Density (fraction of weights kept) on a log axis, labelled in percent."""
    ax.set_xscale("log")
    lo, hi = min(densities), max(densities)
    ticks = [t for t in _DENSITY_TICKS if lo / 1.01 <= t <= hi * 1.01] or [lo, hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(lambda v, _: f"{v * 100:g} %")
    ax.set_xlim(lo / 1.3, hi * 1.3)
    ax.set_xlabel("density (share of weights kept)")


def _bytes(v: float, _=None) -> str:
    """Bytes in decimal units (kB = 1000 B), so decades on a log axis read 1 kB, 10 kB, 100 kB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= size:
            return f"{v / size:.3g} {unit}"
    return f"{v:.0f} B"


FORMAT_LABELS = {"dense": "dense fp32 (a mask alone)", "bitmask": "bitmask: 1 bit per weight + values",
                 "csr": "CSR: row pointers, column indices, values", "coo": "COO: row and column per value",
                 "relative index": "relative index: gaps + fp32 values"}
_MARKERS = "osD^vP*X"


def _one(table: pd.DataFrame, column: str, value, what: str) -> pd.DataFrame:
    numeric = pd.api.types.is_numeric_dtype(table[column])
    rows = table[np.isclose(table[column], value)] if numeric else table[table[column] == value]
    if rows.empty:
        raise ValueError(f"{what}: no rows with {column} = {value!r}; the table has "
                         f"{sorted(table[column].unique().tolist())}")
    return rows


# -- lecture 01 ------------------------------------------------------------------------------
def synapse_density(table: pd.DataFrame) -> Figure:
    """Published synaptic density vs age (:func:`coursekit.sparsity.synapse_density`), labelled as such.

    Age runs on a scale linear up to 1 year and logarithmic after (birth at 0). Values given
    with an SEM are drawn as bars over their age range with the ±SEM band; approximate
    values (read from the abstract's words) as open markers.
    """
    _require(table, ["age_from", "age_to", "density", "sem", "approximate"], "synapse_density")
    with _styled():
        fig, ax = plt.subplots(figsize=(8, 4.4), layout="constrained")
        colors = sns.color_palette(n_colors=2)
        for row in table.itertuples():
            color = colors[1] if row.approximate else colors[0]
            ages = [row.age_from, row.age_to]
            if row.age_from == row.age_to:
                ax.plot(ages[:1], [row.density], "o", ms=10, mfc="white" if row.approximate else color,
                        mec=color, mew=2)
            else:
                ax.plot(ages, [row.density] * 2, "-" if not row.approximate else "--", color=color, lw=3,
                        marker="o", mfc="white" if row.approximate else color, mec=color, mew=2, ms=7)
            if not np.isnan(row.sem):
                ax.fill_between(ages, row.density - row.sem, row.density + row.sem, color=color, alpha=0.25, lw=0)
        ax.axvspan(2, 16, color="grey", alpha=0.12, lw=0)
        ax.text(5.6, 19.3, "net synapse elimination\n(ages 2–16)", ha="center", va="top", fontsize="small")
        ax.set_xscale("symlog", linthresh=1, linscale=0.6)
        ticks = [0, 0.5, 1, 2, 5, 10, 16, 30, 50, 90]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(lambda v, _: "birth" if v == 0 else f"{v:g}")
        ax.set_xlim(-0.05, 100)
        ax.set_ylim(0, 20)
        ax.set_xlabel("age [years]  (linear to 1 year, logarithmic after)")
        ax.set_ylabel("synaptic density\n[10⁸ synapses / mm³]")
        ax.set_title("Human frontal cortex (middle frontal gyrus, layer 3): published values", fontsize="medium")
        handles = [Line2D([], [], color=colors[0], lw=3, marker="o", label="published mean ± SEM"),
                   Line2D([], [], color=colors[1], lw=3, ls="--", marker="o", mfc="white", mew=2,
                          label="approximate (from the abstract's wording)")]
        ax.legend(handles=handles, loc="lower left", fontsize="small")
        fig.text(0.01, -0.01, "Data: Huttenlocher 1979, Brain Research 163:195–205 (values stated in the "
                 "abstract; not digitised from the figures).", fontsize="x-small", ha="left", va="top")
    return fig


def storage_vs_density(storage: pd.DataFrame, size: int) -> Figure:
    """Bytes of a ``size × size`` fp32 layer in every storage format, against its density (log–log)."""
    _require(storage, ["size", "density", "format", "bytes"], "storage_vs_density")
    data = _one(storage, "size", size, "storage_vs_density")
    formats = [f for f in FORMAT_ORDER if f in set(data["format"])] + sorted(set(data["format"]) - set(FORMAT_ORDER))
    table = data.pivot(index="density", columns="format", values="bytes")[formats]
    with _styled():
        fig, ax = plt.subplots(figsize=(9.6, 4.6), layout="constrained")
        colors = sns.color_palette(n_colors=len(formats))
        for color, marker, fmt in zip(colors, _MARKERS, formats, strict=False):
            dense = fmt == "dense"
            ax.plot(table.index, table[fmt], "-" if dense else f"{marker}-", color="k" if dense else color,
                    lw=3 if dense else 2, ms=6, label=FORMAT_LABELS.get(fmt, fmt))
        edge = csr_storage_break_even(size, size) if "csr" in table else None
        if edge is not None and edge < table.index.max():
            ax.axvline(edge, color="grey", ls=":", lw=1.5)
            ax.annotate(f"CSR smaller than dense\nbelow {edge:.1%} density", (edge, 0.04), xycoords=("data", "axes fraction"),
                        xytext=(-6, 0), textcoords="offset points", ha="right", va="bottom", fontsize="small")
        _density_axis(ax, table.index)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_bytes)
        ax.set_ylabel("bytes (log scale)")
        ax.set_title(f"Storing a {size}×{size} layer ({size * size:,} fp32 weights)", fontsize="medium")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), title="format")
    return fig


def matmul_speed(timing: pd.DataFrame, size: int) -> Figure:
    """Left: time of ``W @ X`` per variant against density. Right: speed-up over dense, break-even marked."""
    _require(timing, ["size", "density", "dense_s", "csr_s", "structured_s", "csr_speedup", "structured_speedup"],
             "matmul_speed")
    data = _one(timing, "size", size, "matmul_speed").sort_values("density")
    colors = dict(zip(VARIANT_LABELS, sns.color_palette(n_colors=3), strict=True))
    with _styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.3), layout="constrained")
        for v, label in VARIANT_LABELS.items():
            left.plot(data["density"], 1e3 * data[f"{v}_s"], "o-", color=colors[v], lw=2, label=label)
        left.set_yscale("log")
        left.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        left.yaxis.set_major_formatter(lambda v, _: f"{v:g}")
        left.set_ylabel("time per product [ms] (log scale)")
        left.set_title(f"{size}×{size} weights × a batch, median over repeats", fontsize="medium")
        left.legend(fontsize="small")
        right.axhline(1, color="k", lw=1.5)
        for v in ("csr", "structured"):
            right.plot(data["density"], data[f"{v}_speedup"], "o-", color=colors[v], lw=2, label=VARIANT_LABELS[v])
        edge = break_even(data)
        if edge is not None:
            right.axvline(edge, color=colors["csr"], ls=":", lw=1.5)
            right.annotate(f"CSR pays off\nbelow ≈ {edge:.0%}", (edge, 1), xytext=(-6, -10), textcoords="offset points",
                           ha="right", va="top", fontsize="small", color=colors["csr"])
        right.set_yscale("log")
        right.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        right.yaxis.set_major_formatter(lambda v, _: f"{v:g}×")
        right.set_ylabel("speed-up over dense (log scale)")
        right.set_title("> 1: faster than the dense layer with its zeros", fontsize="medium")
        right.legend(fontsize="small", loc="upper right")
        for ax in (left, right):
            _density_axis(ax, data["density"])
    return fig


def layer_cost(storage: pd.DataFrame, timing: pd.DataFrame, size: int, density: float) -> Figure:
    """One layer at one density: bytes per format (left) and time per kernel (right), with ratios to dense."""
    _require(storage, ["size", "density", "format", "bytes"], "layer_cost")
    _require(timing, ["size", "density", "dense_s", "csr_s", "structured_s"], "layer_cost")
    stored = _one(_one(storage, "size", size, "layer_cost"), "density", density, "layer_cost").set_index("format")
    timed = _one(_one(timing, "size", size, "layer_cost"), "density", density, "layer_cost").iloc[0]
    formats = [f for f in FORMAT_ORDER if f in stored.index] + sorted(set(stored.index) - set(FORMAT_ORDER))
    with _styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.9), layout="constrained",
                                          gridspec_kw={"width_ratios": [1.25, 1]})
        colors = sns.color_palette(n_colors=len(formats))
        bytes_ = stored.loc[formats, "bytes"]
        left.barh([f if f != "dense" else "dense fp32" for f in formats][::-1], bytes_[::-1], color=colors[::-1])
        dense = bytes_["dense"]
        for y, b in enumerate(bytes_.to_numpy()[::-1]):
            left.annotate(f" {_bytes(b)}  ({b / dense:.0%} of dense)", (b, y), va="center", fontsize="small")
        left.set_xlim(0, 1.75 * bytes_.max())
        left.xaxis.set_major_locator(MaxNLocator(4))
        left.xaxis.set_major_formatter(_bytes)
        left.set_xlabel("bytes")
        left.set_title(f"storage, {size}×{size} layer at {density:.0%} density", fontsize="medium")
        variants = list(VARIANT_LABELS)
        times = [1e3 * timed[f"{v}_s"] for v in variants]
        right.barh([VARIANT_LABELS[v] for v in variants][::-1], times[::-1],
                   color=sns.color_palette(n_colors=3)[::-1])
        for y, t in enumerate(times[::-1]):
            right.annotate(f" {t:.3g} ms  ({times[0] / t:.2g}× dense speed)", (t, y), va="center", fontsize="small")
        right.set_xlim(0, 1.9 * max(times))
        right.set_xlabel("time per product [ms]")
        right.set_title("time of W @ X (median)", fontsize="medium")
    return fig


# -- lecture 06 ------------------------------------------------------------------------------
def _method_colors(methods) -> dict[str, tuple]:
    palette = sns.color_palette(n_colors=len(METHOD_ORDER))
    return {m: palette[METHOD_ORDER.index(m)] if m in METHOD_ORDER else "k" for m in methods}


def accuracy_vs_parameters(table: pd.DataFrame) -> Figure:
    """Test accuracy against nonzero parameters per method: fine-tuned (solid) and not (dashed)."""
    _require(table, ["method", "params", "test_acc", "test_acc_ft"], "accuracy_vs_parameters")
    dense = table[table["method"] == "dense"]
    pruned = table[table["method"] != "dense"]
    methods = [m for m in METHOD_ORDER if m in set(pruned["method"])]
    colors = _method_colors(methods)
    with _styled():
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
        _percent(ax.yaxis)
        ax.set_title("accuracy vs size: three data-oblivious methods", fontsize="medium")
        handles = [Line2D([], [], color=colors[m], lw=2, label=m) for m in methods] + [
            Line2D([], [], color="grey", lw=2, marker="o", label="fine-tuned"),
            Line2D([], [], color="grey", lw=1.5, ls="--", marker="o", mfc="white", label="not fine-tuned"),
            Line2D([], [], color="k", ls="", marker="*", ms=12, label="dense network")]
        ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def speedup_vs_flops(table: pd.DataFrame) -> Figure:
    """Measured speed-up against FLOP reduction per method; the diagonal is time ∝ FLOPs."""
    _require(table, ["method", "budget", "flop_reduction", "speedup"], "speedup_vs_flops")
    pruned = table[table["method"] != "dense"]
    methods = [m for m in METHOD_ORDER if m in set(pruned["method"])]
    colors = _method_colors(methods)
    right = max(2.0, float(pruned["flop_reduction"].max())) * 1.3
    top = max(2.0, float(pruned["speedup"].max())) * 1.3
    low = min(0.5, float(pruned["speedup"].min()) / 1.3)
    offsets = {"magnitude": (5, 5), "filters": (5, 5), "low rank": (5, -13)}
    with _styled():
        fig, ax = plt.subplots(figsize=(7.8, 4.8), layout="constrained")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.plot([1, right], [1, right], color="grey", lw=1.5, ls="--", label="ideal: time ∝ FLOPs")
        ax.axhline(1, color="k", lw=1.2, label="no speed-up")
        for m in methods:
            rows = pruned[pruned["method"] == m].sort_values("flop_reduction")
            ax.plot(rows["flop_reduction"], rows["speedup"], "o-", color=colors[m], lw=2, ms=8, label=m)
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
        ax.set_title("FLOPs saved vs time saved (labels: share of weights kept)", fontsize="medium")
        ax.legend(fontsize="small", loc="upper left")
    return fig


def compression_stages(table: pd.DataFrame) -> Figure:
    """Deep Compression (:func:`coursekit.sparsity.deep_compression_stages`): ratio and accuracy per stage."""
    _require(table, ["stage", "bytes", "ratio", "test_acc"], "compression_stages")
    stages = list(table["stage"])[::-1]
    with _styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.6), layout="constrained", sharey=True)
        colors = sns.color_palette("crest", n_colors=len(stages))
        left.barh(stages, table["ratio"][::-1], color=colors)
        for y, r in enumerate(list(table.itertuples())[::-1]):
            left.annotate(f" {r.ratio:.1f}×  ({_bytes(r.bytes)})", (r.ratio, y), va="center", fontsize="small")
        left.set_xlim(0, 1.45 * table["ratio"].max())
        left.xaxis.set_major_formatter(lambda v, _: f"{v:g}×")
        left.set_xlabel("compression ratio (dense bytes ÷ bytes)")
        right.barh(stages, table["test_acc"][::-1], color=colors)
        for y, a in enumerate(table["test_acc"][::-1]):
            right.annotate(f" {a:.1%}", (a, y), va="center", fontsize="small")
        right.set_xlim(0, 1.12)
        _percent(right.xaxis)
        right.set_xlabel("test accuracy")
        fig.suptitle("Deep Compression, stage by stage (conv and Linear weights)", fontsize="medium")
    return fig


KNOB_LABELS = {"filters": "share of each layer's filters removed",
               "low rank": "share of each layer's singular values kept"}


def knob_view(grid: pd.DataFrame, filters: float, rank: float) -> Figure:
    """Filter pruning (top row) and low rank (bottom row) across their settings, the chosen ones circled.

    Panels: test accuracy without fine-tuning, parameters as a share of the dense network,
    and the measured speed-up over it (:func:`coursekit.sparsity.knob_grid`).
    """
    _require(grid, ["method", "knob", "params", "test_acc", "speedup"], "knob_view")
    panels = (("test_acc", "accuracy, not fine-tuned"), ("params", "parameters (share of dense)"),
              ("speedup", "measured speed-up"))
    with _styled():
        fig, axes = plt.subplots(2, 3, figsize=(13, 6.8), layout="constrained")
        for row, (method, knob) in zip(axes, (("filters", filters), ("low rank", rank)), strict=True):
            rows = _one(grid, "method", method, "knob_view").sort_values("knob")
            chosen = _one(rows, "knob", knob, "knob_view").iloc[0]
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
                    _percent(ax.yaxis)
        fig.suptitle("no fine-tuning; speed measured side by side with the dense network", fontsize="medium")
    return fig


def time_by_layer_type(table: pd.DataFrame, title: str = "where a forward pass spends its time") -> Figure:
    """Share of forward time per layer type (:func:`coursekit.sparse_speed.time_by_layer_type`) next to its share of MACs."""
    _require(table, ["layer type", "time_share", "flop_share"], "time_by_layer_type")
    data = table.sort_values("time_share")
    with _styled():
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
        _percent(ax.xaxis)
        ax.set_title(title, fontsize="medium")
        ax.legend(fontsize="small", loc="lower right")
    return fig
