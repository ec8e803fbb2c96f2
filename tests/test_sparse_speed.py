import math

import pandas as pd
import pytest
import torch
from torch import nn

from coursekit import compress, models, sparse_speed, structured, why_sparsity


def test_timing_table_and_break_even():
    table = sparse_speed.time_sparse_matmul((0.05, 0.5), out_features=64, in_features=64, batch=8,
                                            repeats=3, number=2)
    assert list(table.columns) == ["density", "dense_s", "csr_s", "structured_s", "csr_speedup", "csr_speedup_lo",
                                   "csr_speedup_hi", "structured_speedup", "structured_speedup_lo",
                                   "structured_speedup_hi"]
    assert (table.drop(columns="density") > 0).all().all()
    for v in ("csr", "structured"):  # the median lies within the spread over repeats
        assert (table[f"{v}_speedup_lo"] <= table[f"{v}_speedup"]).all()
        assert (table[f"{v}_speedup"] <= table[f"{v}_speedup_hi"]).all()
    with pytest.raises(ValueError, match=r"densities must lie in \(0, 1\]"):
        sparse_speed.time_sparse_matmul((0.0, 0.5))


def test_timing_runs_on_one_thread_and_restores_the_count():
    """The kernels run inside runtime.one_thread(); the caller's thread count is left as it was."""
    seen = []
    threads = torch.get_num_threads()
    sparse_speed.time_interleaved({"probe": lambda: seen.append(torch.get_num_threads())}, repeats=1, number=1)
    assert seen == [threads, threads]  # time_interleaved itself changes nothing
    sparse_speed.time_sparse_matmul((0.5,), 8, 8, 2, repeats=1, number=1)
    assert torch.get_num_threads() == threads


def test_time_interleaved_runs_each_call_warmup_plus_repeats_times_number():
    counts = {"a": 0, "b": 0}

    def bump(name):
        counts[name] += 1

    times = sparse_speed.time_interleaved({"a": lambda: bump("a"), "b": lambda: bump("b")}, repeats=4, number=3)
    assert counts == {"a": 1 + 12, "b": 1 + 12}
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4}
    with pytest.raises(ValueError, match="positive ints"):
        sparse_speed.time_interleaved({"a": lambda: None}, repeats=0)
    with pytest.raises(ValueError, match="at least one callable"):
        sparse_speed.time_interleaved({})


def test_paired_ratio_is_the_median_of_per_repeat_ratios():
    """A slow phase (repeat 3) hits both; the paired ratio stays 2 where the ratio of medians would not."""
    assert sparse_speed.paired_ratio([2.0, 2.0, 20.0], [1.0, 1.0, 10.0]) == 2.0
    assert sparse_speed.ratio_spread([2.0, 3.0, 20.0], [1.0, 1.0, 10.0]) == (2.0, 3.0)


def test_random_pruned_has_exactly_the_requested_nonzeros():
    gen = torch.Generator().manual_seed(0)
    w = sparse_speed.random_pruned(30, 40, 0.1, gen)
    assert w.shape == (30, 40) and int(torch.count_nonzero(w)) == 120
    assert int(torch.count_nonzero(sparse_speed.random_pruned(3, 3, 1e-6, gen))) == 1  # never empty


@pytest.mark.parametrize(("speedups", "expected"), [
    ([4.0, 2.0, 0.5], 0.1 * math.sqrt(10)),  # crosses 1 halfway (in logs) between 0.1 and 1
    ([0.5, 0.4, 0.3], None),                 # CSR never wins here
    ([4.0, 3.0, 2.0], None),                 # CSR always wins here
])
def test_break_even_interpolates_the_crossing(speedups, expected):
    table = pd.DataFrame({"density": [1.0, 0.01, 0.1], "csr_speedup": [speedups[2], *speedups[:2]]})
    found = sparse_speed.break_even(table)
    assert found == (pytest.approx(expected) if expected is not None else None)


