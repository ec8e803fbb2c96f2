"""SET and RigL: what each step removes and grows, constant connection counts, training hooks."""

import pytest
import torch
from torch import nn

from coursekit import budgets, dynamic_sparse, models, train
from coursekit.core.batched import fit_batched
from coursekit.core.masks import Mask


def _layer(values):
    net = nn.Sequential(nn.Linear(len(values), 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([values]))
    return net


def test_set_removes_the_smallest_positive_and_the_negative_weights_nearest_zero():
    values = [0.9, 0.1, 0.5, 0.05, -0.02, -0.8, -0.3, -0.01, 0.0, 0.0]
    net = _layer(values)
    keep = torch.tensor([[True] * 8 + [False, False]])
    hook = dynamic_sparse.SET(net, Mask({"0.weight": keep}), zeta=0.5, generator=torch.Generator().manual_seed(0))
    drop = hook.removal(net[0].weight, hook.keep["0.weight"])
    # positives 0.9, 0.1, 0.5, 0.05: the two smallest go; negatives -0.02, -0.8, -0.3, -0.01: the two nearest 0 go
    assert drop[0].nonzero().squeeze(1).tolist() == [1, 3, 4, 7]


def test_set_keeps_the_count_and_never_regrows_what_it_just_removed():
    net = models.build("mlp", (20,), 5, seed=0, hidden=(30,))
    shapes = budgets.shapes_of(net)
    mask = budgets.random_mask(shapes, budgets.uniform(shapes, 0.3), torch.Generator().manual_seed(1))
    hook = dynamic_sparse.SET(net, mask, zeta=0.3, generator=torch.Generator().manual_seed(2))
    for _ in range(5):
        before = hook.mask
        removed = {n: before[n] & hook.removal(dict(net.named_parameters())[n], hook.keep[n]) for n in before}
        changed = hook.evolve()
        after = hook.mask
        for n in before:
            assert int(after[n].sum()) == int(before[n].sum())
            grown = after[n] & ~before[n]
            assert int(grown.sum()) == changed[n] == int(removed[n].sum())
            assert not (grown & removed[n]).any()
            assert not (after[n] & removed[n]).any()
        weights = dict(net.named_parameters())
        assert all((weights[n][~after[n]] == 0).all() for n in after)


def test_set_trains_with_fit_at_a_constant_density(digits):
    net = models.build("mlp", digits.input_shape, digits.num_classes, seed=0, hidden=(64,))
    shapes = budgets.shapes_of(net)
    mask = budgets.random_mask(shapes, budgets.erdos_renyi(shapes, 5), torch.Generator().manual_seed(0))
    hook = dynamic_sparse.SET(net, mask, zeta=0.3, generator=torch.Generator().manual_seed(0))
    train.fit(net, digits, epochs=3, optimizer="adam", lr=1e-2, progress=False, hooks=[hook])
    assert [h["connections"] for h in hook.history] == [mask.kept] * 3
    assert all(h["changed"] > 0 for h in hook.history)
    assert hook.mask != mask
    weights = dict(net.named_parameters())
    assert all((weights[n][~hook.mask[n]] == 0).all() for n in hook.mask)


def test_rigl_grows_as_many_as_it_drops_at_the_largest_gradients_with_zero_weights():
    net = _layer([0.9, -0.1, 0.5, 0.05, -0.7, 0.0, 0.0, 0.0])
    keep = torch.tensor([[True] * 5 + [False] * 3])
    hook = dynamic_sparse.RigL(net, Mask({"0.weight": keep}), total_steps=100)
    grad = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 0.2, -0.9, 0.5]])
    changed = hook.update({"0.weight": grad}, fraction=0.4)
    assert changed == {"0.weight": 2}
    assert hook.keep["0.weight"][0].tolist() == [True, False, True, False, True, False, True, True]
    assert net[0].weight[0, 6] == 0 and net[0].weight[0, 7] == 0  # grown at zero
    assert net[0].weight[0, 0].item() == pytest.approx(0.9)


def test_rigl_drop_fraction_is_cosine_annealed_and_stops_at_the_end():
    net = _layer([1.0, 2.0])
    hook = dynamic_sparse.RigL(net, Mask({"0.weight": torch.ones(1, 2, dtype=torch.bool)}), total_steps=1000,
                               alpha=0.3, end=0.75)
    assert hook.fraction(0) == pytest.approx(0.3)
    assert hook.fraction(375) == pytest.approx(0.15)
    assert hook.fraction(750) == 0 and hook.fraction(999) == 0


