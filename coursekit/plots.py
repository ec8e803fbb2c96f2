"""Plotting functions: data in, a matplotlib ``Figure`` out, in one course-wide style.

Every interactive figure in the course is one of these functions wrapped by
:mod:`coursekit.widgets`; the notebook cell next to the widget calls the same
function with fixed arguments, so executed HTML and nbval see a figure too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure

STYLE = {"style": "whitegrid", "context": "notebook", "palette": "colorblind"}
METRIC_LABELS = {
    "train_loss": "training loss", "val_loss": "validation loss", "test_loss": "test loss",
    "val_acc": "validation accuracy", "test_acc": "test accuracy",
}


@contextmanager
def _styled():
    with sns.axes_style(STYLE["style"]), sns.plotting_context(STYLE["context"]), \
            sns.color_palette(STYLE["palette"]):
        yield


def learning_curves(runs: pd.DataFrame | Mapping[str, pd.DataFrame], x: str = "epoch",
                    metrics: Sequence[str] = ("train_loss", "val_acc"),
                    title: str | None = None) -> Figure:
    """One panel per metric, one line per run; a dot marks each run's best validation accuracy.

    Args:
        runs: a history DataFrame from :func:`coursekit.train.fit`, or label → history.
        x: the column on the horizontal axis (``epoch`` or ``step``).
        metrics: history columns to plot, one panel each.
    """
    runs = {"run": runs} if isinstance(runs, pd.DataFrame) else dict(runs)
    if not runs:
        raise ValueError("learning_curves needs at least one history")
    for label, hist in runs.items():
        missing = [c for c in (x, *metrics) if c not in hist.columns]
        if missing:
            raise ValueError(f"history {label!r} lacks columns {missing}; it has {list(hist.columns)}")
    with _styled():
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False,
                                 layout="constrained")
        colors = sns.color_palette(n_colors=max(len(runs), 3))
        for ax, metric in zip(axes[0], metrics, strict=True):
            for color, (label, hist) in zip(colors, runs.items(), strict=False):
                ax.plot(hist[x], hist[metric], color=color, label=label, lw=2)
                if metric == "val_acc":
                    best = hist.loc[hist["val_acc"].idxmax()]
                    ax.plot(best[x], best[metric], "o", color=color, ms=7)
            ax.set_xlabel(x)
            ax.set_ylabel(METRIC_LABELS.get(metric, metric))
            if metric.endswith("_acc"):
                ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        if len(runs) > 1:
            axes[0, -1].legend(title="run", fontsize="small")
        if title:
            fig.suptitle(title)
    return fig


def image_grid(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray,
               classes: Sequence[str], n: int = 16, cols: int = 8) -> Figure:
    """The first ``n`` examples of ``x`` (shape (N, 1, H, W)) titled with their class names."""
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"image_grid needs grey images of shape (N, 1, H, W), got {x.shape}")
    n = min(n, len(x))
    rows = -(-n // cols)
    with _styled():
        fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows), squeeze=False,
                                 layout="constrained")
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < n:
                ax.imshow(x[i, 0], cmap="gray_r")
                ax.set_title(classes[int(y[i])], fontsize=8)
    return fig


# ------------------------------------------------------------------ lottery tickets

VARIANT_LABELS = {
    "init": "winning ticket (reset to init)", "rewind": "ticket, late rewinding",
    "random_reinit": "random reinit", "random_mask": "random mask",
    "reshuffle": "reshuffled init", "constant": "constant ±σ", "sign_flip": "random signs",
}
LOTTERY_METRICS = {
    "test_acc_early_stop": "test accuracy at early stop", "test_acc_end": "test accuracy at the end",
    "early_stop_step": "early-stopping iteration", "val_acc_early_stop": "validation accuracy at early stop",
}
_MASK_LABEL = "pixel's weights kept\n(× the layer's average)"
_DENSITY_TICKS = [100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1]


def _density_axis(ax, densities) -> None:
    """Percent of weights remaining on a log axis, decreasing to the right (Frankle & Carbin)."""
    ax.set_xscale("log")
    lo = min(densities) * 100
    ticks = [t for t in _DENSITY_TICKS if t >= lo * 0.8]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlim(110, lo * 0.8)
    ax.set_xlabel("% of weights remaining")


def _variant_order(results: pd.DataFrame) -> list[str]:
    present = set(results["variant"])
    return [v for v in VARIANT_LABELS if v in present] + sorted(present - set(VARIANT_LABELS))


def _draw_lottery(ax, results: pd.DataFrame, metric: str, highlight_density: float | None) -> None:
    stats = (results.groupby(["variant", "round"])[["density", metric]]
             .agg(["mean", "min", "max"]).reset_index())
    order = _variant_order(results)
    colors = dict(zip(order, sns.color_palette(n_colors=max(len(order), 3)), strict=False))
    for v in order:
        s = stats[stats["variant"] == v].sort_values("round")
        x = s[("density", "mean")] * 100
        ax.plot(x, s[(metric, "mean")], "o-", color=colors[v], label=VARIANT_LABELS.get(v, v), ms=4, lw=2)
        if results["seed"].nunique() > 1:
            ax.fill_between(x, s[(metric, "min")], s[(metric, "max")], color=colors[v], alpha=0.2)
    ax.axhline(results.loc[results["round"] == 0, metric].mean(), color="0.4", ls="--", lw=1,
               label="dense network")
    _density_axis(ax, results["density"])
    ax.set_ylabel(LOTTERY_METRICS.get(metric, metric))
    if "acc" in metric:
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    if highlight_density is not None:
        ax.axvline(highlight_density * 100, color="0.2", lw=1.5, alpha=0.7)


def lottery_curves(results: pd.DataFrame, metrics: Sequence[str] = ("test_acc_early_stop", "early_stop_step"),
                   highlight_density: float | None = None) -> Figure:
    """Metric vs % of weights remaining, one line per variant: mean over seeds, band = min–max.

    ``results`` is the table of :func:`coursekit.lottery.run_imp`; the dashed line is the
    dense network (round 0). As in Frankle & Carbin 2019, Fig. 3–4.
    """
    needed = {"seed", "variant", "round", "density", *metrics}
    if not needed <= set(results.columns):
        raise ValueError(f"results lack columns {sorted(needed - set(results.columns))}")
    with _styled():
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.6 * len(metrics), 4.0), squeeze=False,
                                 layout="constrained")
        for ax, metric in zip(axes[0], metrics, strict=True):
            _draw_lottery(ax, results, metric, highlight_density)
        axes[0, 0].legend(fontsize="small", loc="lower left")
    return fig


def _draw_input_mask(ax, keep: torch.Tensor, image_shape: Sequence[int], title: str):
    keep = keep.float().cpu()
    if keep.ndim != 2 or keep.shape[1] != math.prod(image_shape):
        raise ValueError(f"first-layer mask has shape {tuple(keep.shape)}; expected (hidden, "
                         f"{math.prod(image_shape)}) for images {tuple(image_shape)}")
    relative = keep.mean(0) / keep.mean().clamp_min(1e-12)  # 1 = the layer's average
    image = ax.imshow(relative.reshape(*image_shape).numpy(), cmap="magma", vmin=0, vmax=3)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return image


def input_masks(masks: Mapping[int, Mapping[str, torch.Tensor]], layer: str,
                image_shape: Sequence[int] = (28, 28)) -> Figure:
    """Per input pixel, the share of its first-layer connections kept, one panel per round.

    Shown relative to the layer's density (1× = average, 0 = pixel disconnected), so
    rounds of very different density share one colour scale.

    Args:
        masks: round → mask (e.g. :func:`coursekit.lottery.load_masks`).
        layer: the first layer's weight name, shape (hidden, pixels).
    """
    if not masks:
        raise ValueError("no masks to show")
    with _styled():
        fig, axes = plt.subplots(1, len(masks), figsize=(2.3 * len(masks) + 1.2, 2.8), squeeze=False,
                                 layout="constrained")
        for ax, (r, mask) in zip(axes[0], sorted(masks.items()), strict=True):
            image = _draw_input_mask(ax, mask[layer], image_shape,
                                     f"round {r}: {mask[layer].float().mean():.1%} kept")
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.85, label=_MASK_LABEL)
    return fig


def lottery_round(results: pd.DataFrame, masks: Mapping[int, Mapping[str, torch.Tensor]], round: int,
                  layer: str, image_shape: Sequence[int] = (28, 28)) -> Figure:
    """One IMP round: accuracy vs density with that round marked, beside its first-layer mask."""
    if round not in masks:
        raise ValueError(f"round {round} not available; rounds: {sorted(masks)}")
    keep = masks[round][layer]
    density = float(results.loc[(results["round"] == round), "density"].mean())
    with _styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0), width_ratios=[1.6, 1],
                                          layout="constrained")
        _draw_lottery(left, results, "test_acc_early_stop", density)
        left.legend(fontsize="small", loc="lower left")
        image = _draw_input_mask(right, keep, image_shape,
                                 f"round {round}: first layer, {keep.float().mean():.1%} kept")
        fig.colorbar(image, ax=right, shrink=0.8, label=_MASK_LABEL)
    return fig


# ------------------------------------------------------------------ pruning basics

def accuracy_heatmap(grid: pd.DataFrame, rows: str = "criterion", cols: str = "protocol",
                     value: str = "test_acc", title: str | None = None) -> Figure:
    """A rows × cols heat map of accuracy, each cell annotated in per cent (Zhou et al. 2019)."""
    missing = {rows, cols, value} - set(grid.columns)
    if missing:
        raise ValueError(f"grid lacks columns {sorted(missing)}")
    table = grid.pivot_table(index=rows, columns=cols, values=value, sort=False)
    with _styled():
        fig, ax = plt.subplots(figsize=(1.2 * table.shape[1] + 3.2, 0.45 * table.shape[0] + 1.6),
                               layout="constrained")
        sns.heatmap(table * 100, annot=True, fmt=".0f", cmap="viridis", ax=ax,
                    cbar_kws={"label": "test accuracy (%)"}, linewidths=0.5)
        ax.set_xlabel(cols)
        ax.set_ylabel(rows)
        ax.tick_params(axis="x", rotation=20)
        if title:
            ax.set_title(title)
    return fig


def bars(table: pd.DataFrame, x: str, y: str, hue: str | None = None, reference: float | None = None,
         reference_label: str = "", percent: bool = True, title: str | None = None) -> Figure:
    """Horizontal bars of ``y`` per ``x`` (grouped by ``hue``), with an optional reference line."""
    missing = {x, y, *([hue] if hue else [])} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    with _styled():
        n = table[x].nunique() * (table[hue].nunique() if hue else 1)
        fig, ax = plt.subplots(figsize=(6.4, 0.32 * n + 1.4), layout="constrained")
        sns.barplot(data=table, y=x, x=y, hue=hue, ax=ax, orient="h")
        if reference is not None:
            ax.axvline(reference, color="0.3", ls="--", lw=1.2, label=reference_label or None)
        if percent:
            ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        if hue or reference_label:
            ax.legend(fontsize="small", loc="lower right")
        ax.set_ylabel("")
        ax.set_xlabel(y.replace("_", " "))
        if title:
            ax.set_title(title)
    return fig


def mask_and_accuracy(grid: pd.DataFrame, masks: Mapping[tuple[str, float], Mapping[str, torch.Tensor]],
                      criterion: str, density: float, layer: str,
                      image_shape: Sequence[int] = (28, 28)) -> Figure:
    """A criterion's first-layer mask at one density, beside accuracy vs density for all criteria."""
    if (criterion, density) not in masks:
        raise ValueError(f"no stored mask for ({criterion!r}, {density}); have {sorted(masks)}")
    with _styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0), width_ratios=[1, 1.5],
                                          layout="constrained")
        keep = masks[(criterion, density)][layer]
        image = _draw_input_mask(left, keep, image_shape, f"{criterion}: first layer, "
                                                          f"{keep.float().mean():.1%} kept")
        fig.colorbar(image, ax=left, shrink=0.8, label=_MASK_LABEL)
        for c, part in grid.groupby("criterion", sort=False):
            part = part.sort_values("density", ascending=False)
            bold = c == criterion
            right.plot(part["density"] * 100, part["test_acc"], "o-", lw=3 if bold else 1,
                       alpha=1 if bold else 0.35, label=c if bold else None, color="C0" if bold else "0.5")
        right.axvline(density * 100, color="0.2", lw=1)
        _density_axis(right, grid["density"])
        right.set_ylabel("test accuracy after retraining")
        right.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        right.legend(fontsize="small", loc="lower left")
    return fig
