from itertools import pairwise

import pytest
import torch
from torch import nn

from coursekit import models, schedules, train
from coursekit.core.masks import nonzero_density


def test_one_shot_and_iterative():
    assert schedules.one_shot(0.1) == [0.1]
    assert schedules.iterative(0.2, 2) == pytest.approx([0.8, 0.64])
    with pytest.raises(ValueError, match=r"prune_fraction_of_remaining must lie in \(0, 1\)"):
        schedules.iterative(1.0, 3)
    with pytest.raises(ValueError, match="rounds must be a positive int"):
        schedules.iterative(0.2, 0)


def test_iterative_budgets_prune_the_output_layer_slower():
    budgets = schedules.iterative_budgets(0.2, 2, ["a", "out"], {"out": 0.5})
    assert budgets[1] == {"a": pytest.approx(0.64), "out": pytest.approx(0.81)}
    with pytest.raises(ValueError, match="unknown layers"):
        schedules.iterative_budgets(0.2, 2, ["a"], {"b": 0.5})


def test_cubic_density_follows_zhu_and_gupta():
    d = [schedules.cubic_density(t, 0.1, 10, 110) for t in (0, 10, 60, 110, 500)]
    assert d[0] == d[1] == 1.0 and d[3] == d[4] == pytest.approx(0.1)
    assert d[2] == pytest.approx(1 - 0.9 * (1 - 0.5**3))  # fast early, slow late
    with pytest.raises(ValueError, match="start_step < end_step"):
        schedules.cubic_density(0, 0.1, 50, 50)


def test_gradual_pruning_reaches_the_final_density_during_training(digits):
    net = models.build("mlp", digits.input_shape, 10, hidden=(32,))
    gradual = schedules.GradualPruning(net, 0.2, start_step=5, end_step=60, every=5)
    seen = []
    train.fit(net, digits, epochs=5, batch_size=64, progress=False,
              hooks=[gradual, lambda ctx: seen.append(gradual.mask.density)])
    assert seen[0] == 1.0 and seen[-1] == pytest.approx(0.2, abs=1e-3)
    assert all(a >= b for a, b in pairwise(seen))  # density never grows back
    assert nonzero_density(net) == pytest.approx(gradual.mask.density)
    assert torch.count_nonzero(net[1].weight) == gradual.mask["1.weight"].sum()


@pytest.mark.parametrize(("call", "message"), [
    (lambda: schedules.iterative_budgets(0.5, 3, ["a", "b"], {"b": 3}),
     r"multiplier, must lie in \(0, 1\); got \{'b': 1.5\}"),
    (lambda: schedules.iterative_budgets(0.5, 3, ["a", "b"], {"b": -1}), r"got \{'b': -0.5\}"),
    (lambda: schedules.iterative_budgets(0.5, 3, "0.weight"), "layers must be a non-empty list of layer names"),
    (lambda: schedules.cubic_density(5, 0.5, 0, 10, initial_density_of_all=2.0),
     r"initial_density_of_all must lie in \(0, 1\]"),
    (lambda: schedules.cubic_density(5, 0.5, 0, 10, initial_density_of_all=0.1), "pruning only removes weights"),
    (lambda: schedules.GradualPruning(nn.Sequential(nn.Linear(4, 2)), 0.5, 0, 10, scope={"0.weight": 0.5}),
     "scope must be 'global' or 'layerwise'"),
    (lambda: schedules.GradualPruning(nn.Sequential(nn.Linear(4, 2)), 0.5, 0, 10, every=2.5),
     "every must be a positive int, got 2.5"),
])
def test_schedules_refuse_densities_that_grow_or_go_negative(call, message):
    with pytest.raises(ValueError, match=message):
        call()
