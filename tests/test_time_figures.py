import matplotlib
import numpy as np
import pandas as pd
import pytest

from coursekit import critical, early_bird, information_plane, spectral_bias
from coursekit.lectures.critical import Sweep

matplotlib.use("Agg")


def _sweep():
    table = pd.DataFrame({"seed": [0, 0], "until_epoch": [0, 2], "epoch": [2, 4], "test_acc": [0.8, 0.7],
                          "gap": [0.0, 0.1]})
    histories = pd.DataFrame({"seed": 0, "until_epoch": [0, 0, 2, 2, 2], "epoch": [0, 2, 0, 2, 4],
                              "val_acc": [0.1, 0.8, 0.1, 0.3, 0.7]})
    fisher = pd.DataFrame({"seed": 0, "until_epoch": 0, "epoch": [0, 1, 0, 1], "kind": "true",
                           "layer": ["0 Conv2d", "0 Conv2d", "3 Linear", "3 Linear"], "trace": [1.0, 9.0, 2.0, 3.0]})
    return Sweep(table, histories, fisher)


def test_critical_period_marks_the_chosen_run():
    fig = critical.plot_critical_period(_sweep(), until_epoch=2)
    left, right = fig.axes
    assert left.get_ylabel() == "accuracy lost vs no deficit"
    assert [line.get_label() for line in right.get_lines()] == ["no deficit", "blur until epoch 2"]
    with pytest.raises(ValueError, match=r"no run with the deficit ending at epoch 5; the sweep has \[0, 2\]"):
        critical.plot_critical_period(_sweep(), until_epoch=5)


def test_fisher_trace_stacks_layers_in_module_order():
    fig = critical.plot_fisher_trace(_sweep().fisher)
    stacked = [c.get_label() for c in fig.axes[0].collections if not c.get_label().startswith("_")]
    assert stacked == ["0 Conv2d", "3 Linear"]  # bottom to top
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["3 Linear", "0 Conv2d"]  # as seen
    with pytest.raises(ValueError, match="no 'empirical' Fisher traces"):
        critical.plot_fisher_trace(_sweep().fisher, kind="empirical")


def test_fisher_curves_one_line_per_network_and_kind():
    fisher = pd.DataFrame({"epoch": [0, 1] * 2, "layer": "1 Linear", "kind": ["true"] * 2 + ["empirical"] * 2,
                           "trace": [1.0, 5.0, 1.0, 4.0], "activation": "tanh"})
    ax = critical.plot_fisher_curves(fisher).axes[0]
    assert sorted(line.get_label() for line in ax.get_lines()) == ["tanh, empirical Fisher", "tanh, true Fisher"]
    assert ax.get_lines()[0].get_xdata()[0] == 0.5  # epoch 0 on a log axis


def test_information_plane_panels_and_estimator_check():
    plane = pd.DataFrame({"epoch": [0, 10] * 2, "layer": ["layer 1"] * 2 + ["output"] * 2, "estimator": "binned",
                          "I_XT": [1.0, 2.0, 0.5, 1.0], "I_YT": [0.0, 0.5, 0.0, 0.9],
                          "activation": "tanh"})
    both = pd.concat([plane, plane.assign(activation="relu")])
    fig = information_plane.plot_information_plane(both, layer="output")
    assert [ax.get_title() for ax in fig.axes[:2]] == ["tanh network, binned estimator", "relu network, binned estimator"]
    with pytest.raises(ValueError, match="no rows for estimator 'kde'"):
        information_plane.plot_information_plane(both, "kde")
    with pytest.raises(ValueError, match="needs columns"):
        information_plane.plot_information_plane(both.drop(columns="activation"))


def test_mask_distances_title_says_where_the_ticket_is():
    d = pd.DataFrame(np.zeros((3, 3)), index=[1, 2, 3], columns=[1, 2, 3])
    assert "epoch 2 of 3" in early_bird.plot_mask_distances(d, 2, 0.5, 0.1).axes[0].get_title()
    assert "no Early-Bird ticket" in early_bird.plot_mask_distances(d, None, 0.5, 0.1).axes[0].get_title()


def test_ticket_comparison_and_spectrum_draw():
    table = pd.DataFrame({"ticket": ["dense", "early-bird"], "test_acc": [0.8, 0.79], "cost": [10, 4],
                          "flops": [1e6, 3e5]})
    assert len(early_bird.plot_ticket_comparison(table).axes) == 3
    spectrum = pd.DataFrame({"step": [0, 0, 5, 5], "frequency": [1, 2, 1, 2], "error": [1.0, 1.0, 0.0, 0.8]})
    learned = pd.Series({1: 5.0, 2: float("nan")})
    ax = spectral_bias.plot_spectrum(spectrum, learned).axes[0]
    assert ax.get_lines()[0].get_xdata().tolist() == [5.0]  # only the learned frequency is marked
