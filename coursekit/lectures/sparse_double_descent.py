"""Lecture 14's experiment: sparse double descent under label noise (slide 14; He et al. 2022).

:func:`run` sweeps densities at each label-noise level for several seeds
(:func:`coursekit.methods.double_descent.sweep`), :func:`curve` averages the seeds,
:func:`phases` reads off each noise level's dense accuracy, best sparse accuracy and collapse,
and :func:`headline` states the lecture's checks. The figures are here too (``plot_*``).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from coursekit.core import data as datasets
from coursekit.core.claims import Claim
from coursekit.core.plots import percent, remaining_axis, require_columns, rows_where, styled
from coursekit.core.progress import tqdm
from coursekit.methods.double_descent import SweepSettings, sweep

NOISE_COLORS = ("0.35", "C0", "C3", "C1", "C2")


@dataclass(frozen=True)
class DoubleDescentSettings(SweepSettings):
    """``lectures/14_double_descent.ipynb``'s knobs: a sweep's (:class:`SweepSettings`), the data set and its
    number of training examples (few, so that the dense network can memorise the wrong labels), and the
    ``seeds``."""

    dataset: str = "digits"
    train_size: int = 600
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dataset not in datasets.DATASETS or self.train_size < 10 or not self.seeds:
            raise ValueError(f"dataset must be one of {datasets.DATASETS}, train_size ≥ 10 and at least one seed; "
                             f"got {self.dataset!r}, {self.train_size}, {self.seeds}")


_CI_DENSITIES = (1.0, 0.5, 0.25, 0.15, 0.1, 0.07, 0.05, 0.035, 0.025, 0.015, 0.008)
PRESETS = {
    "ci": DoubleDescentSettings(densities=_CI_DENSITIES),
    "cpu": DoubleDescentSettings(hidden=(256, 256), epochs=150, train_size=1_000, seeds=(0, 1, 2),
                                 densities=(1.0, 0.6, 0.35, 0.25, 0.18, 0.12, 0.09, 0.07, 0.05, 0.035, 0.025, 0.018,
                                            0.012, 0.006)),
    "gpu": DoubleDescentSettings(dataset="fashion_mnist", hidden=(512, 512), epochs=200, train_size=10_000,
                                 seeds=(0, 1, 2), noise=(0.0, 0.2, 0.4, 0.6),
                                 densities=tuple(round(0.8**i, 4) for i in range(0, 30, 2))),
}


def load_data(settings: DoubleDescentSettings, device=None) -> datasets.Dataset:
    """The data set with ``train_size`` training examples (the test split whole, for a precise accuracy)."""
    return datasets.load(settings.dataset, sizes=datasets.Sizes(train=settings.train_size, val=100, test=None),
                         device=device)


def run(settings: DoubleDescentSettings, data: datasets.Dataset, seeds: tuple[int, ...] | None = None,
        progress: bool = True) -> pd.DataFrame:
    """Every seed's sweep in one table (the sweep's columns and ``seed``)."""
    seeds = seeds or settings.seeds
    return pd.concat([sweep(settings, data, seed, progress=False).assign(seed=seed)
                      for seed in tqdm(seeds, desc="seeds", disable=not progress)], ignore_index=True)


def curve(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (noise, density): test accuracy, training accuracy, memorised share (and the spread
    of the test accuracy, ``test_acc_min`` and ``test_acc_max``)."""
    require_columns(results, ["noise", "density", "test_acc", "train_acc", "memorised"], "curve")
    grouped = results.groupby(["noise", "density"])
    table = grouped[["test_acc", "train_acc", "memorised"]].mean()
    table["test_acc_min"] = grouped["test_acc"].min()
    table["test_acc_max"] = grouped["test_acc"].max()
    return table.reset_index().sort_values(["noise", "density"], ascending=[True, False], ignore_index=True)


def phases(results: pd.DataFrame) -> pd.DataFrame:
    """Per noise level (mean curve over seeds): the dense network's test accuracy, the lowest accuracy between it
    and the best sparse network (the first descent), the best sparse accuracy and its density, and the accuracy
    at the sparsest density (the collapse)."""
    rows = []
    for noise, part in curve(results).groupby("noise"):
        part = part.sort_values("density", ascending=False)
        dense = part[part["density"] == 1.0]["test_acc"]
        if dense.empty:
            raise ValueError("phases need the dense network (density 1.0) in the sweep")
        sparse = part[part["density"] < 1.0]
        best = sparse.loc[sparse["test_acc"].idxmax()]
        before = part[part["density"] >= best["density"]]
        rows.append({"noise": noise, "dense": dense.iloc[0], "dip": before["test_acc"].min(),
                     "best sparse": best["test_acc"], "best density": best["density"],
                     "sparsest": part["test_acc"].iloc[-1], "sparsest density": part["density"].iloc[-1],
                     "memorised (dense)": part["memorised"].iloc[0],
                     "memorised (best)": best["memorised"]})
    return pd.DataFrame(rows).set_index("noise")


