"""Data-oblivious pruning (lecture 06): weight masks vs filter pruning vs low rank, and Deep Compression.

Three ways to shrink a trained network without looking at data (slide 7), compared on
one small VGG with BatchNorm trained on Fashion-MNIST:

* **magnitude** (Han, Pool, Tran & Dally 2015, "Learning both Weights and Connections"):
  zero the smallest ``|w|`` of every layer; the network keeps its shape;
* **filters** (Li et al. 2017): remove the filters of smallest L1 norm and rebuild
  smaller layers (:mod:`coursekit.structured`);
* **low rank** (Denton et al. 2014): replace each layer by a truncated-SVD pair
  (:mod:`coursekit.lowrank`).

Each method is taken to the same budgets (fractions of the conv and Linear weights
kept), then evaluated before and after a short fine-tuning (:func:`compare_methods`).
Only the two structured methods make the dense kernels do less work, so only they show
a measured speed-up; the weight mask reduces the FLOPs an *ideal* sparse kernel would
do, which no dense kernel does. :func:`knob_grid` reads filter and rank settings without
fine-tuning (what the lecture's widget browses), and :func:`deep_compression_stages`
runs Han, Mao & Dally 2016's pipeline: prune → retrain → quantise → Huffman code.

Lecture 01's biological-parallels figure reads :func:`synapse_density`, published values.
On the CPU the drivers train and time on one thread (:func:`coursekit.runtime.one_thread`):
these networks are small, and on a busy machine a second thread costs far more in waiting
than it gains. Latency is measured by :func:`coursekit.sparse_speed.measure_latency`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from coursekit import compress, lowrank, models, runtime, structured
from coursekit.claims import Claim
from coursekit.coding import check_bits
from coursekit.data import Dataset
from coursekit.masks import Mask, prunable_parameters
from coursekit.sparse_speed import measure_latency
from coursekit.train import SGDSettings, evaluate, fit

METHODS = ("magnitude", "filters", "low rank")


@dataclass(frozen=True)
class ObliviousSettings(SGDSettings):
    """The knobs of ``lectures/06_data_oblivious.ipynb`` (training ones from :class:`SGDSettings`).

    ``budgets`` are fractions of the conv and Linear weights kept by every method;
    ``filter_amounts`` (fractions of each layer's filters removed) and ``rank_fractions``
    (fractions of each layer's singular values kept) are the widget's settings;
    ``deep_density``, ``bits`` and ``index_bits`` are Deep Compression's pruning density,
    codebook bits (``2^bits`` shared weights per layer) and relative-index bits.
    """

    epochs: int = 4
    lr_decay: float = 0.8
    budgets: tuple[float, ...] = (0.5, 0.2)
    finetune_epochs: int = 2
    finetune_lr: float = 0.02
    filter_amounts: tuple[float, ...] = (0.25, 0.5, 0.75)
    rank_fractions: tuple[float, ...] = (0.5, 0.25, 0.1)
    deep_density: float = 0.3
    bits: int = 5
    index_bits: int = 5
    latency_batch: int = 128
    repeats: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        fractions = {"budgets": (self.budgets, False), "filter_amounts": (self.filter_amounts, False),
                     "rank_fractions": (self.rank_fractions, True)}
        for name, (values, closed) in fractions.items():
            if not values or not all(0 < v < 1 or (closed and v == 1) for v in values):
                raise ValueError(f"ObliviousSettings.{name} must be a non-empty tuple of fractions in "
                                 f"(0, 1{']' if closed else ')'}, got {values}")
        if not 0 < self.deep_density <= 1 or not self.finetune_lr > 0:
            raise ValueError(f"ObliviousSettings needs deep_density in (0, 1] and finetune_lr > 0, got "
                             f"{self.deep_density} and {self.finetune_lr}")
        if min(self.finetune_epochs, self.latency_batch, self.repeats) < 1:
            raise ValueError("ObliviousSettings needs finetune_epochs, latency_batch and repeats >= 1, got "
                             f"{self.finetune_epochs}, {self.latency_batch} and {self.repeats}")
        check_bits(self.bits)
        check_bits(self.index_bits, "index_bits")


PRESETS = {  # lectures/06_data_oblivious.ipynb
    "ci": ObliviousSettings(repeats=9),  # timings are cheap here; 3 repeats let a busy machine blur them
    "cpu": ObliviousSettings(width=1.0, epochs=8, lr_decay=0.8, budgets=(0.5, 0.3, 0.2, 0.1),
                             finetune_epochs=2, filter_amounts=(0.1, 0.25, 0.5, 0.75, 0.9),
                             rank_fractions=(0.75, 0.5, 0.25, 0.1, 0.05), latency_batch=256, repeats=9),
    "gpu": ObliviousSettings(width=2.0, epochs=30, lr_decay=0.92, budgets=(0.7, 0.5, 0.3, 0.2, 0.1, 0.05),
                             finetune_epochs=8, filter_amounts=(0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9),
                             rank_fractions=(0.75, 0.5, 0.35, 0.25, 0.15, 0.1, 0.05), latency_batch=1024,
                             repeats=15),
}


def _fit(settings: ObliviousSettings, model: nn.Module, data: Dataset, epochs: int, lr: float,
         hooks=(), desc: str = "training", progress: bool = False) -> float:
    """Train in place; returns the final test accuracy."""
    with runtime.one_thread(data.device):
        fit(model, data, **settings.fit_kwargs() | {"epochs": epochs, "lr": lr}, seed=settings.seed,
            hooks=hooks, progress=progress, desc=desc)
    return accuracy(model, data)


def accuracy(model: nn.Module, data: Dataset) -> float:
    """Accuracy of ``model`` on the test split."""
    with runtime.one_thread(data.device):
        return evaluate(model, *data.split("test"))["acc"]


@dataclass
class Dense:
    """The trained network every method starts from."""

    model: nn.Module
    test_acc: float


def train_dense(settings: ObliviousSettings, data: Dataset, progress: bool = True) -> Dense:
    """Train the lecture's network (``settings.model`` at ``settings.width``) from ``settings.seed``."""
    model = models.build(settings.model, data.input_shape, data.num_classes, seed=settings.seed,
                         device=data.device, width=settings.width)
    acc = _fit(settings, model, data, settings.epochs, settings.lr, desc="dense network", progress=progress)
    return Dense(model.eval(), acc)


def _weights(model: nn.Module) -> int:
    """Nonzero conv and Linear weights: what the budgets count."""
    return sum(int(torch.count_nonzero(p)) for p in prunable_parameters(model).values())


def _smallest_fitting(weights_at, limit: float, steps: int) -> int | None:
    """The smallest ``k`` in ``0..steps`` with ``weights_at(k) ≤ limit``, for a ``weights_at`` that never grows.

    ``weights_at`` may raise ``ValueError`` (a setting that empties a layer): such a ``k``
    counts as too far, and is never returned.
    """
    def fits(k: int) -> bool:
        try:
            return weights_at(k) <= limit
        except ValueError:
            return True

    low, high = 0, steps
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid + 1, high)
    try:
        return low if weights_at(low) <= limit else None
    except ValueError:
        return None


def filter_amount_for(model: nn.Module, budget: float, resolution: float = 0.01) -> float:
    """The smallest fraction of filters to remove from every layer so that at most ``budget`` of the weights remain.

    Removing a fraction ``a`` of the filters of every layer keeps about ``(1 − a)²`` of a
    middle layer's weights (its outputs *and* the next layer's inputs shrink); the exact
    count depends on rounding, so ``a`` is found by bisection on the real surgery (the
    weights left never grow with ``a``), to ``resolution``.
    """
    _check_budget(budget)
    _check_resolution(resolution)
    steps = round(1 / resolution)
    k = _smallest_fitting(lambda k: _weights(structured.prune_filters(model, k / steps)),
                          budget * _weights(model), steps - 1)
    if k is None:
        raise ValueError(f"filter pruning cannot reach {budget:.1%} of the weights: each layer keeps at "
                         "least one filter, and the input and output layers keep their sizes")
    return round(k / steps, 6)


def low_rank_layers(model: nn.Module) -> list[str]:
    """The layers low rank replaces: every Linear and ungrouped conv but the first and the last.

    The first conv reads the raw image (here one channel: a 3×3 filter bank is an
    ``out × 9`` matrix): factorising it saves a few dozen weights and adds a layer at the
    highest resolution. The last layer maps features to classes: at a low rank it cannot
    tell the classes apart (rank 1 sends every image through one number). Both are left
    whole, as filter pruning leaves the input and output sizes whole.
    """
    names = [n for n, m in model.named_modules()
             if isinstance(m, nn.Linear) or (isinstance(m, nn.modules.conv._ConvNd) and m.groups == 1)]
    return names[1:-1]


def low_rank_fraction_for(model: nn.Module, budget: float, resolution: float = 0.01) -> float:
    """The largest ``param_fraction`` of :func:`coursekit.lowrank.low_rank` on :func:`low_rank_layers`
    that leaves at most ``budget`` of the whole network's weights (the first and last layers included)."""
    _check_budget(budget)
    _check_resolution(resolution)
    steps, layers = round(1 / resolution), low_rank_layers(model)
    k = _smallest_fitting(
        lambda k: _weights(lowrank.low_rank(model, param_fraction=(steps - k) / steps, layers=layers)),
        budget * _weights(model), steps - 1)
    if k is None:
        raise ValueError(f"low rank cannot reach {budget:.1%} of the weights: rank 1 in every middle layer "
                         "keeps more, and the first and last layers stay whole")
    return round((steps - k) / steps, 6)


def _check_resolution(resolution: float) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not 0 < resolution < 1:
        raise ValueError(f"resolution must lie in (0, 1), e.g. 0.01, got {resolution!r}")


def _check_budget(budget: float) -> None:
    if not isinstance(budget, (int, float)) or not 0 < budget <= 1:
        raise ValueError(f"budget must lie in (0, 1], got {budget!r}")


def prune(model: nn.Module, method: str, budget: float) -> tuple[nn.Module, Mask | None]:
    """A pruned copy of ``model`` keeping about ``budget`` of its conv and Linear weights.

    Returns the copy and, for ``magnitude``, the :class:`~coursekit.masks.Mask` that keeps
    its zeros at zero during fine-tuning (``None`` for the structured methods).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    _check_budget(budget)
    if method == "magnitude":
        pruned = copy.deepcopy(model)
        mask = compress.magnitude_mask(pruned, density=budget)
        return mask.apply(pruned), mask
    if method == "filters":
        return structured.prune_filters(model, filter_amount_for(model, budget)), None
    return lowrank.low_rank(model, param_fraction=low_rank_fraction_for(model, budget),
                            layers=low_rank_layers(model)), None


def _costs(model: nn.Module, data: Dataset) -> dict:
    return {"params": structured.count_parameters(model, nonzero=True), "weights": _weights(model),
            "flops": structured.count_flops(model, data.input_shape, skip_zeros=True),
            "dense_kernel_flops": structured.count_flops(model, data.input_shape)}


def compare_methods(settings: ObliviousSettings, data: Dataset, dense: Dense,
                    progress: bool = True) -> pd.DataFrame:
    """Accuracy, size, FLOPs and measured latency of every method at every budget, fine-tuned and not.

    Returns one row per (method, budget) plus the dense network (method ``dense``, budget 1):
    ``params`` (nonzero parameters), ``weights`` (nonzero conv/Linear weights), ``flops``
    (MACs per image an ideal kernel does, zeros skipped), ``dense_kernel_flops`` (MACs the
    network as stored makes a dense kernel do), ``flop_reduction`` (dense ``flops`` / ``flops``),
    ``test_acc`` (before fine-tuning), ``test_acc_ft`` (after ``finetune_epochs``),
    ``latency_s`` and ``speedup`` (measured side by side with the dense network).
    """
    rows, nets = [{"method": "dense", "budget": 1.0, **_costs(dense.model, data), "test_acc": dense.test_acc,
                   "test_acc_ft": dense.test_acc}], {"dense": dense.model}
    jobs = [(m, b) for b in settings.budgets for m in METHODS]
    for method, budget in tqdm(jobs, desc="prune + fine-tune", disable=not progress, leave=False):
        pruned, mask = prune(dense.model, method, budget)
        row = {"method": method, "budget": budget, **_costs(pruned, data), "test_acc": accuracy(pruned, data)}
        hooks = [mask.hook(pruned)] if mask is not None else []
        row["test_acc_ft"] = _fit(settings, pruned, data, settings.finetune_epochs, settings.finetune_lr, hooks)
        rows.append(row)
        nets[f"{method} {budget}"] = pruned  # fine-tuning changes the weights, not the work
    table = pd.DataFrame(rows)
    table["flop_reduction"] = table["flops"].iloc[0] / table["flops"]
    speed = measure_latency(nets, data.x_test[:settings.latency_batch], settings.repeats)
    return table.join(speed.reset_index(drop=True))


def knob_grid(settings: ObliviousSettings, data: Dataset, dense: Dense, progress: bool = True) -> pd.DataFrame:
    """Filter pruning and low rank at each of their settings, without fine-tuning (the lecture's widget).

    ``knob`` is the fraction of every layer's filters removed (``filters``; 0 = the dense
    network) or of its singular values kept (``low rank``; 1 = the dense network). Returns
    one row per (method, knob): ``params``, ``flops``, ``test_acc``, ``latency_s``, ``speedup``.
    """
    nets = {("filters", 0.0): dense.model, ("low rank", 1.0): dense.model}
    for a in settings.filter_amounts:
        nets["filters", a] = structured.prune_filters(dense.model, a)
    for f in settings.rank_fractions:
        nets["low rank", f] = lowrank.low_rank(dense.model, rank_fraction=f, layers=low_rank_layers(dense.model))
    rows = [{"method": m, "knob": k, "params": structured.count_parameters(net),
             "flops": structured.count_flops(net, data.input_shape), "test_acc": accuracy(net, data)}
            for (m, k), net in tqdm(nets.items(), desc="evaluating", disable=not progress, leave=False)]
    labels = {key: f"{key[0]} {key[1]}" for key in nets}
    speed = measure_latency({"dense": dense.model} | {labels[k]: net for k, net in nets.items()},
                            data.x_test[:settings.latency_batch], settings.repeats)
    table = pd.DataFrame(rows)
    table[["latency_s", "speedup"]] = speed.loc[[labels[k] for k in nets]].to_numpy()
    return table.sort_values(["method", "knob"], ignore_index=True)


@torch.no_grad()
def _decoded(model: nn.Module, bits: int, index_bits: int) -> nn.Module:
    """A copy whose conv and Linear weights went through Deep Compression's encoder and back."""
    copy_ = copy.deepcopy(model)
    for p in prunable_parameters(copy_).values():
        p.copy_(compress.DeepCompressed.encode(p, bits, index_bits).decode().to(p.device))
    return copy_


def deep_compression_stages(settings: ObliviousSettings, data: Dataset, dense: Dense) -> pd.DataFrame:
    """Han, Mao & Dally 2016 on the lecture's network: bytes, ratio and test accuracy after each stage.

    Magnitude-prune every layer to ``deep_density``, retrain with the mask (``finetune_epochs``),
    quantise each layer's nonzeros to ``2^bits`` k-means centroids (no centroid fine-tuning,
    which Han et al. add), then Huffman-code codes and relative positions. Bytes count the
    conv and Linear weights (BatchNorm and biases, a few hundred numbers, are left out);
    the last stage's accuracy is measured on weights decoded from the Huffman streams.
    """
    model = copy.deepcopy(dense.model)
    mask = compress.magnitude_mask(model, density=settings.deep_density)
    pruned_acc = accuracy(mask.apply(model), data)
    retrained_acc = _fit(settings, model, data, settings.finetune_epochs, settings.finetune_lr, [mask.hook(model)])
    compress.quantize_model(model, settings.bits)
    quantised_acc = accuracy(model, data)
    huffman_acc = accuracy(_decoded(model, settings.bits, settings.index_bits), data)
    total = compress.deep_compression(model, settings.bits, settings.index_bits)
    total = total[total["layer"] == "total"].set_index("stage")["bytes"]
    rows = [("dense fp32", "dense", dense.test_acc),
            (f"pruned to {settings.deep_density:.0%}", "pruned", pruned_acc),
            ("pruned + retrained", "pruned", retrained_acc),
            (f"quantised ({settings.bits}-bit k-means)", "quantized", quantised_acc),
            ("Huffman coded", "huffman", huffman_acc)]
    table = pd.DataFrame([{"stage": s, "bytes": int(total[k]), "test_acc": a} for s, k, a in rows])
    table.insert(2, "ratio", total["dense"] / table["bytes"])
    return table



def headline(table: pd.DataFrame, dense: Dense, stages: pd.DataFrame) -> list[Claim]:
    """Lecture 06's checks of :func:`compare_methods` and :func:`deep_compression_stages` (weak forms).

    At the smallest budget fine-tuning recovers what each method lost; at the mildest a
    weight mask costs under 5 points once fine-tuned; removing filters is faster than
    masking as many weights (a timing, measured side by side); Deep Compression shrinks
    the weights more than fivefold, its shared weights costing under 5 points.
    """
    pruned = table[table["method"] != "dense"]
    smallest = pruned[pruned["budget"] == pruned["budget"].min()].set_index("method")
    mildest = pruned[(pruned["budget"] == pruned["budget"].max()) & (pruned["method"] == "magnitude")].iloc[0]
    acc = stages["test_acc"]
    claims = [Claim(f"{m} at the smallest budget: fine-tuned minus pruned accuracy",
                    row["test_acc_ft"] - row["test_acc"], ">", 0) for m, row in smallest.iterrows()]
    return [*claims,
            Claim("mildest weight mask, fine-tuned, minus dense accuracy", mildest["test_acc_ft"] - dense.test_acc,
                  ">", -0.05),
            Claim("log2 of filters' speed-up over the weight mask's (smallest budget)",
                  math.log2(smallest.loc["filters", "speedup"] / smallest.loc["magnitude", "speedup"]), ">", 0),
            Claim("Deep Compression's size ratio", stages["ratio"].iloc[-1], ">", 5),
            Claim("quantised minus pruned + retrained accuracy", acc.iloc[3] - acc.iloc[2], ">", -0.05)]

# -- lecture 01: biological parallels --------------------------------------------------------
HUTTENLOCHER_1979 = ("Huttenlocher, P. R. (1979). Synaptic density in human frontal cortex — developmental "
                     "changes and effects of aging. Brain Research 163(2), 195–205. "
                     "doi:10.1016/0006-8993(79)90349-4")


def synapse_density() -> pd.DataFrame:
    """Synaptic density in layer 3 of human middle frontal gyrus by age, from Huttenlocher 1979's abstract.

    Published summary values (synapses per mm³, electron microscopy of 21 brains, newborn
    to 90 years): adults 16–72 years 11.05 × 10⁸ ± 0.41 (SEM); aged 74–90 years 9.56 × 10⁸
    ± 0.28 (4 brains). Two rows are *approximate*, derived from the abstract's words:
    newborns "already high — in the range seen in adults" (drawn at the adult mean) and a
    maximum at 1–2 years "about 50 % above the adult mean" (1.5 × 11.05 × 10⁸).

    Returns:
        ``age_from``, ``age_to`` (years), ``density`` (10⁸ synapses / mm³), ``sem`` (NaN
        where none is given), ``approximate`` (bool) and ``source`` (what the abstract says).
    """
    adult = 11.05
    rows = [(0.0, 0.0, adult, np.nan, True, "newborn: 'already high, in the range seen in adults'"),
            (1.0, 2.0, 1.5 * adult, np.nan, True, "maximum at 1–2 years, 'about 50 % above the adult mean'"),
            (16.0, 72.0, adult, 0.41, False, "ages 16–72: mean 11.05 ± 0.41 (SEM)"),
            (74.0, 90.0, 9.56, 0.28, False, "ages 74–90: mean 9.56 ± 0.28 (SEM), 4 brains")]
    return pd.DataFrame(rows, columns=["age_from", "age_to", "density", "sem", "approximate", "source"])
