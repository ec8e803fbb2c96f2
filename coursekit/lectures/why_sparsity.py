"""Lecture 01's experiment: what a pruned layer costs to store and to run, and why brains prune.

:func:`layer_costs` counts the bytes of a random square layer in every storage format
(:mod:`coursekit.methods.compress`) and times dense, CSR and structured products
(:mod:`coursekit.methods.sparse_speed`) over a range of densities (settings:
:class:`SpeedSettings`, one :data:`PRESETS` entry per scale). :func:`synapse_density`
holds Huttenlocher 1979's published synaptic densities by age. The figures (``plot_*``)
draw them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, LogLocator, MaxNLocator, NullLocator

from coursekit.core.plots import bytes_label, require_columns, rows_where, styled
from coursekit.core.progress import tqdm
from coursekit.core.runtime import check_fields
from coursekit.methods import compress
from coursekit.methods.sparse_speed import (
    break_even,
    check_densities,
    csr_storage_break_even,
    random_pruned,
    time_sparse_matmul,
)


@dataclass(frozen=True)
class SpeedSettings:
    """The knobs of ``lectures/01_why_sparsity.ipynb``: square ``size × size`` layers, a batch of inputs.

    ``storage_sizes`` are the layers whose bytes are counted in every format (k-means and
    Huffman coding of a large dense layer take a while); ``sizes`` are the layers timed.
    """

    sizes: tuple[int, ...] = (256, 512, 1024, 2048)
    storage_sizes: tuple[int, ...] = (256, 512, 1024)
    densities: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    batch: int = 64
    repeats: int = 7
    number: int = 3
    bits: int = 5
    index_bits: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        check_densities(self.densities)
        if min(self.sizes + self.storage_sizes, default=0) < 1 or not self.sizes or self.batch < 1:
            raise ValueError(f"SpeedSettings needs positive layer sizes (at least one timed) and batch >= 1; "
                             f"got sizes={self.sizes}, storage_sizes={self.storage_sizes}, batch={self.batch}")
        if self.repeats < 1 or self.number < 1 or not 1 <= self.bits <= 16 or not 1 <= self.index_bits <= 16:
            raise ValueError("SpeedSettings needs repeats >= 1, number >= 1 and bits, index_bits in 1..16; "
                             f"got repeats={self.repeats}, number={self.number}, bits={self.bits}, "
                             f"index_bits={self.index_bits}")


PRESETS = {  # lectures/01_why_sparsity.ipynb
    "ci": SpeedSettings(sizes=(256, 512, 1024), storage_sizes=(256, 512), repeats=5, number=2),
    "cpu": SpeedSettings(),
    "gpu": SpeedSettings(sizes=(256, 1024, 4096, 8192), storage_sizes=(256, 1024, 4096), batch=256,
                         repeats=9),
}


def storage_bytes(size: int, densities: Sequence[float], bits: int = 5, index_bits: int = 5,
                  seed: int = 0) -> pd.DataFrame:
    """Bytes of a random ``size × size`` layer at each density, in every format of :func:`compress.storage_table`.

    Returns:
        long form: ``size``, ``density``, ``format``, ``bytes``, ``ratio`` (dense / format)
        and ``max_error`` (0 for the lossless formats).
    """
    check_densities(densities)
    gen = torch.Generator().manual_seed(seed)
    tables = []
    for d in densities:
        table = compress.storage_table(random_pruned(size, size, d, gen), bits, index_bits)
        tables.append(table.reset_index().assign(size=size, density=d))
    return pd.concat(tables, ignore_index=True)[["size", "density", "format", "bytes", "ratio", "max_error"]]


def layer_costs(settings: SpeedSettings, device: str | torch.device = "cpu",
                progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lecture 01's grid: bytes per format (``storage_sizes``) and matmul times (``sizes``) per density.

    Returns:
        ``(storage, timing)``: :func:`storage_bytes` for each storage size, and
        :func:`time_sparse_matmul` for each timed size (column ``size`` added), stacked.
    """
    storage = pd.concat([storage_bytes(n, settings.densities, settings.bits, settings.index_bits, settings.seed)
                         for n in tqdm(settings.storage_sizes, desc="bytes", disable=not progress, leave=False)],
                        ignore_index=True)
    timing = pd.concat([time_sparse_matmul(settings.densities, n, n, settings.batch, settings.repeats,
                                           settings.number, device, settings.seed).assign(size=n)
                        for n in tqdm(settings.sizes, desc="timing", disable=not progress, leave=False)],
                       ignore_index=True)
    return storage, timing


