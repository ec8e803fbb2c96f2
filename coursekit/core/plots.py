"""Plotting functions: data in, a matplotlib ``Figure`` out, in one course-wide style.

Every interactive figure in the course is one of these functions wrapped by
:mod:`coursekit.core.widgets`; the notebook cell next to the widget calls the same
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
def styled():
    """The course's figure style (:data:`STYLE`), for the ``with`` block that draws a figure."""
    with sns.axes_style(STYLE["style"]), sns.plotting_context(STYLE["context"]), \
            sns.color_palette(STYLE["palette"]):
        yield


def learning_curves(runs: pd.DataFrame | Mapping[str, pd.DataFrame], x: str = "epoch",
                    metrics: Sequence[str] = ("train_loss", "val_acc"),
                    title: str | None = None) -> Figure:
    """One panel per metric, one line per run; a dot marks each run's best validation accuracy.

    Args:
        runs: a history DataFrame from :func:`coursekit.core.train.fit`, or label → history.
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
    with styled():
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
    with styled():
        fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows), squeeze=False,
                                 layout="constrained")
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < n:
                ax.imshow(x[i, 0], cmap="gray_r")
                ax.set_title(classes[int(y[i])], fontsize=8)
    return fig


# ------------------------------------------------------------------ helpers the lectures' figures share

MASK_LABEL = "pixel's weights kept\n(× the layer's average)"
_DENSITY_TICKS = [100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1]


def remaining_axis(ax, densities) -> None:
    """Percent of weights remaining on a log axis, decreasing to the right (Frankle & Carbin)."""
    ax.set_xscale("log")
    lo = min(densities) * 100
    ticks = [t for t in _DENSITY_TICKS if t >= lo * 0.8]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlim(110, lo * 0.8)
    ax.set_xlabel("% of weights remaining")


def draw_input_mask(ax, keep: torch.Tensor, image_shape: Sequence[int], title: str):
    """A first layer's mask as an image: how many weights each input pixel keeps, over the layer's mean."""
    keep = keep.float().cpu()
    if keep.ndim != 2 or keep.shape[1] != math.prod(image_shape):
        raise ValueError(f"first-layer mask has shape {tuple(keep.shape)}; expected (hidden, "
                         f"{math.prod(image_shape)}) for images {tuple(image_shape)}")
    relative = keep.mean(0) / keep.mean().clamp_min(1e-12)  # 1 = the layer's average
    image = ax.imshow(relative.reshape(*image_shape).numpy(), cmap="magma", vmin=0, vmax=3)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return image


def mask_and_accuracy(grid: pd.DataFrame, masks: Mapping[tuple[str, float], Mapping[str, torch.Tensor]],
                      criterion: str, density: float, layer: str, image_shape: Sequence[int] = (28, 28),
                      accuracy: Mapping[str, str] | None = None, by: str = "criterion") -> Figure:
    """A criterion's first-layer mask at one density, beside accuracy vs density for every criterion.

    ``grid`` has a row per (``by``, ``density``); ``accuracy`` maps its accuracy columns to
    their labels, one line style each (default ``{"test_acc": "test accuracy after
    retraining"}``). The chosen criterion is drawn bold, the others grey.
    """
    accuracy = dict(accuracy or {"test_acc": "test accuracy after retraining"})
    require_columns(grid, [by, "density", *accuracy], "mask_and_accuracy")
    if (criterion, density) not in masks:
        raise ValueError(f"no stored mask for ({criterion!r}, {density}); have {sorted(masks)}")
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0), width_ratios=[1, 1.5],
                                          layout="constrained")
        keep = masks[(criterion, density)][layer]
        image = draw_input_mask(left, keep, image_shape, f"{criterion}: first layer, "
                                                          f"{keep.float().mean():.1%} kept")
        fig.colorbar(image, ax=left, shrink=0.8, label=MASK_LABEL)
        for c, part in grid.groupby(by, sort=False):
            part = part.sort_values("density", ascending=False)
            bold = c == criterion
            for (column, label), style in zip(accuracy.items(), ("o-", "s--", "^:"), strict=False):
                right.plot(part["density"] * 100, part[column], style, lw=3 if bold else 1,
                           alpha=1 if bold else 0.3, color="C0" if bold else "0.5",
                           label=f"{c}: {label}" if bold and len(accuracy) > 1 else (c if bold else None))
        right.axvline(density * 100, color="0.2", lw=1)
        remaining_axis(right, grid["density"])
        right.set_ylabel(next(iter(accuracy.values())) if len(accuracy) == 1 else "test accuracy")
        percent(right.yaxis)
        right.legend(fontsize="small", loc="lower left")
    return fig


def accuracy_vs_density(sweep: pd.DataFrame, reference: float | None = None,
                        panels: Mapping[str, str] | None = None, by: str = "criterion",
                        labels: Mapping[str, str] | None = None) -> Figure:
    """Test accuracy vs density, one line per ``by`` value, one panel per accuracy column.

    ``panels`` maps columns of ``sweep`` to panel titles (default one-shot and fine-tuned);
    ``reference`` (the dense network's accuracy) is a dotted line; a ``random`` criterion is
    drawn grey and dashed, the baseline the others must beat; ``labels`` renames criteria.
    """
    panels = dict(panels or {"one_shot": "one-shot (no retraining)", "fine_tuned": "after a short fine-tune"})
    labels = dict(labels or {})
    require_columns(sweep, [by, "density", *panels], "accuracy_vs_density")
    with styled():
        fig, axes = plt.subplots(1, len(panels), figsize=(1 + 5.5 * len(panels), 4.2), sharey=True,
                                 layout="constrained", squeeze=False)
        for ax, (column, title) in zip(axes[0], panels.items(), strict=True):
            for i, (c, part) in enumerate(sweep.groupby(by, sort=False)):
                part = part.sort_values("density", ascending=False)
                baseline = c == "random"
                ax.plot(part["density"] * 100, part[column], marker="o", color="0.5" if baseline else f"C{i}",
                        ls="--" if baseline else "-", label=labels.get(c, c))
            if reference is not None:
                ax.axhline(reference, color="0.2", lw=1, ls=":", label="dense network")
            remaining_axis(ax, sweep["density"])
            ax.set_title(title)
            percent(ax.yaxis)
        axes[0, 0].set_ylabel("test accuracy")
        axes[0, -1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1))
    return fig


def require_columns(table: pd.DataFrame, columns: list[str], what: str) -> None:
    """Refuse a table that lacks ``columns``, naming what needed them and what it has."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} needs columns {missing}; it has {list(table.columns)}")


def rows_where(table: pd.DataFrame, column: str, value, what: str) -> pd.DataFrame:
    """The rows whose ``column`` equals ``value`` (numbers compared with ``isclose``); none is an error."""
    numeric = pd.api.types.is_numeric_dtype(table[column])
    rows = table[np.isclose(table[column], value)] if numeric else table[table[column] == value]
    if rows.empty:
        raise ValueError(f"{what}: no rows with {column} = {value!r}; the table has "
                         f"{sorted(table[column].unique().tolist())}")
    return rows


def percent(axis) -> None:
    """Label a matplotlib axis (``ax.xaxis`` / ``ax.yaxis``) in per cent of 1."""
    axis.set_major_formatter(lambda v, _: f"{v:.0%}")


def bytes_label(v: float, _=None) -> str:
    """Bytes in decimal units (kB = 1000 B), so decades on a log axis read 1 kB, 10 kB, 100 kB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= size:
            return f"{v / size:.3g} {unit}"
    return f"{v:.0f} B"


# ------------------------------------------------------------------ grids and bars

def accuracy_heatmap(grid: pd.DataFrame, rows: str = "criterion", cols: str = "protocol",
                     value: str = "test_acc", title: str | None = None) -> Figure:
    """A rows × cols heat map of accuracy, each cell annotated in per cent (Zhou et al. 2019)."""
    missing = {rows, cols, value} - set(grid.columns)
    if missing:
        raise ValueError(f"grid lacks columns {sorted(missing)}")
    table = grid.pivot_table(index=rows, columns=cols, values=value, sort=False)
    with styled():
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
    with styled():
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
