"""Figures of the time-effects lectures (04, 05): data in, a matplotlib ``Figure`` out.

Same contract as :mod:`coursekit.plots` (whose style they share): each interactive
figure is one of these functions wrapped by :func:`coursekit.widgets.interactive_plot`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, MultipleLocator

from coursekit.critical import Sweep
from coursekit.plots import _styled


def _percent(ax, axis: str = "y") -> None:
    getattr(ax, f"{axis}axis").set_major_formatter(lambda v, _: f"{v:.0%}")


def _require(table: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} needs columns {missing}; it has {list(table.columns)}")


def critical_period(sweep: Sweep, until_epoch: int | None = None) -> Figure:
    """Left: accuracy gap vs the epoch the deficit ends (Achille et al. Fig. 1). Right: learning curves.

    ``sweep`` comes from :func:`coursekit.critical.critical_period_sweep`; ``until_epoch``
    picks the run drawn against the no-deficit run (default: the latest removal).
    """
    sweep, curves = sweep.table, sweep.histories
    until_epoch = int(sweep["until_epoch"].max()) if until_epoch is None else until_epoch
    if until_epoch not in set(sweep["until_epoch"]):
        raise ValueError(f"no run with the deficit ending at epoch {until_epoch}; "
                         f"the sweep has {sorted(sweep['until_epoch'].unique().tolist())}")
    with _styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.9), layout="constrained")
        summary = sweep.groupby("until_epoch")["gap"].agg(["mean", "min", "max"])
        left.fill_between(summary.index, summary["min"], summary["max"], alpha=0.2, lw=0)
        left.plot(summary.index, summary["mean"], "o-", lw=2, label="mean over seeds")
        left.plot([until_epoch], [summary.loc[until_epoch, "mean"]], "o", ms=13, mfc="none", mec="k", mew=2)
        left.axhline(0, color="grey", lw=1)
        left.set_xlabel("epoch at which the blur is removed")
        left.set_ylabel("accuracy lost vs no deficit")
        left.set_title("a late deficit leaves a permanent gap")
        _percent(left)
        for label, until, style in (("no deficit", 0, "-"), (f"blur until epoch {until_epoch}", until_epoch, "-")):
            run = curves[(curves["until_epoch"] == until) & (curves["seed"] == curves["seed"].min())]
            right.plot(run["epoch"], run["val_acc"], style, lw=2, label=label)
        right.axvspan(0, until_epoch, color="grey", alpha=0.15, lw=0, label="deficit")
        right.set_xlabel("epoch")
        for ax in (left, right):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set_ylabel("validation accuracy (clean images)")
        right.set_title("learning curves (first seed)")
        right.legend(fontsize="small", loc="center right")
        _percent(right)
    return fig


def fisher_trace(fisher: pd.DataFrame, until_epoch: int = 0, kind: str = "true") -> Figure:
    """Trace of the Fisher information per layer over epochs, stacked (Achille et al. Fig. 4).

    ``fisher`` is the ``fisher`` table of a critical-period :class:`~coursekit.critical.Sweep`;
    the deficit window, if any, is shaded.
    """
    _require(fisher, ["epoch", "layer", "kind", "trace", "until_epoch"], "fisher_trace")
    run = fisher[(fisher["until_epoch"] == until_epoch) & (fisher["kind"] == kind)]
    if run.empty:
        raise ValueError(f"no {kind!r} Fisher traces for the run with the deficit ending at {until_epoch}")
    table = run.groupby(["epoch", "layer"])["trace"].mean().unstack("layer")
    table = table[sorted(table.columns, key=lambda c: int(c.split()[0]) if c.split()[0].isdigit() else c)]
    with _styled():
        fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
        colors = sns.color_palette("viridis", n_colors=table.shape[1])
        ax.stackplot(table.index, table.T.values, labels=list(table.columns), colors=colors)
        if until_epoch:
            ax.axvspan(0, until_epoch, color="grey", alpha=0.2, lw=0)
            ax.text(until_epoch / 2, ax.get_ylim()[1] * 0.95, "blurred", ha="center", va="top")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"trace of the {kind} Fisher")
        ax.set_title("Fisher information per layer, no deficit" if not until_epoch
                     else f"Fisher information per layer, blur until epoch {until_epoch}")
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1), title="module")
        ax.set_xlim(table.index.min(), table.index.max())
    return fig


def fisher_curves(fisher: pd.DataFrame) -> Figure:
    """Total trace of the Fisher information over epochs: one colour per network, true solid, empirical dashed.

    ``fisher`` stacks the Fisher tables of :func:`coursekit.information.information_plane`
    runs (column ``activation``). Both axes are logarithmic (epoch 0 drawn at 0.5).
    """
    _require(fisher, ["epoch", "layer", "kind", "trace", "activation"], "fisher_curves")
    totals = fisher.groupby(["activation", "kind", "epoch"])["trace"].sum()
    with _styled():
        fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
        colors = dict(zip(dict.fromkeys(fisher["activation"]), sns.color_palette(), strict=False))
        for (act, kind), series in totals.groupby(level=[0, 1]):
            epochs = series.index.get_level_values("epoch").to_numpy().astype(float)
            ax.plot(np.where(epochs == 0, 0.5, epochs), series.to_numpy(), "-" if kind == "true" else "--",
                    marker="o", ms=4, color=colors[act], lw=2, label=f"{act}, {kind} Fisher")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("epoch (log scale; epoch 0 at 0.5)")
        ax.set_ylabel("trace of the Fisher information")
        ax.set_title("connections form fast, then consolidate")
        ax.legend(fontsize="small")
    return fig


def information_plane(planes: pd.DataFrame, estimator: str = "binned", layer: str | None = None) -> Figure:
    """I(X;T) against I(Y;T), one trajectory per layer, coloured by epoch; one panel per activation.

    ``planes`` stacks :func:`coursekit.information.information_plane` tables (column
    ``activation``). ``layer`` draws that layer bold and the others faint.
    """
    _require(planes, ["epoch", "layer", "estimator", "I_XT", "I_YT", "activation"], "information_plane")
    data = planes[planes["estimator"] == estimator]
    if data.empty:
        raise ValueError(f"no rows for estimator {estimator!r}; the table has {sorted(planes['estimator'].unique())}")
    activations = list(dict.fromkeys(data["activation"]))
    markers = dict(zip(dict.fromkeys(data["layer"]), "os^Dvp*hX", strict=False))
    norm = LogNorm(vmin=1, vmax=max(2, data["epoch"].max()))
    with _styled():
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


def mask_distances(distances: pd.DataFrame, eb_epoch: int | None, ratio: float, epsilon: float) -> Figure:
    """Heat map of the channel-mask distances between epochs, the Early-Bird epoch marked (You et al. Fig. 2)."""
    with _styled():
        fig, ax = plt.subplots(figsize=(6.2, 5), layout="constrained")
        n = distances.shape[0]
        image = ax.imshow(distances.values, cmap="magma_r", vmin=0, vmax=max(0.3, distances.values.max()),
                          extent=(0.5, n + 0.5, n + 0.5, 0.5))
        fig.colorbar(image, ax=ax, label="mask distance (fraction of channels)")
        ax.grid(False)
        if eb_epoch is not None:
            ax.axhline(eb_epoch, color="tab:cyan", lw=2)
            ax.axvline(eb_epoch, color="tab:cyan", lw=2)
            ax.plot(eb_epoch, eb_epoch, "*", ms=18, color="tab:cyan", mec="k")
            found = f"Early-Bird ticket at epoch {eb_epoch} of {n}"
        else:
            found = f"no Early-Bird ticket within {n} epochs"
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("epoch")
        ax.set_title(f"{found}\n(pruning {ratio:.0%} of channels, ε = {epsilon:g})", fontsize="medium")
    return fig


def ticket_comparison(table: pd.DataFrame) -> Figure:
    """Test accuracy and training cost of the dense net, the Early-Bird and the late ticket."""
    _require(table, ["ticket", "test_acc", "cost", "flops"], "ticket_comparison")
    with _styled():
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
        colors = sns.color_palette(n_colors=len(table))
        for ax, (column, label) in zip(axes, (("test_acc", "test accuracy"),
                                              ("cost", "training cost [dense epochs]"),
                                              ("flops", "inference MACs per image")), strict=True):
            ax.bar(table["ticket"], table[column], color=colors)
            ax.set_ylabel(label)
            for x, v in enumerate(table[column]):
                text = {"test_acc": f"{v:.1%}", "cost": f"{v:.1f}", "flops": f"{v / 1e3:,.0f}k"}[column]
                ax.annotate(text, (x, v), ha="center", va="bottom", fontsize="small")
        axes[2].yaxis.set_major_formatter(lambda v, _: f"{v / 1e3:,.0f}k")
        low = table["test_acc"].min()
        axes[0].set_ylim(max(0, low - 0.1), min(1, table["test_acc"].max() + 0.05))
        axes[0].yaxis.set_major_locator(MultipleLocator(0.05))
        _percent(axes[0])
    return fig


def spectrum(spectrum: pd.DataFrame, learned: pd.Series | None = None) -> Figure:
    """Heat map of ``|f̂_k − λ̂_k| / A`` per frequency over training (Rahaman et al. Fig. 1)."""
    _require(spectrum, ["step", "frequency", "error"], "spectrum")
    grid = spectrum.pivot(index="frequency", columns="step", values="error")
    with _styled():
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