HUTTENLOCHER_1979 = ("Huttenlocher, P. R. (1979). Synaptic density in human frontal cortex — developmental "
                     "changes and effects of aging. Brain Research 163(2), 195–205. "
                     "doi:10.1016/0006-8993(79)90349-4")


def synapse_density() -> pd.DataFrame:
    """Synaptic density in layer 3 of human middle frontal gyrus by age, from Huttenlocher 1979's abstract.

    Published summary values (synapses per mm³, electron microscopy of 21 brains, newborn
    to 90 years): adults 16–72 years 11.05 × 10⁸ ± 0.41 (SEM); aged 74–90 years 9.56 × 10⁸
    ± 0.28 (4 brains). Two rows are *approximate*, derived from the abstract's words:
    newborns "already high — in the range seen in adults" (drawn at the adult mean) and a
    maximum at 1–2 years "about 50 % above the adult mean" (1.5 × 11.05 × 10⁸).

    Returns:
        ``age_from``, ``age_to`` (years), ``density`` (10⁸ synapses / mm³), ``sem`` (NaN
        where none is given), ``approximate`` (bool) and ``source`` (what the abstract says).
    """
    adult = 11.05
    rows = [(0.0, 0.0, adult, np.nan, True, "newborn: 'already high, in the range seen in adults'"),
            (1.0, 2.0, 1.5 * adult, np.nan, True, "maximum at 1–2 years, 'about 50 % above the adult mean'"),
            (16.0, 72.0, adult, 0.41, False, "ages 16–72: mean 11.05 ± 0.41 (SEM)"),
            (74.0, 90.0, 9.56, 0.28, False, "ages 74–90: mean 9.56 ± 0.28 (SEM), 4 brains")]
    return pd.DataFrame(rows, columns=["age_from", "age_to", "density", "sem", "approximate", "source"])


# ------------------------------------------------------------------ figures

FORMAT_ORDER = ("dense", "bitmask", "csr", "coo", "relative index")


VARIANT_LABELS = {"dense": "dense (zeros multiplied)", "csr": "CSR sparse kernel",
                  "structured": "structured (fewer rows)"}


_DENSITY_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


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


FORMAT_LABELS = {"dense": "dense fp32 (a mask alone)", "bitmask": "bitmask: 1 bit per weight + values",
                 "csr": "CSR: row pointers, column indices, values", "coo": "COO: row and column per value",
                 "relative index": "relative index: gaps + fp32 values"}


_MARKERS = "osD^vP*X"


# -- lecture 01 ------------------------------------------------------------------------------
def plot_synapse_density(table: pd.DataFrame) -> Figure:
    """Published synaptic density vs age (:func:`coursekit.lectures.data_oblivious.synapse_density`), labelled as such.

    Age runs on a scale linear up to 1 year and logarithmic after (birth at 0). Values given
    with an SEM are drawn as bars over their age range with the ±SEM band; approximate
    values (read from the abstract's words) as open markers.
    """
    require_columns(table, ["age_from", "age_to", "density", "sem", "approximate"], "synapse_density")
    with styled():
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


