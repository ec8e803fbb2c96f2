"""Permutation symmetry: same outputs, the class size, weight matching, the loss barrier."""

import math

import pytest
import torch

from coursekit import claims, models, permutations, train


@pytest.mark.parametrize("name, shape, kwargs", [
    ("mlp", (1, 8, 8), {"hidden": (16, 12)}),
    ("vgg_bn", (1, 8, 8), {"cfg": (4, "M", 6)}),
])
def test_a_permuted_network_computes_the_same_function(name, shape, kwargs):
    model = models.build(name, shape, 10, seed=0, **kwargs).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so a wrong permutation would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    perms = permutations.random_permutations(model, torch.Generator().manual_seed(1))
    permuted = permutations.permute(model, perms).eval()
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(permuted(x), model(x), rtol=1e-5, atol=1e-6)
    first = permutations.hidden_layers(model)[0]
    assert not torch.equal(dict(permuted.named_children())[first].weight, dict(model.named_children())[first].weight)


def test_the_equivalence_class_has_prod_n_factorial_members():
    model = models.build("mlp", (20,), 3, seed=0, hidden=(5, 4))
    assert permutations.log10_class_size(model) == pytest.approx(math.log10(math.factorial(5) * math.factorial(4)))
    assert permutations.log10_class_size(models.build("lenet300_100", (1, 28, 28), 10)) > 700


def test_weight_matching_recovers_a_permutation_exactly():
    a = models.build("mlp", (30,), 5, seed=0, hidden=(20, 15, 10))
    b = permutations.permute(a, permutations.random_permutations(a, torch.Generator().manual_seed(3)))
    found = permutations.match_weights(a, b, generator=torch.Generator().manual_seed(0))
    aligned = permutations.permute(b, found)
    for (n, p), q in zip(a.named_parameters(), aligned.parameters(), strict=True):
        assert torch.equal(p, q), n


@pytest.mark.trained
@pytest.mark.parametrize("seed", claims.seeds(default=(0,)))
def test_aligning_two_trained_networks_lowers_the_loss_barrier(digits, seed):
    def trained(s):
        net = models.build("mlp", digits.input_shape, digits.num_classes, seed=s, hidden=(64, 64))
        train.fit(net, digits, epochs=8, optimizer="adam", lr=1e-2, seed=s, progress=False)
        return net

    a, b = trained(2 * seed), trained(2 * seed + 1)
    before = permutations.loss_barrier(a, b, digits)["barrier"].max()
    aligned = permutations.permute(b, permutations.match_weights(a, b, generator=torch.Generator().manual_seed(0)))
    after = permutations.loss_barrier(a, aligned, digits)["barrier"].max()
    claims.check("test_permutations", [claims.Claim("loss barrier after alignment over before", after / before,
                                                    "<", 0.7)])


def test_the_barrier_between_a_network_and_itself_is_zero(digits):
    net = models.build("mlp", digits.input_shape, digits.num_classes, seed=0, hidden=(16,))
    table = permutations.loss_barrier(net, net, digits, alphas=(0.0, 0.5, 1.0))
    assert list(table.columns) == ["alpha", "loss", "acc", "barrier"]
    assert table["barrier"].abs().max() < 1e-6


@pytest.mark.parametrize("call, message", [
    (lambda m: permutations.permute(m, {"3": torch.arange(4)}), r"only permute the hidden layers \['1'\]"),
    (lambda m: permutations.permute(m, {"1": torch.tensor([0, 0, 1, 2, 3])}), "must be a permutation of 0..4"),
    (lambda m: permutations.hidden_layers(torch.nn.Sequential(torch.nn.Linear(3, 2))), "a hidden layer needs two"),
    (lambda m: permutations.match_weights(m, models.build("mlp", (6,), 2, hidden=(4,))), "same architecture"),
])
def test_bad_requests_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(models.build("mlp", (6,), 2, seed=0, hidden=(5,)))
