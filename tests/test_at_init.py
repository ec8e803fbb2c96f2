"""Pruning at initialisation: GraSP against an explicit Hessian, SynFlow's conservation law and no collapse."""

import itertools

import pytest
import torch

from conftest import flat_loss
from coursekit import at_init, connectivity, models
from coursekit.core.masks import prunable_parameters
from coursekit.core.pruning import mask_from_scores

DEEP = dict(input_shape=(1, 28, 28), num_classes=10, hidden=(100,) * 6)


def _deep(seed=0):
    return models.build("mlp", DEEP["input_shape"], DEEP["num_classes"], seed=seed, hidden=DEEP["hidden"])


def test_grasp_is_theta_times_the_hessian_gradient_product():
    model = models.build("mlp", (6,), 3, seed=0, hidden=(5,)).double()
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 6, generator=gen, dtype=torch.float64), torch.randint(0, 3, (20,), generator=gen)
    loss_of, flat = flat_loss(model, x, y, temperature=200)
    g = torch.autograd.functional.jacobian(loss_of, flat)
    expected = flat * (torch.autograd.functional.hessian(loss_of, flat) @ g)
    scores = at_init.grasp(model, x, y)
    torch.testing.assert_close(torch.cat([scores[n].flatten() for n in prunable_parameters(model)]), expected,
                               rtol=1e-8, atol=1e-14)


def test_synflow_conserves_the_flow_through_every_hidden_unit():
    """What enters a unit equals what leaves it (Tanaka et al., Thm. 1; the biases are set to 0)."""
    model = _deep(1)
    scores = at_init.synflow_scores(model, DEEP["input_shape"])
    linear = [i for i, m in enumerate(model) if isinstance(m, torch.nn.Linear)]
    for a, b in itertools.pairwise(linear):
        assert (scores[f"{a}.bias"] == 0).all()
        incoming = scores[f"{a}.weight"].sum(1)
        outgoing = scores[f"{b}.weight"].sum(0)
        torch.testing.assert_close(incoming, outgoing, rtol=1e-10, atol=0)


def test_at_extreme_compression_synflow_keeps_every_layer_where_magnitude_collapses():
    model = _deep(0)
    density = 1e-3  # 129 of 129 400 weights
    weights = prunable_parameters(model)
    magnitude = mask_from_scores({n: w.detach().abs() for n, w in weights.items()}, density, "global")
    synflow = at_init.synflow_mask(model, DEEP["input_shape"], density)
    assert min(magnitude.layer_densities().values()) == 0  # the 784-wide first layer has the smallest weights
    assert connectivity.paths(model, magnitude, DEEP["input_shape"]) == 0
    assert min(int(synflow[n].sum()) for n in synflow) >= 1
    assert connectivity.paths(model, synflow, DEEP["input_shape"]) > 0
    assert synflow.density == pytest.approx(density, abs=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda m: at_init.synflow_mask(m, (1, 28, 28), 0.1, iterations=0), "iterations must be a positive int"),
    (lambda m: at_init.synflow_mask(m, (1, 28, 28), 1.2), r"density must lie in \(0, 1\]"),
    (lambda m: at_init.grasp(m, torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long)), "at least one"),
    (lambda m: at_init.synflow_mask(torch.nn.Sequential(torch.nn.Flatten()), (1, 28, 28), 0.5),
     "no prunable weights"),
])
def test_bad_requests_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(_deep())