def plot_storage_vs_density(storage: pd.DataFrame, size: int) -> Figure:
    """Bytes of a ``size × size`` fp32 layer in every storage format, against its density (log–log)."""
    require_columns(storage, ["size", "density", "format", "bytes"], "storage_vs_density")
    data = rows_where(storage, "size", size, "storage_vs_density")
    formats = [f for f in FORMAT_ORDER if f in set(data["format"])] + sorted(set(data["format"]) - set(FORMAT_ORDER))
    table = data.pivot(index="density", columns="format", values="bytes")[formats]
    with styled():
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
        ax.yaxis.set_major_formatter(bytes_label)
        ax.set_ylabel("bytes (log scale)")
        ax.set_title(f"Storing a {size}×{size} layer ({size * size:,} fp32 weights)", fontsize="medium")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), title="format")
    return fig


def plot_matmul_speed(timing: pd.DataFrame, size: int) -> Figure:
    """Left: time of ``W @ X`` per variant against density. Right: speed-up over dense, break-even marked."""
    require_columns(timing, ["size", "density", "dense_s", "csr_s", "structured_s", "csr_speedup", "structured_speedup"],
             "matmul_speed")
    data = rows_where(timing, "size", size, "matmul_speed").sort_values("density")
    colors = dict(zip(VARIANT_LABELS, sns.color_palette(n_colors=3), strict=True))
    with styled():
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
            if f"{v}_speedup_lo" in data:  # the spread over repeats: what machine load did to the ratio
                right.fill_between(data["density"], data[f"{v}_speedup_lo"], data[f"{v}_speedup_hi"],
                                   color=colors[v], alpha=0.2, lw=0)
        edge = break_even(data)
        if edge is not None:
            right.axvline(edge, color=colors["csr"], ls=":", lw=1.5)
            right.annotate(f"CSR pays off\nbelow ≈ {edge:.0%}", (edge, 1), xytext=(-6, -10), textcoords="offset points",
                           ha="right", va="top", fontsize="small", color=colors["csr"])
        right.set_yscale("log")
        right.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        right.yaxis.set_major_formatter(lambda v, _: f"{v:g}×")
        right.set_ylabel("speed-up over dense (log scale)")
        right.set_title("> 1: faster than the dense layer with its zeros\n(median; band: slowest to fastest repeat)",
                        fontsize="medium")
        right.legend(fontsize="small", loc="upper right")
        for ax in (left, right):
            _density_axis(ax, data["density"])
    return fig


def plot_layer_cost(storage: pd.DataFrame, timing: pd.DataFrame, size: int, density: float) -> Figure:
    """One layer at one density: bytes per format (left) and time per kernel (right), with ratios to dense."""
    require_columns(storage, ["size", "density", "format", "bytes"], "layer_cost")
    require_columns(timing, ["size", "density", "dense_s", "csr_s", "structured_s"], "layer_cost")
    stored = rows_where(rows_where(storage, "size", size, "layer_cost"), "density", density, "layer_cost").set_index("format")
    timed = rows_where(rows_where(timing, "size", size, "layer_cost"), "density", density, "layer_cost").iloc[0]
    formats = [f for f in FORMAT_ORDER if f in stored.index] + sorted(set(stored.index) - set(FORMAT_ORDER))
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.9), layout="constrained",
                                          gridspec_kw={"width_ratios": [1.25, 1]})
        colors = sns.color_palette(n_colors=len(formats))
        bytes_ = stored.loc[formats, "bytes"]
        left.barh([f if f != "dense" else "dense fp32" for f in formats][::-1], bytes_[::-1], color=colors[::-1])
        dense = bytes_["dense"]
        for y, b in enumerate(bytes_.to_numpy()[::-1]):
            left.annotate(f" {bytes_label(b)}  ({b / dense:.0%} of dense)", (b, y), va="center", fontsize="small")
        left.set_xlim(0, 1.75 * bytes_.max())
        left.xaxis.set_major_locator(MaxNLocator(4))
        left.xaxis.set_major_formatter(bytes_label)
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
