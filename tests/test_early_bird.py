import dataclasses

import pandas as pd
import pytest
import torch

from coursekit import claims, data, early_bird, models, slimming


def _masks(*rows):
    return [{"0": torch.tensor(r, dtype=torch.bool)} for r in rows]


def test_bn_scales_are_keyed_by_conv():
    net = models.build("vgg_bn", (1, 8, 8), 3, cfg=(4, "M", 6))
    scales = slimming.bn_scales(net)
    assert {k: v.shape[0] for k, v in scales.items()} == {"0": 4, "4": 6}


def test_global_threshold_and_one_channel_per_layer():
    scales = {"a": torch.tensor([0.1, 0.2]), "b": torch.tensor([5.0, 4.0, 3.0, 2.0])}
    masks = slimming.channel_masks(scales, 0.5, scope="global")
    assert masks["b"].tolist() == [True, True, True, False]
    assert masks["a"].tolist() == [False, True]  # all below threshold, the largest survives
    assert sum(int(m.sum()) for m in slimming.channel_masks(scales, 0.0, "global").values()) == 6
    layerwise = slimming.channel_masks(scales, 0.5)
    assert layerwise["a"].tolist() == [False, True] and layerwise["b"].tolist() == [True, True, False, False]


def test_distance_and_stopping_rule():
    masks = _masks([1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1])
    assert slimming.mask_distance(masks[0], masks[1]) == 0.5
    d = slimming.distance_matrix(masks)
    assert d.shape == (6, 6) and d.loc[2, 3] == 0 and d.loc[1, 2] == 0.5 and (d.values == d.values.T).all()
    assert slimming.early_bird_epoch(masks, epsilon=0.3, window=2) == 4   # ≤ 0.25 from epochs 2 and 3
    assert slimming.early_bird_epoch(masks, epsilon=0.1, window=2) == 6   # equal to epochs 4 and 5
    assert slimming.early_bird_epoch(masks, epsilon=0.1, window=5) is None


def test_slimming_penalty_is_l1_of_bn_scales():
    net = models.build("vgg_bn", (1, 8, 8), 3, cfg=(4, "M", 6))
    assert slimming.slimming_penalty(0.5)(net).item() == pytest.approx(0.5 * 10)  # γ starts at 1


def test_compare_tickets_on_digits(digits):
    settings = early_bird.EarlyBirdSettings(epochs=4, window=1, epsilon=0.5, retrain_epochs=1, width=0.5)
    table, found = early_bird.compare_tickets(settings, digits, progress=False)
    table = table.set_index("ticket")
    assert list(table.index) == ["dense", "early-bird", "late"]
    assert table.loc["early-bird", "drawn_at"] <= 4 and table.loc["late", "drawn_at"] == 4
    assert table.loc["late", "params"] < table.loc["dense", "params"]
    assert table.loc["late", "flops"] < table.loc["dense", "flops"]
    assert table.loc["early-bird", "cost"] <= table.loc["late", "cost"]
    assert len(found.scales) == 4 and found.network_at(2) is not found.model


@pytest.mark.headline
@pytest.mark.parametrize("seed", claims.seeds(default=(1,)))
def test_early_bird_is_drawn_in_the_first_half(seed):
    """Lecture 05's headline for a seed the notebook does not run (``make margins`` runs seeds 0–4)."""
    fashion = data.load("fashion_mnist", "ci")
    settings = dataclasses.replace(early_bird.PRESETS["ci"], seed=seed)
    table = early_bird.compare_tickets(settings, fashion, progress=False)[0]
    claims.check("test_early_bird", early_bird.headline(table, settings))


def test_final_accuracy_averages_the_last_three_epochs():
    history = pd.DataFrame({"test_acc": [0.1, 0.5, 0.6, 0.7, 0.8]})
    assert early_bird.final_accuracy(history) == pytest.approx(0.7)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: slimming.bn_scales(models.build("conv2", (1, 8, 8), 3)), "no Conv2d followed by an affine"),
    (lambda: slimming.early_bird_epoch(_masks([1]), epsilon=0), r"epsilon must lie in \(0, 1\]"),
    (lambda: slimming.early_bird_epoch(_masks([1]), epsilon=5.0), r"epsilon must lie in \(0, 1\]"),
    (lambda: early_bird.EarlyBirdSettings(epsilon=5.0), r"epsilon must lie in \(0, 1\]"),
    (lambda: slimming.mask_distance({}, {}), "at least one"),
    (lambda: slimming.channel_masks({"a": torch.tensor([float("nan"), 1.0])}, 0.5), r"scales of layers \[.a.\] contain NaN"),
    (lambda: slimming.early_bird_epoch(_masks([1]), window=0), "window must be a positive int"),
    (lambda: slimming.channel_masks({"a": torch.ones(2)}, 1.0), r"ratio must lie in \[0, 1\)"),
    (lambda: slimming.channel_masks({"a": torch.ones(2)}, 0.5, "random"), "unknown scope 'random'"),
    (lambda: slimming.mask_distance(_masks([1])[0], {"1": torch.ones(1, dtype=torch.bool)}), "same layers"),
])
def test_bad_early_bird_requests(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_search_refuses_a_network_without_batchnorm(digits):
    settings = early_bird.EarlyBirdSettings(model="conv2", epochs=1)
    with pytest.raises(ValueError, match="BatchNorm"):
        early_bird.search(settings, digits, progress=False)
