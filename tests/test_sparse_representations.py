"""Lecture 11's driver: permutation demo and loss barrier, the overlap curve, dense vs sparse CNN under noise."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from coursekit import claims, sparse_representations

SMALL = sparse_representations.SparseSettings(epochs=1, perm_hidden=(24, 24), perm_epochs=2, channels=2, width=16,
                                              noise_levels=(0.0, 0.3, 0.6), sizes=(20, 40, 80), trials=2_000)


def test_permutation_demo(digits):
    perm = sparse_representations.permutation_demo(SMALL, digits, seed=0)
    assert perm["max_change"] < 1e-5
    assert perm["log10_class_size"] == pytest.approx(2 * torch.lgamma(torch.tensor(25.0)).item() / 2.302585, rel=1e-4)
    barrier = perm["barrier"]
    assert set(barrier["pair"]) == {"as trained", "aligned"} and len(barrier) == 22
    ends = barrier[barrier["alpha"].isin([0.0])].groupby("pair")["loss"].first()
    assert ends["as trained"] == pytest.approx(ends["aligned"])  # both lines start at network A


def test_overlap_curve_matches_the_exact_probability():
    curve = sparse_representations.overlap_curve(SMALL, seed=0)
    assert list(curve["n"]) == [20, 40, 80] and list(curve["a"]) == [2, 4, 8]
    z = (curve["simulated"] - curve["probability"]).abs() / curve["stderr"]
    assert (z < 4).all()


def test_noise_robustness_table_and_gain(digits):
    table, nets = sparse_representations.noise_robustness(SMALL, digits, seed=0, progress=False)
    assert set(nets) == {"dense", "sparse (k-WTA)"} and len(table) == 6
    assert table.groupby("network")["noise"].apply(list).tolist() == [[0.0, 0.3, 0.6]] * 2
    made = pd.DataFrame({"network": ["dense", "sparse (k-WTA)"] * 2, "noise": [0.0, 0.0, 0.5, 0.5],
                         "test_acc": [0.9, 0.8, 0.3, 0.6]})
    assert sparse_representations.noise_gain(made) == pytest.approx(0.3)


def test_headline_and_figures(digits):
    perm = sparse_representations.permutation_demo(SMALL, digits, seed=0)
    curve = sparse_representations.overlap_curve(SMALL, seed=0)
    table, _ = sparse_representations.noise_robustness(SMALL, digits, seed=0, progress=False)
    found = sparse_representations.headline(perm, curve, table)
    assert len(found) == 6 and all(isinstance(c, claims.Claim) for c in found)
    figures = [sparse_representations.plot_barrier(perm["barrier"]),
               sparse_representations.plot_overlap(curve, SMALL.trials),
               sparse_representations.plot_noise(table, digits.x_test),
               sparse_representations.plot_overlap_choice(300, 30, 12)]
    assert all(isinstance(f, Figure) for f in figures)
    with pytest.raises(ValueError, match="need θ ≤ a ≤ n"):
        sparse_representations.plot_overlap_choice(100, 10, 11)


@pytest.mark.parametrize("change, message", [
    ({"noise_levels": (0.0, 1.5)}, "noise_levels are fractions"),
    ({"density": 0.0}, "the overlap curve needs"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        sparse_representations.SparseSettings(**change)
