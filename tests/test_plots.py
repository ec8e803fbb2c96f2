import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from coursekit import plots


def _history(shift=0.0):
    return pd.DataFrame({"step": [0, 10, 20], "epoch": [0.0, 0.5, 1.0],
                         "train_loss": [float("nan"), 1.0, 0.5], "val_acc": [0.1, 0.6 + shift, 0.7]})


def test_learning_curves_one_panel_per_metric_one_line_per_run(tmp_path):
    fig = plots.learning_curves({"a": _history(), "b": _history(0.2)}, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_ylabel() == "training loss" and acc_ax.get_xlabel() == "epoch"
    assert len(loss_ax.lines) == 2 and len(acc_ax.lines) == 4  # a line and a best-point dot per run
    best_b = acc_ax.lines[3].get_data()
    assert best_b[1][0] == pytest.approx(0.8)
    assert acc_ax.get_legend() is not None
    fig.savefig(tmp_path / "curves.png")


def test_learning_curves_single_history_has_no_legend():
    fig = plots.learning_curves(_history(), metrics=("val_acc",))
    assert len(fig.axes) == 1 and fig.axes[0].get_legend() is None


def test_learning_curves_bad_input():
    with pytest.raises(ValueError, match="lacks columns"):
        plots.learning_curves(_history(), metrics=("test_acc",))
    with pytest.raises(ValueError, match="at least one"):
        plots.learning_curves({})


def test_image_grid_titles_are_class_names():
    fig = plots.image_grid(torch.zeros(5, 1, 8, 8), torch.tensor([0, 1, 2, 1, 0]), ["a", "b", "c"], cols=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["a", "b", "c", "b", "a"] and len(fig.axes) == 8
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        plots.image_grid(torch.zeros(5, 8, 8), torch.zeros(5), ["a"])
