"""Plotting functions: data in, a matplotlib ``Figure`` out, in one course-wide style.

Every interactive figure in the course is one of these functions wrapped by
:mod:`coursekit.widgets`; the notebook cell next to the widget calls the same
function with fixed arguments, so executed HTML and nbval see a figure too.
"""

from __future__ import annotations

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
