"""Sparse double descent (coursekit.methods.double_descent, coursekit.lectures.sparse_double_descent)."""

import pandas as pd
import pytest

from coursekit import claims, double_descent, sparse_double_descent
from coursekit.core import data as datasets

TINY = double_descent.SweepSettings(hidden=(16,), epochs=3, densities=(1.0, 0.3, 0.05), noise=(0.0, 0.4))


@pytest.fixture(scope="module")
def small():
    return datasets.load("digits", sizes=datasets.Sizes(train=200, val=50, test=200))


def test_sweep_batched_equals_one_network_at_a_time(small):
    together = double_descent.sweep(TINY, small, seed=1, progress=False)
    alone = double_descent.sweep(TINY, small, seed=1, batched=False, progress=False)
    assert list(together.columns) == ["noise", "density", "sparsity", "weights", "test_acc", "train_acc",
                                      "memorised", "clean_fit"]
    pd.testing.assert_frame_equal(together, alone, atol=0.011, rtol=0)  # float order: at most one example apart
    assert together["weights"].tolist()[:3] == [round(d * (64 * 16 + 16 * 10)) for d in TINY.densities]
    assert together[together["noise"] == 0]["memorised"].isna().all()  # nothing to memorise without noise
    noisy = together[together["noise"] == 0.4]
    # every training example is either corrupted or not: the shares recombine into the training accuracy
    corrupted = round(0.4 * 200)
    recombined = (noisy["memorised"] * corrupted + noisy["clean_fit"] * (200 - corrupted)) / 200
    assert recombined.to_numpy() == pytest.approx(noisy["train_acc"].to_numpy())


def test_fine_tuning_starts_from_the_trained_weights(small):
    tuned = double_descent.sweep(double_descent.SweepSettings(**{**TINY.__dict__, "start": "trained",
                                                                 "noise": (0.0,)}), small, progress=False)
    rewound = double_descent.sweep(double_descent.SweepSettings(**{**TINY.__dict__, "noise": (0.0,)}), small,
                                   progress=False)
    assert tuned["test_acc"].iloc[0] > rewound["test_acc"].iloc[0]  # 6 epochs of training in all beat 3


@pytest.mark.parametrize("change, message", [
    ({"densities": (1.0, 0.0)}, "densities must be distinct fractions in"),
    ({"densities": (0.5, 0.5)}, "densities must be distinct fractions in"),
    ({"noise": (0.0, 1.0)}, r"noise fractions must lie in \[0, 1\)"),
    ({"noise": (-0.1,)}, r"noise fractions must lie in \[0, 1\)"),
    ({"start": "late"}, "start must be one of"),
    ({"model": "conv2"}, "the sweep trains an MLP"),
    ({"hidden": ()}, "hidden must list positive layer widths"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        double_descent.SweepSettings(**{**TINY.__dict__, **change})


def fake_results(dense, best, sparsest, memorised=1.0):
    """A two-seed table whose mean curve has the given dense, best and sparsest accuracies at 40 % noise (flat at
    95 % without noise, down to ``sparsest``)."""
    rows = []
    for seed in (0, 1):
        for density, acc in ((1.0, dense), (0.5, dense), (0.05, best), (0.01, sparsest)):
            for noise in (0.0, 0.4):
                rows.append({"seed": seed, "noise": noise, "density": density,
                             "test_acc": 0.95 if noise == 0 and density > 0.01 else acc,
                             "train_acc": 1.0, "memorised": memorised if noise else float("nan"),
                             "clean_fit": 1.0})
    return pd.DataFrame(rows)


def test_phases_and_headline_read_the_curve():
    table = sparse_double_descent.phases(fake_results(0.6, 0.85, 0.2))
    assert table.loc[0.4, ["dense", "best sparse", "best density", "sparsest"]].tolist() == pytest.approx(
        [0.6, 0.85, 0.05, 0.2])
    claims.check("fake double descent", sparse_double_descent.headline(fake_results(0.6, 0.85, 0.2)))
    with pytest.raises(AssertionError, match="40% noise: best sparse − dense"):
        claims.check("no gain", sparse_double_descent.headline(fake_results(0.6, 0.62, 0.2)))
    with pytest.raises(AssertionError, match="dense network memorises"):
        claims.check("no memorising", sparse_double_descent.headline(fake_results(0.6, 0.85, 0.2, memorised=0.3)))
    with pytest.raises(AssertionError, match="collapse below the best"):
        claims.check("no collapse", sparse_double_descent.headline(fake_results(0.6, 0.85, 0.8)))