def headline(results: pd.DataFrame) -> list[Claim]:
    """Lecture 14's checks (He et al. 2022), weak forms that hold at ``ci`` scale for seeds 0–4.

    With label noise, the best pruned network is far more accurate than the dense one, which memorises the
    wrong labels (at ``ci``, seeds 0–4: +8 to +11 points at 20 % noise, +19 to +23 at 40 %; the claim asks for a
    fifth of the noise); without noise pruning buys at most a point; every curve collapses at the sparsest density
    (at least 15 points below its best: 33–86 at ``ci``, 22–69 at ``cpu``). They hold at ``cpu`` scale too (3 seeds:
    +6 and +17 points, collapse 25 and 22 points).
    """
    table = phases(results)
    claims = []
    for noise, row in table.iterrows():
        gain = row["best sparse"] - row["dense"]
        if noise == 0:
            claims.append(Claim("no noise: best sparse − dense test accuracy", gain, "<", 0.03))
        else:
            claims.append(Claim(f"{noise:.0%} noise: best sparse − dense test accuracy", gain, ">", min(noise, 0.5) / 5))
            claims.append(Claim(f"{noise:.0%} noise: dense network memorises the wrong labels",
                                row["memorised (dense)"], ">", 0.8))
        claims.append(Claim(f"{noise:.0%} noise: collapse below the best (points)",
                            row["best sparse"] - row["sparsest"], ">", 0.15))
    return claims


# ------------------------------------------------------------------ figures

def _noise_label(noise: float) -> str:
    return "no label noise" if noise == 0 else f"{noise:.0%} of the labels wrong"


def plot_curves(results: pd.DataFrame) -> Figure:
    """The headline figure: test accuracy against the weights left, one curve per noise level, with the spread
    over seeds; the dense network's accuracy as a dotted line in the curve's colour."""
    table = curve(results)
    with styled():
        fig, ax = plt.subplots(figsize=(9, 4.6), layout="constrained")
        for i, (noise, part) in enumerate(table.groupby("noise")):
            color = NOISE_COLORS[i % len(NOISE_COLORS)]
            ax.plot(part["density"] * 100, part["test_acc"], marker="o", color=color, lw=2,
                    label=_noise_label(noise))
            if results["seed"].nunique() > 1:
                ax.fill_between(part["density"] * 100, part["test_acc_min"], part["test_acc_max"], color=color,
                                alpha=0.15)
            ax.axhline(part["test_acc"].iloc[0], color=color, lw=1, ls=":")
        remaining_axis(ax, table["density"])
        percent(ax.yaxis)
        ax.set_ylabel("test accuracy (clean labels)")
        ax.set_title(f"pruned and retrained MLPs; dotted: the dense network; {results['seed'].nunique()} seed(s)",
                     fontsize=10)
        ax.legend(loc="lower left", fontsize="small")
    return fig


def plot_noise(results: pd.DataFrame, noise: float) -> Figure:
    """The widget's figure: at one noise level, test accuracy and what the network fits of its training labels
    (the wrong ones it memorised, the right ones it learned) against the weights left."""
    table = curve(results)
    part = rows_where(table, "noise", noise, "plot_noise")
    clean = table[table["noise"] == 0]
    fitted = rows_where(results, "noise", noise, "plot_noise").groupby("density")["clean_fit"].mean()
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained", sharex=True)
        if not clean.empty and noise != 0:
            left.plot(clean["density"] * 100, clean["test_acc"], color="0.6", lw=1.5, label="no label noise")
        left.plot(part["density"] * 100, part["test_acc"], marker="o", color="C3", lw=2, label=_noise_label(noise))
        left.axhline(part["test_acc"].iloc[0], color="C3", lw=1, ls=":", label="dense network")
        left.set_ylabel("test accuracy")
        left.legend(fontsize="small", loc="lower left")
        right.plot(fitted.index * 100, fitted.values, marker="o", color="C2", lw=2,
                   label="correct training labels fitted")
        if noise != 0:
            right.plot(part["density"] * 100, part["memorised"], marker="o", color="C1", lw=2,
                       label="wrong training labels memorised")
        right.set_ylabel("share of training examples")
        right.set_ylim(-0.03, 1.03)
        right.legend(fontsize="small", loc="center left")
        for ax in (left, right):
            remaining_axis(ax, part["density"])
            percent(ax.yaxis)
        fig.suptitle(_noise_label(noise), fontsize=11)
    return fig
