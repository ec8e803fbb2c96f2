import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from coursekit import lottery_tickets, plots


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


def _imp_results():
    rows = []
    for seed in (0, 1):
        for variant, drop in (("init", 0.0), ("random_reinit", 0.05), ("random_mask", 0.1)):
            for r, d in enumerate((1.0, 0.5, 0.25, 0.125)):
                rows.append({"seed": seed, "variant": variant, "round": r, "density": d,
                             "test_acc_early_stop": 0.8 - drop * r + 0.01 * seed,
                             "early_stop_step": 100 + 10 * r})
    return pd.DataFrame(rows)


def test_lottery_curves_one_line_per_variant_on_a_log_density_axis():
    fig = lottery_tickets.plot_lottery_curves(_imp_results())
    acc, steps = fig.axes
    assert acc.get_xscale() == "log" and acc.get_xlim()[0] > acc.get_xlim()[1]  # sparser to the right
    labels = [t.get_text() for t in acc.get_legend().get_texts()]
    assert labels == ["winning ticket (reset to init)", "random reinit", "random mask", "dense network"]
    ticket = acc.lines[0].get_data()
    assert list(ticket[0]) == [100, 50, 25, 12.5]
    assert list(ticket[1]) == pytest.approx([0.805] * 4)  # mean over the two seeds
    assert steps.get_ylabel() == "early-stopping iteration"
    with pytest.raises(ValueError, match="lack columns"):
        lottery_tickets.plot_lottery_curves(_imp_results().drop(columns="density"))


def test_input_masks_show_each_pixels_share_relative_to_the_layer():
    keep = torch.zeros(4, 16, dtype=torch.bool)
    keep[:, :4] = True  # only the first image row keeps weights
    fig = lottery_tickets.plot_input_masks({0: {"w": torch.ones(4, 16, dtype=torch.bool)}, 3: {"w": keep}}, "w", (4, 4))
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert images[0].min() == images[0].max() == 1.0
    assert list(images[1][0]) == [4.0] * 4 and images[1][1:].max() == 0.0
    with pytest.raises(ValueError, match=r"expected \(hidden, 9\)"):
        lottery_tickets.plot_input_masks({0: {"w": keep}}, "w", (3, 3))


def test_lottery_round_marks_the_round():
    masks = {r: {"w": torch.rand(4, 16, generator=torch.Generator().manual_seed(r)) < 0.5} for r in range(4)}
    fig = lottery_tickets.plot_lottery_round(_imp_results(), masks, 2, "w", (4, 4))
    marker = [line for line in fig.axes[0].lines if list(line.get_xdata()) == [25.0, 25.0]]
    assert marker, "the round's density is marked on the accuracy curve"
    with pytest.raises(ValueError, match="round 9 not available"):
        lottery_tickets.plot_lottery_round(_imp_results(), masks, 9, "w", (4, 4))


def test_mask_and_accuracy_draws_one_style_per_accuracy_column():
    grid = pd.DataFrame({"criterion": ["a", "a", "b", "b"], "density": [0.5, 0.1] * 2,
                         "one_shot": [0.8, 0.3, 0.7, 0.2], "tuned": [0.85, 0.6, 0.8, 0.5]})
    masks = {(c, d): {"w": torch.rand(4, 16, generator=torch.Generator().manual_seed(1)) < d}
             for c in "ab" for d in (0.5, 0.1)}
    fig = plots.mask_and_accuracy(grid, masks, "b", 0.1, "w", (4, 4),
                                  accuracy={"one_shot": "one-shot", "tuned": "fine-tuned"})
    right = fig.axes[1]
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["b: one-shot", "b: fine-tuned"]
    assert len(right.lines) == 2 * 2 + 1  # two criteria × two columns, and the density marker
    with pytest.raises(ValueError, match="no stored mask"):
        plots.mask_and_accuracy(grid, masks, "c", 0.1, "w", (4, 4), accuracy={"one_shot": "x"})
    with pytest.raises(ValueError, match=r"needs columns \['test_acc'\]"):
        plots.mask_and_accuracy(grid, masks, "b", 0.1, "w", (4, 4))


def test_accuracy_vs_density_one_panel_per_column_and_a_grey_random_baseline():
    sweep = pd.DataFrame({"criterion": ["a", "a", "random", "random"], "density": [0.5, 0.1] * 2,
                          "one_shot": [0.8, 0.3, 0.2, 0.1], "fine_tuned": [0.85, 0.6, 0.5, 0.2]})
    fig = plots.accuracy_vs_density(sweep, reference=0.9, labels={"a": "criterion a"})
    assert [ax.get_title() for ax in fig.axes] == ["one-shot (no retraining)", "after a short fine-tune"]
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert legend == ["criterion a", "random", "dense network"]
    assert fig.axes[0].lines[1].get_linestyle() == "--"
    one = plots.accuracy_vs_density(sweep, panels={"one_shot": "only"})
    assert len(one.axes) == 1
    with pytest.raises(ValueError, match=r"needs columns \['fine_tuned'\]"):
        plots.accuracy_vs_density(sweep.drop(columns="fine_tuned"))
