"""Per-layer budgets: ERK against its formula, every budget at the requested density, the floor."""

import math

import pytest
import torch

from coursekit import budgets, models
from coursekit.core.pruning import mask_from_scores

LENET = budgets.shapes_of(models.build("lenet300_100", (1, 28, 28), 10))


def test_erk_on_lenet_at_90_percent_sparsity_matches_the_formula():
    budget = budgets.erk(LENET, 0.1)
    raw = {n: sum(s) / math.prod(s) for n, s in LENET.items()}  # (n_in + n_out) / (n_in n_out)
    eps = {n: budget[n] / raw[n] for n in LENET if budget[n] < 1}
    assert max(eps.values()) == pytest.approx(min(eps.values()), rel=1e-12)  # one ε for every sparse layer
    kept = sum(budget[n] * math.prod(s) for n, s in LENET.items())
    assert kept == pytest.approx(0.1 * sum(math.prod(s) for s in LENET.values()), rel=1e-9)
    assert budget["1.weight"] < budget["3.weight"] < budget["5.weight"]  # small layers stay denser


def test_erk_makes_a_layer_dense_when_the_formula_would_overfill_it():
    shapes = {"big": torch.Size([1000, 1000]), "tiny": torch.Size([2, 3])}
    budget = budgets.erk(shapes, 0.05)
    assert budget["tiny"] == 1.0
    assert budgets.achieved(budget, shapes) == pytest.approx(0.05, rel=1e-3)


@pytest.mark.parametrize("density", [0.5, 0.1, 0.02])
def test_every_budget_hits_the_requested_density(density):
    gen = torch.Generator().manual_seed(0)
    scores = {n: torch.rand(s, generator=gen) for n, s in LENET.items()}
    for budget in (budgets.uniform(LENET, density), budgets.erk(LENET, density),
                   budgets.global_with_floor(scores, density, minimum=50)):
        mask = mask_from_scores(scores, scope=budget)
        assert mask.density == pytest.approx(density, abs=2e-4)
        assert budgets.achieved(budget, LENET) == pytest.approx(mask.density, abs=1e-12)


def test_the_floor_keeps_every_layer_alive_at_the_cost_of_the_others():
    scores = {"a": torch.full((100,), 10.0), "b": torch.ones(50)}  # a global threshold would empty b
    budget = budgets.global_with_floor(scores, 0.2, minimum=5)
    assert budget == {"a": 0.25, "b": 0.1}
    mask = mask_from_scores(scores, scope=budget)
    assert mask.kept == 30 and int(mask["b"].sum()) == 5


def test_erdos_renyi_epsilon_sets_the_connections_per_layer():
    budget = budgets.erdos_renyi(LENET, 20)
    for n, s in LENET.items():
        assert budget[n] * math.prod(s) == pytest.approx(min(20 * (s[0] + s[1]), math.prod(s)))
    mask = budgets.random_mask(LENET, budget, torch.Generator().manual_seed(1))
    assert int(mask["1.weight"].sum()) == 20 * (784 + 300)


@pytest.mark.parametrize("call, message", [
    (lambda: budgets.erk(LENET, 0.0), r"density must lie in \(0, 1\] \(sparsity in \[0, 1\)\), got 0.0"),
    (lambda: budgets.uniform(LENET, 1.5), r"density must lie in \(0, 1\]"),
    (lambda: budgets.erdos_renyi(LENET, 0), "ε must be a positive number"),
    (lambda: budgets.global_with_floor({"a": torch.ones(3)}, 0.5, minimum=4), "layers that have fewer"),
    (lambda: budgets.global_with_floor({"a": torch.ones(30), "b": torch.ones(30)}, 0.05, minimum=2),
     "keeps 3 weights, fewer than 2 in each of 2 layers"),
    (lambda: budgets.random_mask(LENET, {"1.weight": 0.5}, None), r"no density for \['3.weight', '5.weight'\]"),
    (lambda: budgets.shapes_of(torch.nn.Sequential(torch.nn.ReLU())), "no prunable weights"),
])
def test_bad_budgets_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
