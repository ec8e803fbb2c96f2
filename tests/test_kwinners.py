"""k-winners: exactly k per example, ties, boosting and duty cycles, sparse weights per unit, noise."""

import pytest
import torch
from torch import nn

from coursekit import kwinners


def test_k_winners_keeps_exactly_k_per_example_ties_to_the_earlier():
    x = torch.tensor([[0.5, 2.0, 2.0, -1.0, 2.0], [3.0, 1.0, 0.0, 0.0, 0.0]])
    out = kwinners.k_winners(x, 2)
    assert out.tolist() == [[0.0, 2.0, 2.0, 0.0, 0.0], [3.0, 1.0, 0.0, 0.0, 0.0]]
    assert ((kwinners.k_winners(torch.zeros(4, 6), 3) != 0).sum() == 0)  # zeros win but stay zero
    conv = kwinners.k_winners(torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0)), 5)
    assert (conv.flatten(1) != 0).sum(1).tolist() == [5, 5, 5]


def test_gradients_reach_the_winners_only():
    x = torch.tensor([[1.0, 3.0, 2.0]], requires_grad=True)
    kwinners.k_winners(x, 2).sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 1.0]]


def test_duty_cycles_update_as_documented():
    layer = kwinners.KWinners(4, k=1, boost_strength=0.0, duty_cycle_period=10)  # no boost: unit 0 always wins
    x = torch.tensor([[4.0, 3.0, 2.0, 1.0]] * 2)
    assert layer(x).tolist() == [[4.0, 0, 0, 0]] * 2
    assert layer.duty_cycle.tolist() == pytest.approx([2 / 10, 0, 0, 0])  # (0 · (10 − 2) + 2) / 10
    layer(x)
    assert layer.duty_cycle.tolist() == pytest.approx([(0.2 * 8 + 2) / 10, 0, 0, 0])
    big = kwinners.KWinners(3, k=1, duty_cycle_period=2)
    big(torch.tensor([[1.0, 0.0, 0.0]] * 4))
    assert big.duty_cycle.tolist() == pytest.approx([1.0, 0.0, 0.0])  # B ≥ T: this batch's rate


def test_boosting_lets_units_that_rarely_win_take_turns():
    layer = kwinners.KWinners(4, k=1, boost_strength=2.0, duty_cycle_period=10)
    x = torch.tensor([[4.0, 3.0, 2.0, 1.0]] * 2)
    layer(x)  # unit 0 wins: its duty cycle rises to 0.2, the others' stay at 0
    assert layer.boost()[1] > layer.boost()[0]
    winners = {int(layer(x)[0].nonzero()) for _ in range(10)}
    assert len(winners) >= 2  # boosted, unit 1 (3 × e^0.5 > 4 × e^0.1) wins in turn


def test_inference_uses_k_inference_without_boost_and_decay_shrinks_the_boost():
    layer = kwinners.KWinners(5, k=1, k_inference=3, boost_strength=1.0, boost_strength_factor=0.5)
    layer.eval()
    out = layer(torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]]))
    assert (out != 0).sum() == 3 and layer.duty_cycle.sum() == 0
    layer.decay_boost()
    assert layer.boost_strength == 0.5


def test_per_unit_mask_gives_every_unit_the_same_fan_in():
    model = nn.Sequential(nn.Flatten(), nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 3))
    mask = kwinners.per_unit_mask(model, 0.25, torch.Generator().manual_seed(0))
    assert mask["1.weight"].sum(1).tolist() == [5] * 8 and mask["3.weight"].sum(1).tolist() == [2] * 3
    only = kwinners.per_unit_mask(model, 0.5, layers=["1"])
    assert list(only) == ["1.weight"]


def test_noise_replaces_the_asked_fraction_of_pixels():
    x = torch.zeros(4, 1, 10, 10)
    x[:, 0, 0, 0] = 1.0  # the noise is drawn over the data's range, here [0, 1]
    noisy = kwinners.with_noise(x, 0.3, torch.Generator().manual_seed(0))
    assert ((noisy != x).flatten(1).sum(1) <= 30).all() and (noisy != x).sum() > 80
    x = torch.rand(4, 100, generator=torch.Generator().manual_seed(1))
    changed = (kwinners.with_noise(x, 0.2, torch.Generator().manual_seed(2)) != x).sum(1)
    assert changed.tolist() == [20] * 4
    assert torch.equal(kwinners.with_noise(x, 0.0), x)