def test_rigl_in_fit_keeps_the_count_and_resets_the_optimiser_state(digits):
    net = models.build("mlp", digits.input_shape, digits.num_classes, seed=0, hidden=(64,))
    shapes = budgets.shapes_of(net)
    mask = budgets.random_mask(shapes, budgets.erk(shapes, 0.2), torch.Generator().manual_seed(0))
    steps = 3 * -(-len(digits.y_train) // 60)
    hook = dynamic_sparse.RigL(net, mask, total_steps=steps, every=10)
    train.fit(net, digits, epochs=3, optimizer="adam", lr=1e-2, progress=False, hooks=[hook])
    assert hook.history and all(h["connections"] == mask.kept for h in hook.history)
    assert all(h["step"] < 0.75 * steps for h in hook.history)
    weights = dict(net.named_parameters())
    assert all((weights[n][~hook.mask[n]] == 0).all() for n in hook.mask)


@pytest.mark.parametrize("call, message", [
    (lambda net, m: dynamic_sparse.SET(net, m, zeta=1.0), r"ζ must lie in \(0, 1\)"),
    (lambda net, m: dynamic_sparse.SET(net, m, zeta=0), r"ζ must lie in \(0, 1\)"),
    (lambda net, m: dynamic_sparse.RigL(net, m, total_steps=0), "total_steps must be a positive int"),
    (lambda net, m: dynamic_sparse.RigL(net, m, total_steps=10, alpha=1.5), r"alpha must lie in \(0, 1\)"),
    (lambda net, m: dynamic_sparse.RigL(net, m, total_steps=10).update({"0.weight": None}, 0.5),
     "needs the dense gradient"),
])
def test_bad_settings_are_refused(call, message):
    net = _layer([1.0, -1.0, 0.5])
    with pytest.raises(ValueError, match=message):
        call(net, Mask({"0.weight": torch.ones(1, 3, dtype=torch.bool)}))


@pytest.mark.parametrize("kind", ["SET", "RigL"])
def test_the_batched_trainer_runs_one_topology_per_member_as_fit_does(digits, kind):
    """Two seeds trained together evolve the masks the two runs of fit evolve, up to float rounding: RigL
    ranks inactive weights by gradients that are tiny for rarely-lit pixels, whose order rounding can swap."""
    def make(seed):
        net = models.build("mlp", digits.input_shape, digits.num_classes, seed=seed, hidden=(32,))
        shapes = budgets.shapes_of(net)
        mask = budgets.random_mask(shapes, budgets.erk(shapes, 0.3), torch.Generator().manual_seed(seed))
        if kind == "SET":
            return net, dynamic_sparse.SET(net, mask, zeta=0.3, generator=torch.Generator().manual_seed(seed))
        return net, dynamic_sparse.RigL(net, mask, total_steps=2 * 24, every=5)

    alone = [make(seed) for seed in (0, 1)]
    for seed, (net, hook) in enumerate(alone):
        train.fit(net, digits, epochs=2, optimizer="adam", lr=1e-2, batch_size=64, seed=seed, progress=False,
                  hooks=[hook])
    together = [make(seed) for seed in (0, 1)]
    fit_batched([n for n, _ in together], digits, [0, 1], epochs=2, optimizer="adam", lr=1e-2, batch_size=64,
                topologies=[h for _, h in together], progress=False)
    for (_, hook_a), (net_b, hook_b) in zip(alone, together, strict=True):
        assert [h["connections"] for h in hook_b.history] == [h["connections"] for h in hook_a.history]
        agree = sum(int((hook_a.mask[n] == hook_b.mask[n]).sum()) for n in hook_a.mask) / hook_a.mask.size
        assert agree > (0.99 if kind == "SET" else 0.95)
        assert all((dict(net_b.named_parameters())[n][~hook_b.mask[n]] == 0).all() for n in hook_b.mask)


def test_the_batched_trainer_takes_topologies_instead_of_masks(digits):
    net = models.build("mlp", digits.input_shape, digits.num_classes, seed=0, hidden=(32,))
    hook = dynamic_sparse.SET(net, Mask.ones_like(net), zeta=0.3)
    with pytest.raises(ValueError, match="one topology per model"):
        fit_batched([net], digits, [0], masks=[Mask.ones_like(net)], topologies=[hook], progress=False)
    with pytest.raises(ValueError, match="cannot be combined"):
        fit_batched([net], digits, [0], topologies=[hook], patience=2, progress=False)


def test_set_in_a_dense_layer_swaps_only_as_many_as_it_can_regrow():
    net = _layer([0.9, 0.1, 0.5, -0.05, -0.7, 0.3])
    keep = torch.tensor([[True] * 5 + [False]])  # one free position
    hook = dynamic_sparse.SET(net, Mask({"0.weight": keep}), zeta=0.5, generator=torch.Generator().manual_seed(0))
    assert hook.evolve() == {"0.weight": 1}
    assert hook.keep["0.weight"][0].tolist() == [True, True, True, False, True, True]  # -0.05 went, 5 came
    full = dynamic_sparse.SET(_layer([1.0, -1.0]), Mask({"0.weight": torch.ones(1, 2, dtype=torch.bool)}), zeta=0.5)
    assert full.evolve() == {"0.weight": 0}
