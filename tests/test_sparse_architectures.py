"""Lecture 13's driver (coursekit.lectures.sparse_architectures): jobs, BatchNorm recalibration, the pruning
sweep's bookkeeping and the checks, on tiny nets."""

import pandas as pd
import pytest
import torch

from coursekit import claims, models, sparse_architectures
from coursekit.core import data as datasets

TINY = sparse_architectures.ArchitectureSettings(epochs=1, widths=(0.25, 0.5), densities=(1.0, 0.3), train_size=64,
                                                 timing_batch=8, calibration=64)


@pytest.fixture(scope="module")
def small():
    return datasets.load("digits", sizes=datasets.Sizes(train=64, val=32, test=32))


def test_jobs_train_every_block_once_and_the_pair_at_every_width():
    assert sparse_architectures.jobs(TINY) == [("standard", 0.5), ("bottleneck", 0.5), ("fire", 0.5),
                                               ("depthwise", 0.5), ("standard", 0.25), ("depthwise", 0.25)]


def test_recalibrate_sets_the_running_statistics_to_the_data(small):
    net = models.build("blocknet", small.input_shape, 10, block="standard", width=0.25)
    sparse_architectures.recalibrate(net, small.x_train, batch=16)
    stem = net[1]  # the stem's BatchNorm sees the stem conv's output
    with torch.no_grad():
        out = net[0](small.x_train)
    torch.testing.assert_close(stem.running_mean, out.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert stem.momentum == 0.1 and net.training  # the net trains on as before


def test_sweep_counts_the_weights_left_and_compare_counts_the_blocks(small):
    nets = sparse_architectures.train_nets(TINY, small, progress=False)
    comparison = sparse_architectures.compare(nets, small, TINY)
    assert comparison.index.tolist() == list(models.BLOCKS)
    assert comparison.loc["standard", "speed-up"] == pytest.approx(1.0)
    sweep = sparse_architectures.prune_sweep(nets, small, TINY)
    assert len(sweep) == len(nets) * 2
    for (block, width), net in nets.items():
        rows = sweep[(sweep["block"] == block) & (sweep["width"] == width)].set_index("density")
        total = sum(p.numel() for p in net.parameters())
        prunable = sum(p.numel() for n, p in net.named_parameters() if n.endswith("weight") and p.ndim > 1)
        assert rows.loc[1.0, "weights left"] == total
        assert rows.loc[0.3, "weights left"] == pytest.approx(total - 0.7 * prunable, rel=0.01)


def fake_sweep(compact_breaks, standard_breaks):
    rows = []
    for width in (0.25, 0.5):
        for block, breaks in (("standard", standard_breaks), ("depthwise", compact_breaks)):
            for density in (1.0, 0.5, 0.25, 0.1):
                rows.append({"block": block, "width": width, "density": density, "weights left": 100,
                             "test_acc": 0.9 if density > breaks else 0.5})
    return pd.DataFrame(rows)


def test_breaking_density_and_the_checks():
    table = sparse_architectures.breaking_density(fake_sweep(0.5, 0.25))
    assert table.set_index(["block", "width"])["breaks at density"].to_dict() == {
        ("standard", 0.25): 0.25, ("depthwise", 0.25): 0.5, ("standard", 0.5): 0.25, ("depthwise", 0.5): 0.5}
    assert sparse_architectures.breaking_density(fake_sweep(0.0, 0.0))["breaks at density"].isna().all()
    comparison = pd.DataFrame({"weights": [1000, 200, 150, 180], "MACs": [1e6, 2e5, 1e5, 2e5],
                               "test_acc": [0.95, 0.93, 0.9, 0.94]}, index=list(models.BLOCKS))
    settings = sparse_architectures.ArchitectureSettings(widths=(0.25, 0.5), densities=(1.0, 0.5, 0.25, 0.1))
    claims.check("fake", sparse_architectures.headline(comparison, fake_sweep(0.5, 0.25), settings))
    with pytest.raises(AssertionError, match="accuracy retained under pruning"):
        claims.check("fake", sparse_architectures.headline(comparison, fake_sweep(0.25, 0.5), settings))


@pytest.mark.parametrize("change, message", [
    ({"compact": "standard"}, "compact must be one of"), ({"width": 2.0}, "include width=2.0"),
    ({"densities": (0.5, 0.25)}, "include 1.0"), ({"dataset": "cifar"}, "dataset must be one of"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        sparse_architectures.ArchitectureSettings(**{**TINY.__dict__, **change})
