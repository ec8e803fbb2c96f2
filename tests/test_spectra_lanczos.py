"""Sloppy spectra (coursekit.methods.spectra): Hessian-vector products, Lanczos, SLQ, the Gram-trick Fisher,
the input covariance, effective dimension and trajectory PCA — each against an explicit computation."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, hessian

from coursekit import spectra, train


def tiny(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()


def data(n=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=gen, dtype=torch.float64), torch.randint(0, 3, (n,), generator=gen)


def explicit_hessian(model, x, y):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(w):
        params, i = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            params[name] = w[i:i + shape.numel()].view(shape)
            i += shape.numel()
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    return hessian(loss)(flat)


def test_hessian_vector_products_and_lanczos_match_the_explicit_hessian():
    model, (x, y) = tiny(), data()
    h = explicit_hessian(model, x, y)
    op = spectra.HessianOperator(model, x, y, chunk=15)  # three chunks, summed
    v = torch.randn(op.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(op.matvec(v), h @ v, rtol=1e-10, atol=1e-12)
    exact = torch.linalg.eigvalsh(h).flip(0)
    top = spectra.top_eigenvalues(op, k=5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(top, exact[:5], rtol=1e-8, atol=1e-10)
    t, q = spectra.lanczos(op.matvec, op.dim, op.dim, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(q.T @ q, torch.eye(q.shape[1], dtype=torch.float64), atol=1e-10, rtol=0)
    ritz = torch.linalg.eigvalsh(t)  # both ends of the spectrum, negative curvature included
    torch.testing.assert_close(ritz[[0, -1]], exact[[-1, 0]], rtol=1e-8, atol=1e-10)
    assert exact[-1] < 0  # a non-convex loss
    torch.testing.assert_close(op.matrix(rows=7), h, rtol=1e-10, atol=1e-12)  # batched products, in blocks
    fresh = spectra.HessianOperator(model, x, y, chunk=15, keep_graph=False)  # rebuilt for every product
    torch.testing.assert_close(fresh.matvec(v), h @ v, rtol=1e-10, atol=1e-12)
    calls = []
    counted = spectra.HessianOperator(model, x, y)
    counted.matvec = lambda u: calls.append(1) or op.matvec(u)
    quick = spectra.top_eigenvalues(counted, k=2, tol=1e-6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(quick, exact[:2], rtol=1e-5, atol=0)
    assert len(calls) < 30  # stopped once the top two stopped moving
    with pytest.raises(ValueError, match="tol must be a positive"):
        spectra.top_eigenvalues(op, k=2, tol=0.0)


def test_a_block_of_the_hessian_and_of_the_fisher():
    model, (x, y) = tiny(), data(n=12)
    h = explicit_hessian(model, x, y)
    block = spectra.HessianOperator(model, x, y, params=["2.weight"])  # the last layer's 5 × 3 weights
    first = 4 * 5 + 5  # parameters before it
    torch.testing.assert_close(block.matrix(), h[first:first + 15, first:first + 15], rtol=1e-10, atol=1e-12)
    rows = torch.cat([g["2.weight"].flatten(1) for g in
                      spectra._gradient_chunks(model, x, y, "empirical", 12, None)])
    torch.testing.assert_close(spectra.fisher_eigenvalues(model, x, y, params=["2.weight"]),
                               torch.linalg.eigvalsh(rows.T @ rows / 12).flip(0)[:12].clamp(min=0),
                               rtol=1e-8, atol=1e-12)
    for bad in (["2.bias", "nope"], "2.weight", []):
        with pytest.raises(ValueError, match="params must be a non-empty list of parameter names"):
            spectra.HessianOperator(model, x, y, params=bad)
        with pytest.raises(ValueError, match="params must be a non-empty list of parameter names"):
            spectra.fisher_eigenvalues(model, x, y, params=bad)


def test_slq_density_integrates_to_one_and_follows_the_spectrum():
    gen = torch.Generator().manual_seed(0)
    eigenvalues = torch.cat([torch.full((150,), 1.0), torch.full((50,), 5.0)]).double()
    basis, _ = torch.linalg.qr(torch.randn(200, 200, generator=gen, dtype=torch.float64))
    matrix = basis @ torch.diag(eigenvalues) @ basis.T
    grid = torch.linspace(-1, 7, 801)
    density = spectra.spectral_density(lambda v: matrix @ v, 200, grid, steps=30, probes=20, sigma=0.1,
                                       generator=gen)
    assert torch.trapezoid(density, grid.double()).item() == pytest.approx(1.0, rel=1e-9)
    near_one = torch.trapezoid(density[(grid > 0) & (grid < 3)], grid.double()[(grid > 0) & (grid < 3)])
    assert near_one.item() == pytest.approx(0.75, abs=0.08)  # the explicit histogram: 150 of 200 at 1
    nodes, weights = spectra.spectral_nodes(lambda v: matrix @ v, 200, steps=30, probes=20, generator=gen)
    assert weights.sum().item() == pytest.approx(200)  # Σ w f(λ) ≈ tr f(A): f = 1 counts the dimension
    assert (weights * nodes).sum().item() == pytest.approx(eigenvalues.sum().item(), rel=0.1)  # the trace
    exact = spectra.effective_dimension(eigenvalues, 2.0)  # 150/3 + 50·5/7
    assert spectra.effective_dimension(nodes.clamp(min=0), 2.0, weights) == pytest.approx(exact, rel=0.1)


def test_gram_trick_fisher_equals_the_explicit_fisher():
    model, (x, y) = tiny(), data(n=12)
    for kind in ("empirical", "true"):
        gram = spectra.fisher_eigenvalues(model, x, y, kind, generator=torch.Generator().manual_seed(3), chunk=5)
        rows = torch.cat([torch.cat([g.flatten(1) for g in grads.values()], 1) for grads in
                          spectra._gradient_chunks(model, x, y, kind, 5, torch.Generator().manual_seed(3))])
        explicit = torch.linalg.eigvalsh(rows.T @ rows / len(x)).flip(0)
        torch.testing.assert_close(gram, explicit[:12].clamp(min=0), rtol=1e-8, atol=1e-12)
    assert spectra.fisher_eigenvalues(model, x, y, k=3).shape == (3,)
    with pytest.raises(ValueError, match=r"k must lie in 1..12"):
        spectra.fisher_eigenvalues(model, x, y, k=13)


def test_digits_input_covariance_spans_many_decades_gaussian_less_than_one(digits):
    values = spectra.input_spectrum(digits.x_train)
    positive = values[values > 0]
    assert torch.log10(positive[0] / positive[-1]) > 5
    gaussian = spectra.input_spectrum(torch.randn(digits.x_train.shape, generator=torch.Generator().manual_seed(0)))
    assert torch.log10(gaussian[0] / gaussian[-1]) < 1


def test_effective_dimension_and_decades():
    assert spectra.effective_dimension(torch.tensor([100.0, 1.0, 0.01]), 1.0) == pytest.approx(
        100 / 101 + 0.5 + 0.01 / 1.01)
    with pytest.raises(ValueError, match="clamp"):
        spectra.effective_dimension(torch.tensor([1.0, -0.5]), 1.0)
    for z in (0.0, -1.0, True, "1"):
        with pytest.raises(ValueError, match="must be a positive number"):
            spectra.effective_dimension(torch.tensor([1.0]), z)
    with pytest.raises(ValueError, match="weights must match"):
        spectra.effective_dimension(torch.tensor([1.0, 2.0]), 1.0, torch.ones(3))
    assert spectra.decades(torch.tensor([1e3, 1.0, 1e-2, 0.0, -1.0])) == pytest.approx(5.0)
    assert spectra.decades(torch.tensor([1.0, 1e-20, 1e-3])) == pytest.approx(3.0)  # 1e-20: round-off of a zero
    with pytest.raises(ValueError, match="at least one positive eigenvalue"):
        spectra.decades(torch.tensor([0.0, -1.0]))


def test_trajectory_pca_of_a_training_run(digits):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    recorder = spectra.WeightTrajectory(every=5)
    recorder.record(model)
    train.fit(model, digits, epochs=2, lr=0.05, hooks=[recorder], progress=False)
    shares = recorder.pca()
    assert len(shares) == len(recorder.snapshots) and shares.sum().item() == pytest.approx(1.0)
    assert shares[0] > 0.5 and shares[:3].sum() > 0.9  # training moves mostly along a few directions
    coords = recorder.coordinates(3)
    variance = coords.pow(2).sum(0)
    torch.testing.assert_close(variance / recorder.coordinates(len(shares)).pow(2).sum(), shares[:3])
    with pytest.raises(ValueError, match=r"k must lie in 1\.\."):
        recorder.coordinates(0)
    with pytest.raises(ValueError, match="at least two snapshots"):
        spectra.WeightTrajectory().pca()


def test_bad_input():
    model, (x, y) = tiny(), data()
    op = spectra.HessianOperator(model, x, y)
    with pytest.raises(ValueError, match=r"k must be an int in 1..43"):
        spectra.top_eigenvalues(op, k=44)
    with pytest.raises(ValueError, match="flat vector of the 43"):
        op.matvec(torch.zeros(5, dtype=torch.float64))
    summed = spectra.HessianOperator(model, x, y, loss=lambda out, t: F.cross_entropy(out, t, reduction="none"))
    with pytest.raises(ValueError, match="the loss must be a scalar"):
        summed.matvec(torch.zeros(43, dtype=torch.float64))
