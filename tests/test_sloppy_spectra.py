"""Lecture 15's driver (coursekit.lectures.sloppy_spectra) on a tiny network: shapes, exactness, checks."""

import pytest
import torch

from coursekit import claims, sloppy_spectra, spectra
from coursekit.core import data as datasets

TINY = sloppy_spectra.SpectraSettings(hidden=(6,), epochs=2, examples=60, widths=(4, 12), lanczos_steps=10,
                                      probes=2, trajectory_every=2)


@pytest.fixture(scope="module")
def small():
    return datasets.load("digits", sizes=datasets.Sizes(train=120, val=40, test=40))


@pytest.fixture(scope="module")
def trained(small):
    return sloppy_spectra.train_network(TINY, small, seed=0)


def test_layer_spectra_are_exact_and_complete(small, trained):
    model, trajectory = trained
    table = sloppy_spectra.layer_spectra(model, small, TINY)
    sizes = table.groupby(["layer", "matrix"], sort=False).size()
    assert sizes.to_dict() == {("layer 1 (64 → 6)", "input covariance"): 64, ("layer 1 (64 → 6)", "Hessian"): 384,
                               ("layer 1 (64 → 6)", "Fisher"): 60, ("layer 2 (6 → 10)", "input covariance"): 6,
                               ("layer 2 (6 → 10)", "Hessian"): 60, ("layer 2 (6 → 10)", "Fisher"): 60}
    x, y = small.x_train[:60].double(), small.y_train[:60]
    block = spectra.HessianOperator(model.double(), x, y, params=["3.weight"]).matrix()
    exact = torch.linalg.eigvalsh(block).flip(0)
    got = table.query("matrix == 'Hessian' and layer == 'layer 2 (6 → 10)'")["eigenvalue"].to_numpy()
    assert got == pytest.approx(exact.numpy(), abs=1e-12)
    spans = sloppy_spectra.spans(table)
    assert (spans["decades"] > 0).all() and len(spans) == 6
    assert len(trajectory.snapshots) == 1 + TINY.epochs * 2 // TINY.trajectory_every  # the start, then 2 per epoch


def test_effective_dimensions_and_the_checks(small, trained):
    model, trajectory = trained
    dims = sloppy_spectra.effective_dimensions(TINY, small, progress=False)
    assert dims[["width", "z"]].drop_duplicates().shape[0] == 6
    assert dims["parameters"].unique().tolist() == [64 * 4 + 4 + 4 * 10 + 10, 64 * 12 + 12 + 12 * 10 + 10]
    assert ((dims["effective dimension"] > 0) & (dims["share"] <= 1.05)).all()
    for _, part in dims.groupby("width"):  # a larger z counts fewer directions
        assert part.sort_values("z")["effective dimension"].is_monotonic_decreasing
    table = sloppy_spectra.layer_spectra(model, small, TINY)
    found = sloppy_spectra.headline(table, sloppy_spectra.gaussian_spectrum(small), dims, trajectory.pca())
    assert len(found) == 7 and all(torch.isfinite(torch.tensor(c.value)) for c in found)
    claims.check("tiny spectra", [c for c in found if "share" in c.name])  # wider: a smaller share


@pytest.mark.parametrize("change, message", [
    ({"zs": (0.0,)}, "curvature scales zs > 0"), ({"widths": ()}, "positive layer widths"),
    ({"dataset": "cifar"}, "dataset must be one of"), ({"trajectory_every": 0}, "trajectory_every"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        sloppy_spectra.SpectraSettings(**{**TINY.__dict__, **change})
