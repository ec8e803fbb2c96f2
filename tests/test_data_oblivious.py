import copy
import dataclasses

import pytest
import torch
from torch import nn

from conftest import fashion_headline
from coursekit import claims, data, data_oblivious, lowrank, models, structured, why_sparsity

TINY = data_oblivious.ObliviousSettings(epochs=2, budgets=(0.5,), finetune_epochs=1, filter_amounts=(0.5,),
                                  rank_fractions=(0.5,), latency_batch=16, repeats=1, deep_density=0.3, bits=3)


@pytest.fixture(scope="module")
def dense(digits):
    return data_oblivious.train_dense(TINY, digits, progress=False)


def _weights(model):
    return sum(int(torch.count_nonzero(m.weight)) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d)))


def test_presets_cover_every_scale_with_budgets_in_range():
    assert set(data_oblivious.PRESETS) == {"ci", "cpu", "gpu"}
    for settings in data_oblivious.PRESETS.values():
        assert all(0 < b < 1 for b in settings.budgets) and list(settings.budgets) == sorted(settings.budgets)[::-1]
        assert all(0 < a < 1 for a in settings.filter_amounts) and all(0 < f < 1 for f in settings.rank_fractions)


@pytest.mark.parametrize("scale", ["ci", "cpu", "gpu"])
def test_every_preset_budget_is_reachable_by_every_method(scale):
    """A preset whose smallest budget one method cannot meet would fail after minutes of training."""
    settings = data_oblivious.PRESETS[scale]
    net = models.build(settings.model, (1, 28, 28), 10, width=settings.width)
    assert 0 < data_oblivious.filter_amount_for(net, min(settings.budgets)) < 1
    assert 0 < data_oblivious.low_rank_fraction_for(net, min(settings.budgets)) < 1


@pytest.mark.trained
@pytest.mark.parametrize("seed", claims.seeds(default=(0,)))
def test_dense_network_learns_digits(digits, seed):
    dense = data_oblivious.train_dense(dataclasses.replace(TINY, seed=seed), digits, progress=False)
    assert not dense.model.training
    claims.check("test_data_oblivious", [claims.Claim("dense VGG's test accuracy on digits", dense.test_acc, ">", 0.5)])


def test_filter_amount_is_the_least_pruning_within_the_budget():
    net = models.build("vgg_bn", (1, 8, 8), 10, width=0.5)
    total = _weights(net)
    a = data_oblivious.filter_amount_for(net, 0.3)
    assert _weights(structured.prune_filters(net, a)) <= 0.3 * total
    assert _weights(structured.prune_filters(net, a - 0.01)) > 0.3 * total
    assert data_oblivious.filter_amount_for(net, 1.0) == 0.0


def test_low_rank_fraction_is_the_most_rank_within_the_budget():
    net = models.build("vgg_bn", (1, 8, 8), 10, width=0.5)
    total, layers = _weights(net), data_oblivious.low_rank_layers(net)
    assert layers == ["4", "8"]  # not the first conv, nor the classifier
    f = data_oblivious.low_rank_fraction_for(net, 0.5)
    assert _weights(lowrank.low_rank(net, param_fraction=f, layers=layers)) <= 0.5 * total
    assert _weights(lowrank.low_rank(net, param_fraction=f + 0.01, layers=layers)) > 0.5 * total


@pytest.mark.parametrize("method", data_oblivious.METHODS)
def test_every_method_meets_the_budget_and_only_structure_shrinks_the_dense_work(method):
    net = models.build("vgg_bn", (1, 8, 8), 10, width=0.5)
    pruned, mask = data_oblivious.prune(net, method, 0.4)
    assert _weights(pruned) <= 0.4 * _weights(net) + 1
    dense_work = structured.count_flops(net, (1, 8, 8))
    if method == "magnitude":
        assert mask is not None and structured.count_parameters(pruned) == structured.count_parameters(net)
        assert structured.count_flops(pruned, (1, 8, 8)) == dense_work  # the zeros are still multiplied
        assert structured.count_flops(pruned, (1, 8, 8), skip_zeros=True) < 0.5 * dense_work
    else:
        assert mask is None and structured.count_parameters(pruned) < 0.5 * structured.count_parameters(net)
        assert structured.count_flops(pruned, (1, 8, 8)) < 0.6 * dense_work
    assert next(net.parameters()).count_nonzero() == next(net.parameters()).numel()  # original untouched


@pytest.mark.parametrize(("call", "message"), [
    (lambda net: data_oblivious.prune(net, "random", 0.5), r"unknown method 'random'; expected one of \('magnitude'"),
    (lambda net: data_oblivious.prune(net, "filters", 0.0), r"budget must lie in \(0, 1\], got 0.0"),
    (lambda net: data_oblivious.prune(net, "magnitude", 1.5), r"budget must lie in \(0, 1\]"),
    (lambda net: data_oblivious.filter_amount_for(net, 0.001), "filter pruning cannot reach 0.1%"),
    (lambda net: data_oblivious.low_rank_fraction_for(net, 0.001), "low rank cannot reach 0.1%"),
])
def test_bad_requests(call, message):
    with pytest.raises(ValueError, match=message):
        call(models.build("vgg_bn", (1, 8, 8), 10, width=0.5))


