"""Lecture 09's driver: every method's mask, the collapse table, batched training, the figures."""

import dataclasses
import math

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib.figure import Figure

from conftest import fashion_headline
from coursekit import claims, data, layer_collapse

SMALL = layer_collapse.CollapseSettings(hidden=(32, 32, 32), epochs=1, lr=1e-2, compressions=(2, 20, 200),
                                        examples=64, synflow_iterations=10)


@pytest.fixture(scope="module")
def pruned(digits):
    model = layer_collapse.untrained(SMALL, digits, seed=0)
    masks = layer_collapse.prune_all(SMALL, digits, model, seed=0)
    return model, masks, layer_collapse.collapse(SMALL, digits, model, masks)


def test_every_method_hits_every_compression(pruned):
    _, masks, _ = pruned
    assert set(masks) == {(m, c) for m in layer_collapse.METHODS for c in SMALL.compressions}
    for (method, compression), mask in masks.items():
        assert mask.density == pytest.approx(1 / compression, rel=0.05, abs=2e-4), method


def test_collapse_table_and_points(pruned):
    _, _, table = pruned
    assert list(table.columns) == ["method", "compression", "layer", "density", "paths", "collapsed"]
    assert len(table) == len(layer_collapse.METHODS) * 3 * 4  # four weight layers
    assert (table["collapsed"] == (table["paths"] == 0)).all()
    points = layer_collapse.collapse_points(table)
    assert list(points.index) == list(layer_collapse.METHODS)
    assert points["SynFlow"] >= points["magnitude"]


def test_training_every_mask_together_and_the_figures(digits, pruned):
    _, masks, table = pruned
    accuracy = layer_collapse.train_masked(SMALL, digits, masks, seed=0, progress=False)
    assert len(accuracy) == len(masks) and accuracy["test_acc"].between(0, 1).all()
    collapsed = table[table["collapsed"]].drop_duplicates(["method", "compression"])
    merged = collapsed.merge(accuracy, on=["method", "compression"])
    assert (merged["test_acc"] < 0.25).all()  # no path: the output ignores the input
    for fig in (layer_collapse.plot_layer_densities(table, 200),
                layer_collapse.plot_accuracy(accuracy, layer_collapse.collapse_points(table), 0.1)):
        assert isinstance(fig, Figure)
    found = layer_collapse.headline(table, accuracy, trained_at=20)
    assert len(found) == 4 and all(isinstance(c, claims.Claim) for c in found)
    with pytest.raises(ValueError, match="no rows with compression = 30"):
        layer_collapse.headline(table, accuracy)
    assert math.isfinite(found[1].value)


@pytest.mark.parametrize("change, message", [
    ({"model": "lenet300_100"}, "needs model 'mlp'"),
    ({"methods": ("magnitude", "OBD")}, "methods must be some of"),
    ({"compressions": (10, 3)}, "must be increasing"),
    ({"compressions": (0.5,)}, "≥ 1"),
    ({"synflow_iterations": 0}, "synflow_iterations ≥ 1"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMALL, **change)


def test_an_unknown_method_is_refused(digits, pruned):
    model, _, _ = pruned
    with pytest.raises(ValueError, match="unknown method 'OBD'"):
        layer_collapse.prune(SMALL, digits, model, "OBD", 10)


@fashion_headline
def test_lecture_09_headlines(seed):
    """Lecture 09's headline for a seed the notebook does not run."""
    ds = data.load("fashion_mnist", "ci")
    settings = layer_collapse.PRESETS["ci"]
    model = layer_collapse.untrained(settings, ds, seed)
    masks = layer_collapse.prune_all(settings, ds, model, seed)
    table = layer_collapse.collapse(settings, ds, model, masks)
    accuracy = layer_collapse.train_masked(settings, ds, masks, seed, progress=False)
    claims.check("test_layer_collapse", layer_collapse.headline(table, accuracy))
