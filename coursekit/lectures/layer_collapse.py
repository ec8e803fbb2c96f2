"""Lecture 09's experiments: sparsity vs depth, layer collapse and per-layer budgets (slide 10).

A deep, narrow MLP is pruned **at initialisation** to rising compressions (``1 / density``)
by five methods: global magnitude, SNIP (Lee et al. 2019), GraSP (Wang et al. 2020),
iterative SynFlow (Tanaka et al. 2020) and a random mask within the ERK budget (Evci et
al. 2020). :func:`prune_all` draws every mask, :func:`collapse` reads per-layer densities
and the input–output paths left (:mod:`coursekit.methods.connectivity`), :func:`train_masked`
trains every masked network from its initialisation at once (:mod:`coursekit.core.batched`).
Methods that score each weight on its own spend the budget unevenly between layers —
magnitude starves the wide first layer, whose initial weights are the smallest — and
empty a layer long before the network as a whole is gone; SynFlow's conserved flow and
ERK's budget keep every layer. The figures are here too (``plot_*``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from coursekit.core import models, runtime
from coursekit.core.batched import fit_batched
from coursekit.core.claims import Claim
from coursekit.core.data import Dataset
from coursekit.core.masks import Mask, prunable_parameters
from coursekit.core.plots import percent, require_columns, rows_where, styled
from coursekit.core.pruning import mask_from_scores
from coursekit.core.train import TrainSettings
from coursekit.methods import at_init, budgets, connectivity, saliency

METHODS = ("magnitude", "SNIP", "GraSP", "SynFlow", "ERK")


@dataclass(frozen=True)
class CollapseSettings(TrainSettings):
    """The knobs of ``lectures/09_layer_collapse.ipynb`` (training ones from :class:`TrainSettings`).

    ``hidden``: the MLP's hidden widths (deep and narrow, so a layer can empty before the
    network does); ``examples``: the batch SNIP and GraSP score on.
    """

    model: str = "mlp"
    hidden: tuple[int, ...] = (100,) * 6
    epochs: int = 4
    lr: float = 2e-3
    compressions: tuple[float, ...] = (3, 10, 30, 100, 300, 1000)
    methods: tuple[str, ...] = METHODS
    examples: int = 256
    synflow_iterations: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model != "mlp" or not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"CollapseSettings needs model 'mlp' with positive hidden widths, got "
                             f"{self.model!r} {self.hidden}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"CollapseSettings.methods must be some of {METHODS}, got {self.methods}")
        if not self.compressions or any(c < 1 for c in self.compressions) \
                or list(self.compressions) != sorted(set(self.compressions)):
            raise ValueError(f"CollapseSettings.compressions (1 / density) must be increasing and ≥ 1, got "
                             f"{self.compressions}")
        if self.examples < 1 or self.synflow_iterations < 1:
            raise ValueError("CollapseSettings needs examples ≥ 1 and synflow_iterations ≥ 1")


PRESETS = {
    "ci": CollapseSettings(epochs=3, compressions=(3, 10, 30, 100, 300), synflow_iterations=50),
    "cpu": CollapseSettings(epochs=6),
    "gpu": CollapseSettings(epochs=20, hidden=(200,) * 8, compressions=(3, 10, 30, 100, 300, 1000, 3000)),
}


def untrained(settings: CollapseSettings, data: Dataset, seed: int = 0) -> nn.Sequential:
    """The deep MLP at its initialisation (every method prunes this network)."""
    return models.build("mlp", data.input_shape, data.num_classes, seed=seed, device=data.device,
                        hidden=settings.hidden)


def prune(settings: CollapseSettings, data: Dataset, model: nn.Module, method: str, compression: float,
          seed: int = 0) -> Mask:
    """``method``'s mask of ``model`` keeping ``1 / compression`` of its weights."""
    density = 1 / compression
    weights = prunable_parameters(model)
    x, y = data.x_train[:settings.examples], data.y_train[:settings.examples]
    if method == "magnitude":
        return mask_from_scores({n: w.detach().abs() for n, w in weights.items()}, density, "global")
    if method == "SNIP":
        return mask_from_scores(saliency.snip(model, x, y), density, "global")
    if method == "GraSP":
        return mask_from_scores(at_init.grasp(model, x, y), density, "global")
    if method == "SynFlow":
        return at_init.synflow_mask(model, data.input_shape, density, settings.synflow_iterations)
    if method == "ERK":
        shapes = budgets.shapes_of(model)
        return budgets.random_mask(shapes, budgets.erk(shapes, density), torch.Generator().manual_seed(seed))
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def prune_all(settings: CollapseSettings, data: Dataset, model: nn.Module, seed: int = 0
              ) -> dict[tuple[str, float], Mask]:
    """Every method's mask at every compression."""
    with runtime.one_thread(data.device):
        return {(m, c): prune(settings, data, model, m, c, seed) for m in settings.methods
                for c in settings.compressions}


def collapse(settings: CollapseSettings, data: Dataset, model: nn.Module,
             masks: dict[tuple[str, float], Mask]) -> pd.DataFrame:
    """Per method, compression and layer: the layer's density, the paths left and whether collapsed."""
    parts = []
    for method in settings.methods:
        table = connectivity.collapse_table(model, {c: masks[method, c] for c in settings.compressions},
                                            data.input_shape)
        parts.append(table.assign(method=method))
    return pd.concat(parts, ignore_index=True)[["method", "compression", "layer", "density", "paths", "collapsed"]]


def collapse_points(table: pd.DataFrame) -> pd.Series:
    """Per method: the largest compression before its first collapse (``inf``: never collapsed here)."""
    return table.groupby("method", sort=False).apply(connectivity.max_compression, include_groups=False)


