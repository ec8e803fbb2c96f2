import dataclasses
import math

import pandas as pd
import pytest
import torch

from coursekit import claims, mutual_info
from coursekit import information_plane as info


def test_twelve_bit_task_is_balanced_and_complete():
    d = info.twelve_bit_task()
    x = torch.cat([d.x_train, d.x_val])
    assert x.shape == (4096, 12) and torch.unique(x, dim=0).shape[0] == 4096
    assert abs(torch.cat([d.y_train, d.y_val]).float().mean().item() - 0.5) < 0.05
    assert len(d.y_train) == round(0.85 * 4096)


def test_binned_mi_on_hand_made_layers():
    y = torch.tensor([0, 0, 1, 1])
    copy_of_label = torch.tensor([[0.0], [0.1], [0.9], [1.0]])
    assert mutual_info.binned_mi(copy_of_label, y, bins=2) == pytest.approx((1.0, 1.0))
    distinct = torch.tensor([[0.0], [0.3], [0.6], [0.99]])
    assert mutual_info.binned_mi(distinct, y, bins=4) == pytest.approx((2.0, 1.0))
    constant = torch.zeros(4, 3)
    assert mutual_info.binned_mi(constant, y, bins=30, limits=(-1, 1)) == pytest.approx((0.0, 0.0))


def test_unit_label_information_scores_each_unit_alone():
    y = torch.tensor([0, 1] * 8)
    t = torch.stack([y.float(), torch.ones(16), torch.arange(16.0) % 4 // 2], dim=1)  # label, constant, unrelated
    assert mutual_info.unit_label_information(t, y, bins=2).tolist() == pytest.approx([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="one label per row"):
        mutual_info.unit_label_information(t, y[:3])


def test_kde_mi_limits():
    y = torch.tensor([0, 1] * 50)
    far_apart = torch.arange(100.0)[:, None] * 100
    ixt, iyt = mutual_info.kde_mi(far_apart, y, noise_var=0.1)
    assert ixt == pytest.approx(math.log2(100)) and iyt == pytest.approx(1.0)
    ixt, iyt = mutual_info.kde_mi(torch.zeros(100, 2), y, noise_var=0.1)
    assert ixt == pytest.approx(0.0, abs=1e-9) and iyt == pytest.approx(0.0, abs=1e-9)


def test_information_plane_rows():
    settings = info.InfoPlaneSettings(epochs=3, snapshots=3, kde_examples=128)
    table, fisher = info.information_plane(settings, progress=False)
    assert set(fisher["epoch"]) == set(table["epoch"]) and set(fisher["kind"]) == {"true", "empirical"}
    layers = ["layer 1", "layer 2", "layer 3", "layer 4", "layer 5", "output"]
    assert sorted(table["layer"].unique()) == layers
    assert set(table["estimator"]) == {"binned", "kde"} and 0 in set(table["epoch"])
    binned = table[table["estimator"] == "binned"]
    assert (binned["I_XT"] <= 12 + 1e-9).all() and (binned["I_YT"] <= binned["I_XT"] + 1e-9).all()


def test_compression_is_what_each_layer_loses_after_its_peak():
    rows = [{"epoch": e, "layer": layer, "estimator": "binned", "activation": "tanh", "I_XT": v, "I_YT": 0.0}
            for layer, values in (("layer 1", [2.0, 6.0, 4.5]), ("layer 2", [1.0, 2.0, 3.0]))
            for e, v in zip((0, 10, 100), values, strict=True)]
    table = info.compression(pd.DataFrame(rows))
    assert table.loc[("tanh", "binned"), "layer 1"] == 1.5 and table.loc[("tanh", "binned"), "layer 2"] == 0
    said = info.describe_compression(table)
    assert "layer 1 (1.5 bits)" in said and "layer 2" not in said


@pytest.mark.parametrize(("call", "message"), [
    (lambda: mutual_info.binned_mi(torch.zeros(4, 2), torch.zeros(4), bins=1), "bins must be an int ≥ 2"),
    (lambda: mutual_info.binned_mi(torch.zeros(4), torch.zeros(4)), "activations must be"),
    (lambda: mutual_info.kde_mi(torch.zeros(4, 2), torch.zeros(4), noise_var=0), "noise_var must be positive"),
    (lambda: info.twelve_bit_task(train_fraction=1.0), "train_fraction"),
])
def test_bad_information_requests(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.headline
@pytest.mark.parametrize("seed", claims.seeds(default=(1,)))
def test_fisher_rises_then_falls_and_the_output_learns(seed):
    """Lecture 04's 12-bit checks for a seed the notebook does not run: in both networks the trace of
    the true Fisher grows tenfold, then ends below its peak; the output layer's I(Y;T) grows by 0.5 bit."""
    runs = [info.information_plane(dataclasses.replace(info.PRESETS["ci"], activation=act, seed=seed,
                                                       kde_examples=64), progress=False)
            for act in ("tanh", "relu")]
    planes, fisher = (pd.concat(parts, ignore_index=True) for parts in zip(*runs, strict=True))
    claims.check("test_information_plane", info.headline(planes, fisher))


@pytest.mark.parametrize(("call", "message"), [
    (lambda t, y: mutual_info.binned_mi(t, y, 30, limits=(1.0, -1.0)), r"limits must be \(low, high\) with low < high"),
    (lambda t, y: mutual_info.binned_mi(t, y[:50]), "need one label per row of t: t has 100 rows"),
    (lambda t, y: mutual_info.kde_mi(t, y[:50]), "need one label per row of t"),
    (lambda t, y: mutual_info.binned_mi(t * float("nan"), y), "activations contain NaN"),
])
def test_estimators_refuse_what_would_read_as_zero_bits(call, message):
    t, y = torch.randn(100, 3), torch.randint(0, 2, (100,))
    with pytest.raises(ValueError, match=message):
        call(t, y)


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "lenet300_100"}, "the information plane trains an 'mlp'"),
    ({"hidden": (0,)}, "hidden must list positive layer widths"),
    ({"bins": 1}, "bins >= 2"),
    ({"noise_var": 0.0}, "noise_var > 0"),
    ({"kde_examples": 0}, "kde_examples >= 2"),
    ({"activation": "gelu"}, "unknown activation 'gelu'"),
    ({"fisher_examples": 0}, "fisher_examples must be a positive int or None"),
])
def test_bad_information_plane_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(info.PRESETS["ci"], **change)
    with pytest.raises(ValueError, match="train_fraction"):
        info.twelve_bit_task(train_fraction=0.99999)
