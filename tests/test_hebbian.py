"""Hebbian co-activation scores: correlated ends score high, unrelated or silent ones zero."""

import pytest
import torch
from torch import nn

from coursekit import hebbian, models, pruning


def _wired():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
        net[1].bias.zero_()
        net[3].weight.copy_(torch.tensor([[2.0, 0.5], [-1.0, 3.0]]))
        net[3].bias.zero_()
    return net


def test_a_unit_that_copies_its_input_correlates_with_it_alone():
    x = torch.rand(5_000, 3, generator=torch.Generator().manual_seed(0))  # positive: the ReLU passes x0
    scores = hebbian.coactivation_scores(_wired(), x)
    first = scores["1.weight"]
    assert first.shape == (2, 3)
    assert first[0, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert first[0, 1:].max().item() < 0.05  # independent inputs: sampling noise only (sd ≈ 0.014)
    assert first[1].abs().max().item() == 0.0  # a unit that never varies correlates with nothing
    assert scores["3.weight"][:, 1].abs().max().item() == 0.0  # ... nor does the next layer's input from it


def test_scores_go_through_the_one_scores_to_mask_path():
    x = torch.rand(2_000, 3, generator=torch.Generator().manual_seed(1))
    net = _wired()
    mask = pruning.mask_from_scores(hebbian.coactivation_scores(net, x), 1 / 3, scope="layerwise")
    assert mask["1.weight"][0, 0].item() and int(mask["1.weight"].sum()) == 2  # the correlated one kept
    trained = models.build("mlp", (8,), 3, seed=0, hidden=(16,))
    scores = hebbian.coactivation_scores(trained, torch.randn(100, 8, generator=torch.Generator().manual_seed(2)))
    assert sorted(scores) == ["1.weight", "3.weight"] and scores["3.weight"].shape == (3, 16)


@pytest.mark.parametrize(("model", "x", "message"), [
    (nn.Sequential(nn.Flatten(), nn.Linear(3, 2)), torch.ones(1, 3), "at least 2 examples"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), torch.ones(4, 1, 5, 5), "need a Sequential of Linear"),
    (nn.Linear(3, 2), torch.ones(4, 3), "read an nn.Sequential"),
])
def test_bad_input_says_what_is_accepted(model, x, message):
    with pytest.raises(ValueError, match=message):
        hebbian.coactivation_scores(model, x)
