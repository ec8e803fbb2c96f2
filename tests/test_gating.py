"""Lecture 08's driver: Hebbian vs magnitude, PFA widths, MI-ranked units, the L0 gate sweep."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib.figure import Figure

from conftest import fashion_headline
from coursekit import claims, data, gating, plots

SMALL = gating.GatingSettings(epochs=3, lr=1e-2, batch_size=64, examples=400, densities=(0.3, 0.05),
                              taus=(0.9, 0.99), units_kept=(50, 10), lambdas=(0.0, 1e-2))


@pytest.fixture(scope="module")
def dense(digits):
    return gating.train_dense(SMALL, digits, seed=0)


@pytest.fixture(scope="module")
def widths(digits, dense):
    return gating.pfa_widths(SMALL, digits, dense, progress=False)


def test_hebbian_magnitude_and_random_at_every_density(digits, dense):
    table, masks = gating.hebbian_vs_magnitude(SMALL, digits, dense)
    assert list(table["criterion"].unique()) == ["Hebbian", "magnitude", "random"]
    assert {"one_shot", "fine_tuned"} <= set(table.columns) and len(table) == 6
    assert all(abs(d - 0.05) < 0.005 for d in masks["Hebbian", 0.05].layer_densities().values())  # layer-wise


def test_spectra_are_sorted_and_reach_all_the_energy(digits, dense):
    spec = gating.spectra(SMALL, digits, dense)
    assert spec.groupby("layer")["k"].max().to_dict() == {"1": 300, "3": 100}
    for _, part in spec.groupby("layer"):
        assert part["eigenvalue"].is_monotonic_decreasing and part["energy"].iloc[-1] == pytest.approx(1)


def test_pfa_widths_follow_tau_and_networks_are_retrained(widths):
    assert list(widths["rule"]) == ["trained", "energy", "energy", "KL"]
    energy = widths[widths["rule"] == "energy"]
    assert (energy["units 1"].diff().dropna() >= 0).all()  # larger τ, wider
    trained = widths.iloc[0]
    assert (trained["units 1"], trained["units 3"], trained["parameters"]) == (300, 100, 50_610)
    assert (widths["parameters"].iloc[1:] < trained["parameters"]).all()
    assert widths["test_acc"].between(0, 1).all()


def test_informative_units_rank_three_ways(digits, dense):
    table = gating.informative_units(SMALL, digits, dense)
    assert table.groupby("ranking")["kept"].apply(list).to_dict() == {
        "mutual information with the label": [50, 10], "random": [50, 10], "variance": [50, 10]}


def test_gate_sweep_removes_what_the_gates_closed(digits):
    swept = gating.gate_sweep(SMALL, digits, seed=0, progress=False)
    assert list(swept["kind"]) == ["hard_concrete"] * 2 + ["straight_through"] * 2
    open_at_zero = swept[swept["lambda"] == 0]
    assert (open_at_zero["open 1"] > 250).all()  # without a penalty nearly every gate stays open
    assert (swept.groupby("kind")["parameters"].apply(lambda p: p.is_monotonic_decreasing)).all()
    assert (swept["gated_acc"] - swept["test_acc"]).abs().max() < 0.002  # surgery computes what the gates did
    assert (swept[swept["lambda"] > 0]["parameters"] < 50_610).all()


def test_headline_and_figures(digits, dense, widths):
    heb, _ = gating.hebbian_vs_magnitude(SMALL, digits, dense)
    informative = gating.informative_units(SMALL, digits, dense)
    swept = gating.gate_sweep(dataclasses.replace(SMALL, kinds=("hard_concrete",)), digits, progress=False)
    with pytest.raises(ValueError, match=r"no rows with density = 0\.2"):
        gating.headline(heb, widths, swept, dense.test_acc)
    heb = heb.assign(density=heb["density"].replace({0.3: 0.2}))
    found = gating.headline(heb, widths, swept, dense.test_acc)
    assert len(found) == 6 and all(isinstance(c, claims.Claim) for c in found)
    with pytest.raises(ValueError, match=r"no rows with lambda = 0\.5"):
        gating.headline(heb, widths, swept, dense.test_acc, lam=0.5)
    spec = gating.spectra(SMALL, digits, dense)
    for fig in (gating.plot_spectra(spec, widths), gating.plot_pfa_choice(widths, 0.99),
                gating.plot_informative_units(informative), gating.plot_gates(swept, 50_610, dense.test_acc),
                plots.accuracy_vs_density(heb, dense.test_acc)):
        assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match=r"no rows with tau = 0\.5"):
        gating.plot_pfa_choice(widths, 0.5)


@pytest.mark.parametrize("change, message", [
    ({"model": "mlp"}, "must be 'lenet300_100'"),
    ({"taus": (0.9, 1.5)}, r"energy fractions τ\) must lie in \(0, 1\]"),
    ({"lambdas": (-1e-3,)}, "must be ≥ 0"),
    ({"kinds": ("sigmoid",)}, "kinds must be some of"),
    ({"units_kept": (400,)}, "must lie in 1..300"),
    ({"examples": 1}, "examples ≥ 2"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMALL, **change)


@fashion_headline
def test_lecture_08_headlines(seed):
    """Lecture 08's headline for a seed the notebook does not run."""
    ds = data.load("fashion_mnist", "ci")
    settings = gating.PRESETS["ci"]
    dense = gating.train_dense(settings, ds, seed=seed)
    heb, _ = gating.hebbian_vs_magnitude(settings, ds, dense)
    widths = gating.pfa_widths(settings, ds, dense, progress=False)
    swept = gating.gate_sweep(settings, ds, seed=seed, progress=False)
    claims.check("test_gating", gating.headline(heb, widths, swept, dense.test_acc))
