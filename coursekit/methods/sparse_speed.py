"""What a pruned layer costs to run: dense vs ``torch.sparse`` CSR vs a physically smaller layer.

A mask saves nothing by itself: a dense kernel multiplies the zeros too. Time is only
saved when the zeros are skipped, by a **sparse kernel** (CSR: row pointers, column
indices, values; see :mod:`coursekit.methods.compress`) or by **structure** (filter pruning
leaves a smaller dense matrix, :mod:`coursekit.methods.structured`). Sparse kernels pay for
their indices in memory traffic and irregular access, so they win only below some
density; :func:`time_sparse_matmul` measures the three side by side and
:func:`break_even` finds that density on this machine.

``benchmarks/sparse_formats.py`` measured, for a 2048 × 2048 layer and a batch of 64 on
one CPU thread, CSR 13× faster than dense at 1 % density, 2× at 10 %, 2.4× slower at
50 % (break-even near 20 %), while the layer with half the rows was 2× faster (see
``docs/performance.md`` for the latest figures).

:func:`measure_latency` times whole networks side by side the same way, and
:func:`time_by_layer_type` shows where a forward pass spends its time (lecture 06).
Lecture 01's grid of them is :func:`coursekit.lectures.why_sparsity.layer_costs`.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from coursekit.core import runtime
from coursekit.methods import compress

VARIANTS = ("dense", "csr", "structured")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_interleaved(calls: Mapping[str, Callable[[], object]], repeats: int = 7, number: int = 3,
                     device: str | torch.device = "cpu") -> dict[str, list[float]]:
    """Seconds per call of each callable: every repeat times each one in turn (``number`` calls each).

    Interleaving makes slow phases of a shared machine hit every callable alike, so the
    ratio of two callables *within a repeat* is far steadier than either time; compare
    medians of those paired ratios (:func:`paired_ratio`), not times from different runs.
    Each callable runs once untimed first (warm-up). CUDA work is synchronised.

    Returns:
        name → one time per repeat (seconds per call).
    """
    if not calls:
        raise ValueError("time_interleaved needs at least one callable")
    if not (isinstance(repeats, int) and repeats >= 1 and isinstance(number, int) and number >= 1):
        raise ValueError(f"repeats and number must be positive ints, got {repeats!r} and {number!r}")
    device = torch.device(device)
    for fn in calls.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(number):
                fn()
            _sync(device)
            times[name].append((time.perf_counter() - start) / number)
    return times


def paired_ratio(baseline: Sequence[float], other: Sequence[float]) -> float:
    """Median over repeats of ``baseline / other`` (> 1: ``other`` is faster)."""
    return statistics.median(a / b for a, b in zip(baseline, other, strict=True))


def ratio_spread(baseline: Sequence[float], other: Sequence[float]) -> tuple[float, float]:
    """Smallest and largest ``baseline / other`` over the repeats: how far a busy machine moved the ratio."""
    ratios = [a / b for a, b in zip(baseline, other, strict=True)]
    return min(ratios), max(ratios)


def check_densities(densities: Sequence[float]) -> None:
    if isinstance(densities, (str, numbers.Number)):
        raise ValueError(f"densities must be a list of numbers in (0, 1], got {densities!r}")
    bad = [d for d in densities if isinstance(d, bool) or not isinstance(d, numbers.Real) or not 0 < d <= 1]
    if bad or not densities:
        raise ValueError(f"densities must lie in (0, 1], got {tuple(densities)}")


def random_pruned(out_features: int, in_features: int, density: float,
                  generator: torch.Generator) -> torch.Tensor:
    """A Gaussian ``out × in`` matrix with exactly ``round(density·n)`` (at least 1) nonzeros at random places."""
    check_densities([density])
    w = torch.randn(out_features, in_features, generator=generator)
    keep = torch.zeros(w.numel(), dtype=torch.bool)
    keep[torch.randperm(w.numel(), generator=generator)[:max(1, round(density * w.numel()))]] = True
    return w * keep.reshape(w.shape)


@torch.no_grad()
def time_sparse_matmul(densities: Sequence[float] = (0.01, 0.1, 0.5), out_features: int = 2048,
                       in_features: int = 2048, batch: int = 64, repeats: int = 7, number: int = 3,
                       device: str | torch.device = "cpu", seed: int = 0,
                       single_thread: bool = True) -> pd.DataFrame:
    """Time ``W @ X`` for a pruned ``W`` stored three ways, side by side, per density.

    * ``dense``: ``W`` as a dense tensor, zeros included (what masked training runs);
    * ``csr``: ``W.to_sparse_csr() @ X`` (unstructured sparsity, ``torch.sparse``);
    * ``structured``: a dense layer with only ``density × out_features`` rows, what
      filter pruning (:mod:`coursekit.methods.structured`) builds.

    Every (density, variant) block is timed in turn within each repeat
    (:func:`time_interleaved`); speed-ups are medians over repeats of the paired ratio
    ``dense time / variant time`` (> 1: faster than dense).

    Args:
        single_thread: on the CPU, run the kernels on one thread
            (:func:`coursekit.core.runtime.one_thread`). Where other programs keep the cores
            busy, multi-threaded kernels wait for them and the table measures the
            scheduler, not the kernels; ``False`` uses torch's current thread count.

    Returns:
        per density: median seconds per call of each variant, ``csr_speedup`` and
        ``structured_speedup``, and each speed-up's spread over the repeats (``…_speedup_lo``,
        ``…_speedup_hi``: :func:`ratio_spread`).
    """
    check_densities(densities)
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(in_features, batch, generator=gen).to(device)
    calls = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        for d in densities:
            w = random_pruned(out_features, in_features, d, gen).to(device)
            csr, small = w.to_sparse_csr(), w[:max(1, round(d * out_features))].clone()
            calls |= {(d, "dense"): lambda w=w: w @ x, (d, "csr"): lambda c=csr: c @ x,
                      (d, "structured"): lambda s=small: s @ x}
        one = runtime.one_thread(device) if single_thread else contextlib.nullcontext()
        with one:
            times = time_interleaved(calls, repeats, number, device)
    rows = []
    for d in densities:
        row = {"density": d} | {f"{v}_s": statistics.median(times[d, v]) for v in VARIANTS}
        for v in VARIANTS[1:]:
            row[f"{v}_speedup"] = paired_ratio(times[d, "dense"], times[d, v])
            row[f"{v}_speedup_lo"], row[f"{v}_speedup_hi"] = ratio_spread(times[d, "dense"], times[d, v])
        rows.append(row)
    return pd.DataFrame(rows)


def break_even(table: pd.DataFrame) -> float | None:
    """The density below which CSR beats dense, from :func:`time_sparse_matmul`'s table.

    Finds the first pair of neighbouring densities where ``csr_speedup`` falls from ≥ 1 to
    < 1 and interpolates linearly in (log density, log speed-up). ``None`` when the
    speed-up does not cross 1 among the densities measured (CSR always or never wins
    there): widen the range.
    """
    t = table.sort_values("density")
    d, s = t["density"].to_numpy(float), t["csr_speedup"].to_numpy(float)
    for i in range(len(d) - 1):
        if s[i] >= 1 > s[i + 1]:
            frac = math.log(s[i]) / (math.log(s[i]) - math.log(s[i + 1]))
            return float(math.exp(math.log(d[i]) + frac * (math.log(d[i + 1]) - math.log(d[i]))))
    return None


def csr_bytes(rows: int, cols: int, nnz: int) -> int:
    """Bytes of a ``rows × cols`` matrix with ``nnz`` nonzeros in :class:`coursekit.methods.compress.CSR`.

    ``(rows + 1)`` row pointers of the width that holds ``nnz``, ``nnz`` column indices of
    the width that holds ``cols − 1``, and ``nnz`` fp32 values.
    """
    if not 1 <= nnz <= rows * cols:
        raise ValueError(f"nnz must lie in 1..{rows * cols} for a {rows}×{cols} matrix (CSR stores no empty "
                         f"layer), got {nnz}")
    indptr, indices = compress.index_dtype(nnz).itemsize, compress.index_dtype(cols - 1).itemsize
    return (rows + 1) * indptr + nnz * (indices + compress.FLOAT_BYTES)


def csr_storage_break_even(rows: int, cols: int) -> float | None:
    """The largest density at which CSR takes fewer bytes than dense fp32 (``None``: never).

    CSR pays ``4 + b`` bytes per nonzero (value and column index of ``b`` bytes) where dense
    pays 4 per entry, so it wins below about ``4 / (4 + b)``: 80 % with 1-byte column
    indices (up to 256 columns), 67 % with 2-byte ones. Found exactly, by bisection on the
    number of nonzeros with :func:`csr_bytes` (the row-pointer width grows with it).

    >>> round(csr_storage_break_even(256, 256), 3), round(csr_storage_break_even(512, 512), 3)
    (0.798, 0.665)
    """
    dense = compress.FLOAT_BYTES * rows * cols
    if csr_bytes(rows, cols, 1) >= dense:
        return None
    low, high = 1, rows * cols  # the largest nnz with fewer bytes than dense lies in [low, high]
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if csr_bytes(rows, cols, mid) < dense else (low, mid - 1)
    return low / (rows * cols)


# -- whole networks ------------------------------------------------------------------------
def measure_latency(nets: dict[str, nn.Module], x: torch.Tensor, repeats: int = 5,
                    baseline: str = "dense") -> pd.DataFrame:
    """Median seconds per forward pass of ``x`` for each network, timed side by side, and the speed-up.

    Returns:
        per network: ``latency_s`` and ``speedup`` (the median of the paired ratio
        ``baseline time / network time`` over repeats; > 1: faster than ``baseline``), and the
        speed-up's spread over the repeats, ``speedup_lo`` and ``speedup_hi`` (:func:`ratio_spread`).
    """
    if baseline not in nets:
        raise ValueError(f"no network named {baseline!r} to compare with; got {list(nets)}")
    if len(x) == 0 or repeats < 1:
        raise ValueError(f"need at least one example in x and repeats >= 1, got {len(x)} examples, "
                         f"repeats={repeats}")
    modes = {name: net.training for name, net in nets.items()}
    for net in nets.values():
        net.eval()
    with torch.no_grad(), runtime.one_thread(x.device):
        times = time_interleaved({name: (lambda n=net: n(x)) for name, net in nets.items()}, repeats, 1,
                                 x.device)
    for name, net in nets.items():
        net.train(modes[name])
    spreads = [ratio_spread(times[baseline], t) for t in times.values()]
    return pd.DataFrame({"latency_s": [statistics.median(t) for t in times.values()],
                         "speedup": [paired_ratio(times[baseline], t) for t in times.values()],
                         "speedup_lo": [lo for lo, _ in spreads], "speedup_hi": [hi for _, hi in spreads]},
                        index=pd.Index(list(times), name="network"))


@torch.no_grad()
def time_by_layer_type(model: nn.Module, x: torch.Tensor, repeats: int = 5) -> pd.DataFrame:
    """Where a forward pass of ``x`` spends its time, per layer type, next to where the MACs are.

    Forward hooks time every leaf module (CUDA synchronised), in eval mode, on one CPU
    thread; the medians over ``repeats`` passes are summed per type. MACs are counted as
    :func:`coursekit.methods.structured.count_flops` does (convs and Linear only: pooling,
    normalisation and activations count zero, yet read and write a whole feature map).

    Returns:
        per layer type: ``time_s`` (per pass), ``time_share`` and ``flop_share``.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1 or len(x) == 0:
        raise ValueError(f"need repeats >= 1 and at least one example in x, got repeats={repeats!r}, "
                         f"{len(x)} examples")
    leaves = {name: m for name, m in model.named_modules() if not list(m.children())}
    starts: dict[str, float] = {}
    times: dict[str, list[float]] = {name: [] for name in leaves}
    macs = dict.fromkeys(leaves, 0)

    def sync() -> None:
        if x.device.type == "cuda":
            torch.cuda.synchronize()

    def before(name):
        def hook(module, inputs):
            sync()
            starts[name] = time.perf_counter()
        return hook

    def after(name):
        def hook(module, inputs, output):
            sync()
            times[name].append(time.perf_counter() - starts[name])
            if isinstance(module, nn.Linear):
                macs[name] = output[0].numel() * module.in_features
            elif isinstance(module, nn.modules.conv._ConvNd):
                macs[name] = output[0].numel() * module.in_channels // module.groups * module.weight[0, 0].numel()
        return hook

    handles = [h for name, m in leaves.items()
               for h in (m.register_forward_pre_hook(before(name)), m.register_forward_hook(after(name)))]
    was_training = model.training
    model.eval()
    try:
        with runtime.one_thread(x.device):
            model(x)  # warm-up
            for t in times.values():
                t.clear()
            for _ in range(repeats):
                model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    rows = [{"layer type": type(m).__name__, "time_s": statistics.median(times[name]), "flops": macs[name]}
            for name, m in leaves.items()]
    table = pd.DataFrame(rows).groupby("layer type", sort=False).sum()
    table["time_share"] = table["time_s"] / table["time_s"].sum()
    table["flop_share"] = table["flops"] / max(1, table["flops"].sum())
    return table.drop(columns="flops").sort_values("time_s", ascending=False).reset_index()