def train_masked(settings: CollapseSettings, data: Dataset, masks: dict[tuple[str, float], Mask], seed: int = 0,
                 progress: bool = True) -> pd.DataFrame:
    """Train every masked network from the initialisation it was pruned at, all together.

    Rows: ``method``, ``compression``, ``test_acc``.
    """
    keys = list(masks)
    nets = [untrained(settings, data, seed) for _ in keys]
    with runtime.one_thread(data.device):
        results = fit_batched(nets, data, [seed] * len(nets), masks=[masks[k] for k in keys],
                              **settings.fit_kwargs(), eval_test=True, progress=progress)
    return pd.DataFrame([{"method": m, "compression": c, "test_acc": float(r.final["test_acc"])}
                         for (m, c), r in zip(keys, results, strict=True)])


def headline(table: pd.DataFrame, accuracy: pd.DataFrame, trained_at: float = 30) -> list[Claim]:
    """Lecture 09's checks (Tanaka et al. 2020, weak form).

    At the largest compression, global magnitude at initialisation has left no input–output
    path (its first layer is empty) while SynFlow keeps paths and the ERK budget keeps every
    layer non-empty (its random connections need not line up into a path); at
    ``trained_at``× the network SynFlow pruned trains far above the collapsed one
    (at larger compressions every method trains to near chance in a few epochs).
    """
    top = table["compression"].max()
    at = table[table["compression"] == top]
    paths = at.groupby("method")["paths"].first()
    empty_erk = int((rows_where(at, "method", "ERK", "headline")["density"] == 0).sum())
    acc = rows_where(accuracy, "compression", trained_at, "headline").set_index("method")["test_acc"]
    return [
        Claim(f"paths left by magnitude at {top:g}×", paths["magnitude"], "<", 0.5),
        Claim(f"log10 paths left by SynFlow at {top:g}×", math.log10(max(paths["SynFlow"], 1e-300)), ">", 0),
        Claim(f"empty layers under the ERK budget at {top:g}×", empty_erk, "<", 0.5),
        Claim(f"SynFlow minus magnitude, trained test accuracy at {trained_at:g}×",
              acc["SynFlow"] - acc["magnitude"], ">", 0.15),
    ]


# ------------------------------------------------------------------ figures

def plot_layer_densities(table: pd.DataFrame, compression: float) -> Figure:
    """Per-layer density of every method's mask at ``compression`` (log scale), collapsed masks marked."""
    require_columns(table, ["method", "compression", "layer", "density", "paths"], "plot_layer_densities")
    at = rows_where(table, "compression", compression, "plot_layer_densities")
    methods, layers = list(at["method"].unique()), list(at["layer"].unique())
    positive = at["density"][at["density"] > 0]
    floor = min(positive.min() / 3, 1e-3) if len(positive) else 1e-4  # where an empty layer's bar ends
    with styled():
        fig, ax = plt.subplots(figsize=(11, 4.2), layout="constrained")
        width = 0.8 / len(methods)
        for i, method in enumerate(methods):
            part = at[at["method"] == method].set_index("layer").reindex(layers)
            x = np.arange(len(layers)) + (i - (len(methods) - 1) / 2) * width
            collapsed = bool(part["paths"].iloc[0] == 0)
            heights = part["density"].clip(lower=floor)
            ax.bar(x, heights, width, color=f"C{i}", label=method + (" — collapsed" if collapsed else ""),
                   hatch="//" if collapsed else None, edgecolor="white")
            for xi, d in zip(x, part["density"], strict=True):
                if d == 0:
                    ax.text(xi, floor, "0", ha="center", va="bottom", fontsize=8, color="C3", fontweight="bold")
        ax.set_yscale("log")
        ax.set_ylim(floor, 1.2)
        ax.set_xticks(range(len(layers)), [f"layer {k + 1}\n{n}" for k, n in enumerate(layers)], fontsize=8)
        ax.set_ylabel("density of the layer (log)")
        ax.set_title(f"per-layer density at {compression:g}× compression ({1 / compression:.2%} of the weights)")
        ax.legend(fontsize="small", ncols=len(methods), loc="upper center", bbox_to_anchor=(0.5, -0.18))
    return fig


def plot_accuracy(accuracy: pd.DataFrame, points: pd.Series, chance: float) -> Figure:
    """Trained test accuracy vs compression per method; each method's collapse compression marked."""
    require_columns(accuracy, ["method", "compression", "test_acc"], "plot_accuracy")
    with styled():
        fig, ax = plt.subplots(figsize=(8, 4.4), layout="constrained")
        for i, (method, part) in enumerate(accuracy.groupby("method", sort=False)):
            part = part.sort_values("compression")
            ax.plot(part["compression"], part["test_acc"], marker="o", color=f"C{i}", label=method)
            point = points.get(method, math.inf)
            if math.isfinite(point):
                after = part[part["compression"] > point]
                ax.plot(after["compression"], after["test_acc"], "x", color="k", ms=11, mew=2)
                ax.axvline(point, color=f"C{i}", ls=":", lw=1.5)
        ax.axhline(chance, color="0.3", ls="--", lw=1, label="chance")
        ax.plot([], [], "x", color="k", ms=9, mew=2, label="collapsed: no path left")
        ax.plot([], [], ":", color="0.3", label="last compression before collapse")
        ax.set_xscale("log")
        ticks = sorted(accuracy["compression"].unique())
        ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("compression (1 / density)")
        ax.set_ylabel("test accuracy after training")
        percent(ax.yaxis)
        ax.legend(fontsize="small")
    return fig
