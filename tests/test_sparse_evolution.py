"""Lecture 10's driver: dense, static, SET and RigL from one start; the ε × ζ grid; in-degree."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from conftest import fashion_headline
from coursekit import claims, data, sparse_evolution
from coursekit.core.masks import Mask

SMALL = sparse_evolution.EvolutionSettings(hidden=(40, 40), epochs=2, lr=1e-2, batch_size=64, epsilon=5.0,
                                           rigl_every=5, epsilons=(5.0,), zetas=(0.2, 0.4))
DIGITS = (8, 8)


@pytest.fixture(scope="module")
def compared(digits):
    return sparse_evolution.compare(SMALL, digits, seed=0, progress=False)


def test_four_runs_from_one_start_at_one_density(compared):
    curves, masks = compared
    assert list(curves["run"].unique()) == list(sparse_evolution.RUNS)
    assert curves.groupby("run")["epoch"].max().eq(2).all()
    densities = curves.groupby("run")["density"].first()
    assert densities["dense"] == 1 and densities["static"] == densities["SET"] == densities["RigL"] < 1
    assert {n: int(m.kept) for n, m in masks.items()} == dict.fromkeys(masks, masks["static"].kept)
    assert masks["SET"] != masks["static"] and masks["RigL"] != masks["static"]


def test_grid_runs_every_epsilon_and_zeta(digits):
    grid, grid_masks = sparse_evolution.set_grid(SMALL, digits, seed=0, progress=False)
    assert set(grid_masks) == {(5.0, 0.2), (5.0, 0.4)}
    assert grid.groupby(["epsilon", "zeta"]).size().to_dict() == {(5.0, 0.2): 2, (5.0, 0.4): 2}


def test_in_degree_and_alignment():
    keep = torch.zeros(3, 4, dtype=torch.bool)
    keep[:, 0] = True
    keep[0, 3] = True
    mask = Mask({"1.weight": keep})
    assert sparse_evolution.in_degree(mask, "1.weight", (2, 2)).tolist() == [[3, 0], [0, 1]]
    spread = np.array([[1.0, 0.0], [0.1, 0.5]])
    assert sparse_evolution.alignment(mask, spread) > 0.5
    with pytest.raises(ValueError, match="expected 9 pixels"):
        sparse_evolution.in_degree(mask, "1.weight", (3, 3))


def test_headline_and_figures(digits, compared):
    curves, masks = compared
    spread = sparse_evolution.pixel_spread(digits, DIGITS)
    found = sparse_evolution.headline(curves, masks, spread)
    assert len(found) == 3 and all(isinstance(c, claims.Claim) for c in found)
    grid, grid_masks = sparse_evolution.set_grid(SMALL, digits, seed=0, progress=False)
    figures = [sparse_evolution.plot_curves(curves)]
    with pytest.raises(ValueError, match="expected 784 pixels"):
        sparse_evolution.plot_topology({"start": masks["static"]})
    with pytest.raises(ValueError, match=r"no rows with zeta = 0\.9"):
        sparse_evolution.plot_grid_choice(grid, grid_masks, 5.0, 0.9, curves)
    gen = torch.Generator().manual_seed(0)
    wide = {k: Mask({"1.weight": torch.rand(20, 784, generator=gen) < 0.1}) for k in grid_masks}
    figures += [sparse_evolution.plot_topology({"start": wide[(5.0, 0.2)], "end": wide[(5.0, 0.4)]}),
                sparse_evolution.plot_grid_choice(grid, wide, 5.0, 0.4, curves)]
    assert all(isinstance(f, Figure) for f in figures)


@pytest.mark.parametrize("change, message", [
    ({"model": "lenet300_100"}, "needs model 'mlp'"),
    ({"epsilon": 0.0}, "ε must be positive"),
    ({"zetas": (0.3, 1.0)}, r"ζ must lie in \(0, 1\)"),
    ({"rigl_every": 0}, "rigl_every must be a positive"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMALL, **change)


@fashion_headline
def test_lecture_10_headlines(seed):
    """Lecture 10's headline for a seed the notebook does not run."""
    ds = data.load("fashion_mnist", "ci")
    curves, masks = sparse_evolution.compare(sparse_evolution.PRESETS["ci"], ds, seed=seed, progress=False)
    claims.check("test_sparse_evolution",
                 sparse_evolution.headline(curves, masks, sparse_evolution.pixel_spread(ds)))