def test_compare_methods_table(digits, dense):
    table = data_oblivious.compare_methods(TINY, digits, dense, progress=False)
    assert list(table["method"]) == ["dense", "magnitude", "filters", "low rank"]
    assert {"params", "flops", "dense_kernel_flops", "flop_reduction", "test_acc", "test_acc_ft", "latency_s",
            "speedup"} <= set(table.columns)
    rows = table.set_index("method")
    assert rows.loc["magnitude", "dense_kernel_flops"] == rows.loc["dense", "dense_kernel_flops"]
    assert rows.loc["filters", "dense_kernel_flops"] < rows.loc["dense", "dense_kernel_flops"]
    assert (rows.drop("dense")["weights"] <= 0.5 * rows.loc["dense", "weights"] + 1).all()
    assert (rows.drop("dense")["flop_reduction"] > 1.5).all() and rows.loc["dense", "speedup"] == 1.0
    assert torch.all(next(dense.model.parameters()) != 0)  # the dense network is not pruned in place


def test_knob_grid_includes_the_dense_ends(digits, dense):
    grid = data_oblivious.knob_grid(TINY, digits, dense, progress=False)
    assert list(zip(grid["method"], grid["knob"], strict=True)) == [
        ("filters", 0.0), ("filters", 0.5), ("low rank", 0.5), ("low rank", 1.0)]
    ends = grid[grid["knob"].isin([0.0, 1.0])]
    assert (ends["test_acc"] == dense.test_acc).all()
    assert (ends["params"] == structured.count_parameters(dense.model)).all()
    assert (grid.loc[~grid["knob"].isin([0.0, 1.0]), "params"] < ends["params"].iloc[0]).all()


def test_deep_compression_stages_shrink_and_huffman_is_lossless(digits, dense):
    before = copy.deepcopy(dense.model.state_dict())
    table = data_oblivious.deep_compression_stages(TINY, digits, dense)
    assert list(table.columns) == ["stage", "bytes", "ratio", "test_acc"] and len(table) == 5
    assert table["bytes"].is_monotonic_decreasing and table["ratio"].iloc[0] == 1.0
    assert table["ratio"].iloc[-1] > table["ratio"].iloc[2] > 2
    assert table["test_acc"].iloc[-1] == table["test_acc"].iloc[-2]  # decoded from Huffman = quantised
    assert all(torch.equal(v, dense.model.state_dict()[k]) for k, v in before.items())


def test_synapse_density_is_the_published_table():
    table = why_sparsity.synapse_density()
    adult = table[(table["age_from"] == 16) & (table["age_to"] == 72)].iloc[0]
    assert (adult["density"], adult["sem"], adult["approximate"]) == (11.05, 0.41, False)
    peak = table.loc[table["density"].idxmax()]
    assert peak["approximate"] and peak["density"] == pytest.approx(1.5 * 11.05)
    assert table["approximate"].sum() == 2 and "Huttenlocher" in why_sparsity.HUTTENLOCHER_1979


@fashion_headline
def test_lecture_06_headlines(seed):
    """Lecture 06's headline for a seed the notebook does not run: fine-tuning recovers what pruning
    lost, a mild weight mask costs little once fine-tuned, filter pruning is measurably faster than a
    weight mask, and Deep Compression's shared weights cost little."""
    ds = data.load("fashion_mnist", "ci")
    settings = dataclasses.replace(data_oblivious.PRESETS["ci"], seed=seed)
    dense = data_oblivious.train_dense(settings, ds, progress=False)
    table = data_oblivious.compare_methods(settings, ds, dense, progress=False)
    stages = data_oblivious.deep_compression_stages(settings, ds, dense)
    claims.check("test_data_oblivious", data_oblivious.headline(table, dense, stages))


@pytest.mark.parametrize(("change", "message"), [
    ({"budgets": (1.5,)}, r"ObliviousSettings.budgets must be a non-empty tuple of fractions in \(0, 1\)"),
    ({"budgets": ()}, "budgets must be a non-empty tuple"),
    ({"filter_amounts": (1.0,)}, "filter_amounts must be"),
    ({"rank_fractions": (0.0,)}, r"rank_fractions must be a non-empty tuple of fractions in \(0, 1\]"),
    ({"finetune_epochs": 0}, "finetune_epochs, latency_batch and repeats >= 1"),
    ({"latency_batch": 0}, "latency_batch"),
    ({"finetune_lr": -1.0}, "finetune_lr > 0"),
    ({"bits": 20}, r"bits must be an int in 1\.\.16, got 20"),
])
def test_bad_settings_are_refused_before_training(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(data_oblivious.PRESETS["ci"], **change)


@pytest.mark.parametrize("resolution", [0, 2, True])
def test_a_bad_search_resolution_is_refused(resolution):
    net = models.build("vgg_bn", (1, 8, 8), 10, width=0.5)
    for search in (data_oblivious.filter_amount_for, data_oblivious.low_rank_fraction_for):
        with pytest.raises(ValueError, match=r"resolution must lie in \(0, 1\)"):
            search(net, 0.5, resolution=resolution)