def test_measure_latency_pairs_every_network_with_the_baseline():
    net = models.build("vgg_bn", (1, 8, 8), 10, width=0.5).train()
    table = sparse_speed.measure_latency({"dense": net, "half": structured.prune_filters(net, 0.5)},
                                     torch.randn(8, 1, 8, 8), repeats=3)
    assert list(table.index) == ["dense", "half"]
    assert list(table.columns) == ["latency_s", "speedup", "speedup_lo", "speedup_hi"]
    assert table.loc["dense", "speedup"] == 1.0 and (table["latency_s"] > 0).all()
    assert (table["speedup_lo"] <= table["speedup"]).all() and (table["speedup"] <= table["speedup_hi"]).all()
    assert net.training  # the mode is restored
    with pytest.raises(ValueError, match="no network named 'dense'"):
        sparse_speed.measure_latency({"a": net}, torch.zeros(1, 1, 8, 8))


def test_time_by_layer_type_counts_macs_where_count_flops_does():
    net = models.build("vgg_bn", (1, 8, 8), 10, width=0.5)
    table = sparse_speed.time_by_layer_type(net, torch.randn(4, 1, 8, 8), repeats=2).set_index("layer type")
    assert {"Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Linear"} <= set(table.index)
    assert table["time_share"].sum() == pytest.approx(1.0) and table["flop_share"].sum() == pytest.approx(1.0)
    convs = structured.count_flops(nn.Sequential(*list(net)[:-1]), (1, 8, 8))  # everything but the Linear
    assert table.loc["Conv2d", "flop_share"] == pytest.approx(convs / structured.count_flops(net, (1, 8, 8)))
    assert table.loc["MaxPool2d", "flop_share"] == 0 and net.training


def test_storage_bytes_match_the_formats():
    """Long form, one row per (density, format); CSR bytes are those of CSR.encode on the same matrix."""
    table = why_sparsity.storage_bytes(64, (0.1, 1.0), bits=3, index_bits=4, seed=1)
    assert list(table.columns) == ["size", "density", "format", "bytes", "ratio", "max_error"]
    assert len(table) == 2 * 7 and (table["size"] == 64).all()
    rows = table.set_index(["density", "format"])
    assert rows.loc[(1.0, "dense"), "bytes"] == 4 * 64 * 64
    gen = torch.Generator().manual_seed(1)
    w = sparse_speed.random_pruned(64, 64, 0.1, gen)
    assert rows.loc[(0.1, "csr"), "bytes"] == compress.CSR.encode(w).nbytes
    assert rows.loc[(0.1, "csr"), "bytes"] < rows.loc[(0.1, "dense"), "bytes"] < rows.loc[(1.0, "csr"), "bytes"]


def test_layer_costs_grid_covers_every_size_and_density():
    settings = why_sparsity.SpeedSettings(sizes=(16, 32), storage_sizes=(16,), densities=(0.1, 1.0), batch=4,
                                          repeats=1, number=1)
    storage, timing = why_sparsity.layer_costs(settings)
    assert sorted(set(zip(timing["size"], timing["density"], strict=True))) == [
        (16, 0.1), (16, 1.0), (32, 0.1), (32, 1.0)]
    assert set(storage["size"]) == {16} and set(storage["density"]) == {0.1, 1.0}


def test_presets_cover_every_scale():
    assert set(why_sparsity.PRESETS) == {"ci", "cpu", "gpu"}
    ci = why_sparsity.PRESETS["ci"]
    assert set(ci.storage_sizes) <= set(ci.sizes) and max(ci.densities) == 1.0


@pytest.mark.parametrize(("call", "message"), [
    (lambda: sparse_speed.random_pruned(4, 4, 1.5, torch.Generator()), r"densities must lie in \(0, 1\], got \(1.5,\)"),
    (lambda: sparse_speed.random_pruned(4, 4, 0.0, torch.Generator()), r"got \(0.0,\)"),
    (lambda: why_sparsity.storage_bytes(8, 0.5), "densities must be a list of numbers"),
    (lambda: sparse_speed.measure_latency({"dense": nn.Linear(4, 2)}, torch.randn(0, 4)),
     "need at least one example in x"),
    (lambda: sparse_speed.time_by_layer_type(nn.Sequential(nn.Linear(4, 2)), torch.randn(3, 4), repeats=0),
     "need repeats >= 1"),
])
def test_bad_timing_requests_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
