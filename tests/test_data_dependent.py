"""Lecture 07's driver: every saliency on one network, the sweeps, OBS and mean replacement."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from conftest import fashion_headline
from coursekit import claims, data, data_dependent, plots

SMALL = data_dependent.SaliencySettings(model="mlp", epochs=3, lr=1e-2, batch_size=64, densities=(0.2, 0.05),
                                        examples=300, obs_layer="3", obs_removed=(100, 400, 800),
                                        unit_layer="1", units_removed=(20, 60))


@pytest.fixture(scope="module")
def ran(digits):
    return data_dependent.run(SMALL, digits, seed=0, progress=False)


def test_every_criterion_scores_every_weight(ran):
    assert list(ran["scores"]) == list(data_dependent.CRITERIA)
    shapes = {c: {n: tuple(t.shape) for n, t in s.items()} for c, s in ran["scores"].items()}
    assert all(v == shapes["magnitude"] for v in shapes.values())
    corr = ran["correlations"]
    assert np.allclose(np.diag(corr), 1) and np.allclose(corr, corr.T)
    assert abs(corr.loc["random", "magnitude"]) < 0.1 < corr.loc["taylor", "obd_ggn"]


def test_the_sweep_has_every_criterion_at_every_density(ran):
    sweep = ran["sweep"]
    assert list(sweep.columns) == ["criterion", "density", "test_loss", "one_shot", "fine_tuned"]
    assert len(sweep) == len(data_dependent.CRITERIA) * 2
    assert set(ran["masks"]) == {(c, d) for c in data_dependent.CRITERIA for d in SMALL.densities}
    assert ran["masks"]["taylor", 0.05].density == pytest.approx(0.05, abs=0.005)


def test_obs_table_compares_three_removals_at_each_count(ran):
    obs = ran["obs_vs_removal"]
    assert obs.groupby("removed")["method"].count().to_dict() == {100: 3, 400: 3, 800: 3}
    assert (obs["weights"] == 1000).all()
    first = obs[(obs["removed"] == 100) & obs["method"].str.startswith("OBS:")].iloc[0]
    assert first["predicted"] == pytest.approx(first["loss"], rel=0.02)  # the quadratic model, small steps
    assert obs.loc[~obs["method"].str.startswith("OBS:"), "predicted"].isna().all()


def test_mean_replacement_takes_the_mean_out_of_the_next_layers_change(ran, digits):
    means = ran["mean_replacement"]
    assert means[means["removed"] == 0]["test_acc"].nunique() == 1
    assert set(means["method"]) == {"plain removal", "mean replacement"}
    change = means[means["removed"] > 0].pivot(index="removed", columns="method", values="output_change")
    assert (change["mean replacement"] < change["plain removal"]).all()
    shares = means.drop_duplicates("removed")["variance_share"]
    assert shares.is_monotonic_increasing and shares.between(0, 1).all()


def test_headline_and_figures(ran):
    found = data_dependent.headline(ran["sweep"], ran["correlations"], ran["obs_vs_removal"],
                                    ran["mean_replacement"])
    assert len(found) == 4 and all(isinstance(c, claims.Claim) for c in found)
    for fig in (data_dependent.plot_correlations(ran["correlations"]),
                data_dependent.plot_obs(ran["obs_vs_removal"]),
                data_dependent.plot_mean_replacement(ran["mean_replacement"]),
                plots.accuracy_vs_density(ran["sweep"], 0.9, labels=data_dependent.LABELS)):
        assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="at most 80 %"):
        data_dependent.headline(ran["sweep"], ran["correlations"],
                                ran["obs_vs_removal"].assign(weights=10), ran["mean_replacement"])


@pytest.mark.parametrize("change, message", [
    ({"criteria": ("magnitude", "hessian")}, "criteria must be some of"),
    ({"densities": (0.5, 0.0)}, r"densities must lie in \(0, 1\]"),
    ({"scope": "per_unit"}, "scope must be one of"),
    ({"obs_removed": (300, 100)}, "obs_removed must be increasing positive counts"),
    ({"examples": 1}, "examples is too small"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMALL, **change)


def test_counts_beyond_the_layer_are_refused(digits, ran):
    with pytest.raises(ValueError, match="has 1000 weights"):
        data_dependent.obs_vs_removal(dataclasses.replace(SMALL, obs_removed=(1000,)), digits, ran["dense"])
    with pytest.raises(ValueError, match="has 100 units"):
        data_dependent.mean_replacement(dataclasses.replace(SMALL, units_removed=(100,)), digits, ran["dense"])


@fashion_headline
def test_lecture_07_headlines(seed):
    """Lecture 07's headline for a seed the notebook does not run."""
    ds = data.load("fashion_mnist", "ci")
    out = data_dependent.run(data_dependent.PRESETS["ci"], ds, seed=seed, progress=False)
    claims.check("test_data_dependent", data_dependent.headline(out["sweep"], out["correlations"],
                                                                out["obs_vs_removal"], out["mean_replacement"]))