@pytest.mark.parametrize("call, message", [
    (lambda: kwinners.k_winners(torch.zeros(2, 5), 0), r"k must be an int in 1\.\.5"),
    (lambda: kwinners.k_winners(torch.zeros(2, 5), 6), r"k must be an int in 1\.\.5"),
    (lambda: kwinners.KWinners(5, k=2, k_inference=9), "k_inference must be an int in 1..5"),
    (lambda: kwinners.KWinners(5, k=2)(torch.zeros(3, 4)), r"takes \(examples, 5\) inputs"),
    (lambda: kwinners.with_noise(torch.zeros(2, 3), 1.5), "fraction of the pixels"),
    (lambda: kwinners.per_unit_mask(nn.Sequential(nn.Linear(3, 2)), 0.5, layers=["7"]), "must be Linear layers"),
])
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_kwta_mlp_trains_with_its_mask_and_boost_decay(digits):
    from coursekit import train

    net, mask = kwinners.kwta_mlp(digits.input_shape, digits.num_classes, (40, 30), k_fraction=0.2,
                                  weight_density=0.5, k_inference_fraction=0.3, seed=0, boost_strength=1.0,
                                  boost_strength_factor=0.5)
    assert [type(m).__name__ for m in net] == ["Flatten", "Linear", "KWinners", "Linear", "KWinners", "Linear"]
    assert (net[2].k, net[2].k_inference, net[4].k) == (8, 12, 6)
    assert list(mask) == ["1.weight", "3.weight"] and mask["1.weight"].sum(1).tolist() == [32] * 40
    train.fit(net, digits, epochs=2, optimizer="adam", lr=1e-2, progress=False,
              hooks=[mask.hook(net), kwinners.decay_boost_hook])
    assert net[2].boost_strength == pytest.approx(0.25)  # two epochs of decay by 0.5
    assert (net[1].weight[~mask["1.weight"]] == 0).all()
    table = kwinners.noise_table({"k-WTA": net}, digits.x_test, digits.y_test, (0.0, 0.5))
    assert list(table.columns) == ["network", "noise", "test_acc"]
    assert table["noise"].tolist() == [0.0, 0.5] and table["test_acc"].between(0, 1).all()
    assert kwinners.kwta_mlp(digits.input_shape, 10, (8,), k_fraction=1.0)[1] is None  # dense weights: no mask


def test_k_winners_over_all_features_of_a_conv_output():
    layer = kwinners.KWinnersAll(0.25, 0.5)
    x = torch.randn(3, 2, 4, 4)
    assert (layer(x) != 0).flatten(1).sum(1).tolist() == [8, 8, 8]
    assert (layer.eval()(x) != 0).flatten(1).sum(1).tolist() == [16, 16, 16]
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\]"):
        kwinners.KWinnersAll(0.0)


def test_cnn_pair_shares_its_start_and_masks_the_sparse_hidden_layer():
    dense, sparse, mask = kwinners.cnn_pair((1, 12, 12), 3, channels=4, hidden=20, k_fraction=0.2,
                                            k_inference_fraction=0.3, weight_density=0.25, seed=2)
    for (name, a), b in zip(dense.named_parameters(), sparse.parameters(), strict=True):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), name
    assert set(mask) == {"4.weight"} and mask["4.weight"].sum(1).eq(16).all()  # 25 % of 4 · 4 · 4 inputs
    assert isinstance(sparse[2], kwinners.KWinnersAll) and sparse[5].k == 4 and sparse[5].k_inference == 6
    assert sparse(torch.randn(5, 1, 12, 12)).shape == (5, 3)
    with pytest.raises(ValueError, match="takes images"):
        kwinners.cnn_pair((64,), 3)
    with pytest.raises(ValueError, match="at least 6×6"):
        kwinners.cnn_pair((1, 5, 5), 3)
