"""Lecture 10's experiments: sparse training from scratch, static vs evolving topology (slide 11).

Mocanu et al. 2018 train an MLP that is sparse from the start — Erdős–Rényi layers with
``ε (n_in + n_out)`` connections — and after every epoch move the fraction ζ of the
weakest connections elsewhere at random (SET); Evci et al. 2020 move them to where the
gradient is largest (RigL). :func:`compare` trains, from one initialisation, the dense
network, the static random sparse one, SET and RigL at the same density;
:func:`set_grid` runs SET over ε × ζ (what the widget browses). Both train their
members together (:func:`coursekit.core.batched.fit_batched`). :func:`in_degree` reads
how many connections each input pixel has kept. The figures are here too (``plot_*``).
"""

from __future__ import annotations

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
from coursekit.core.masks import Mask
from coursekit.core.plots import percent, require_columns, rows_where, styled
from coursekit.core.train import TrainSettings
from coursekit.methods import budgets, dynamic_sparse

RUNS = ("dense", "static", "SET", "RigL")


@dataclass(frozen=True)
class EvolutionSettings(TrainSettings):
    """The knobs of ``lectures/10_set.ipynb`` (training ones from :class:`TrainSettings`).

    ``hidden``: the MLP's widths (Mocanu et al. use 1 000 × 3 on Fashion-MNIST);
    ``epsilon``, ``zeta``: SET's ε and ζ; ``rigl_every``: RigL's ΔT in steps;
    ``epsilons``, ``zetas``: the grid the widget browses.
    """

    model: str = "mlp"
    hidden: tuple[int, ...] = (1000, 1000, 1000)
    epochs: int = 10
    epsilon: float = 20.0
    zeta: float = 0.3
    rigl_every: int = 100
    epsilons: tuple[float, ...] = (5.0, 20.0)
    zetas: tuple[float, ...] = (0.1, 0.3, 0.5)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model != "mlp" or not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"EvolutionSettings needs model 'mlp' with positive hidden widths, got "
                             f"{self.model!r} {self.hidden}")
        if not all(e > 0 for e in (self.epsilon, *self.epsilons)):
            raise ValueError(f"ε must be positive, got {self.epsilon} and {self.epsilons}")
        if not all(0 < z < 1 for z in (self.zeta, *self.zetas)):
            raise ValueError(f"ζ must lie in (0, 1), got {self.zeta} and {self.zetas}")
        if self.rigl_every < 1:
            raise ValueError(f"rigl_every must be a positive number of steps, got {self.rigl_every}")


PRESETS = {
    "ci": EvolutionSettings(hidden=(300, 300), epochs=8, epsilon=10.0, rigl_every=20, epsilons=(10.0,),
                            zetas=(0.1, 0.3, 0.5)),
    "cpu": EvolutionSettings(hidden=(500, 500, 500), epochs=10, epsilon=10.0, epsilons=(5.0, 10.0, 20.0)),
    "gpu": EvolutionSettings(epochs=50, epsilons=(5.0, 10.0, 20.0, 40.0)),
}


def network(settings: EvolutionSettings, data: Dataset, seed: int = 0) -> nn.Sequential:
    """The MLP at its initialisation (every run starts from it)."""
    return models.build("mlp", data.input_shape, data.num_classes, seed=seed, device=data.device,
                        hidden=settings.hidden)


def er_mask(settings: EvolutionSettings, data: Dataset, epsilon: float, seed: int = 0) -> Mask:
    """A random Erdős–Rényi mask with ``ε``: the start of the static, SET and RigL runs."""
    shapes = budgets.shapes_of(network(settings, data, seed))
    return budgets.random_mask(shapes, budgets.erdos_renyi(shapes, epsilon), torch.Generator().manual_seed(seed))


def _rows(name: str, result, extra: dict) -> list[dict]:
    history = result.history[result.history["step"] > 0]
    return [{"run": name, **extra, "epoch": r.epoch, "test_acc": r.test_acc} for r in history.itertuples()]


def compare(settings: EvolutionSettings, data: Dataset, seed: int = 0, progress: bool = True):
    """Dense, static sparse, SET and RigL from one initialisation and one ER mask (ε = ``settings.epsilon``).

    Returns the learning curves (``run``, ``density``, ``epoch``, ``test_acc``) and the
    final masks by run (static's is its start).
    """
    mask = er_mask(settings, data, settings.epsilon, seed)
    steps = settings.epochs * -(-len(data.y_train) // settings.batch_size)
    kwargs = settings.fit_kwargs() | {"eval_test": True, "progress": progress}
    plain = [network(settings, data, seed) for _ in range(2)]
    evolving = [network(settings, data, seed) for _ in range(2)]
    hooks = [dynamic_sparse.SET(evolving[0], mask, settings.zeta, torch.Generator().manual_seed(seed)),
             dynamic_sparse.RigL(evolving[1], mask, total_steps=steps, every=settings.rigl_every)]
    with runtime.one_thread(data.device):
        dense, static = fit_batched(plain, data, [seed] * 2, masks=[None, mask], **kwargs)
        set_run, rigl = fit_batched(evolving, data, [seed] * 2, topologies=hooks, **kwargs)
    rows = []
    for name, result in zip(RUNS, (dense, static, set_run, rigl), strict=True):
        rows += _rows(name, result, {"density": 1.0 if name == "dense" else mask.density})
    return pd.DataFrame(rows), {"static": mask, "SET": hooks[0].mask, "RigL": hooks[1].mask}


def set_grid(settings: EvolutionSettings, data: Dataset, seed: int = 0, progress: bool = True):
    """SET for every ε × ζ of the settings' grid, all members trained together.

    Returns the curves (``epsilon``, ``zeta``, ``density``, ``epoch``, ``test_acc``) and the
    final masks by ``(ε, ζ)``.
    """
    pairs = [(e, z) for e in settings.epsilons for z in settings.zetas]
    nets = [network(settings, data, seed) for _ in pairs]
    hooks = [dynamic_sparse.SET(net, er_mask(settings, data, e, seed), z, torch.Generator().manual_seed(seed))
             for net, (e, z) in zip(nets, pairs, strict=True)]
    with runtime.one_thread(data.device):
        results = fit_batched(nets, data, [seed] * len(nets), topologies=hooks, **settings.fit_kwargs(),
                              eval_test=True, progress=progress)
    rows = []
    for (e, z), hook, result in zip(pairs, hooks, results, strict=True):
        rows += _rows("SET", result, {"epsilon": e, "zeta": z, "density": hook.mask.density})
    return pd.DataFrame(rows), {pair: hook.mask for pair, hook in zip(pairs, hooks, strict=True)}


def in_degree(mask: Mask, layer: str, image_shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """How many connections each input of ``layer`` keeps, as an image."""
    keep = mask[layer]
    if keep.ndim != 2 or keep.shape[1] != image_shape[0] * image_shape[1]:
        raise ValueError(f"layer {layer!r} has inputs of shape {tuple(keep.shape[1:])}; expected "
                         f"{image_shape[0] * image_shape[1]} pixels")
    return keep.sum(0).reshape(image_shape).cpu().numpy()


def pixel_spread(data: Dataset, image_shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """The standard deviation of each input pixel over the training images (0: a pixel that never changes)."""
    return data.x_train.flatten(1).std(0).reshape(image_shape).cpu().numpy()


def alignment(mask: Mask, spread: np.ndarray, layer: str = "1.weight") -> float:
    """Spearman rank correlation between the pixels' in-degree and their spread over the data.

    About 0 for a random mask; positive when connections have moved to the pixels that vary.
    """
    degree = in_degree(mask, layer, spread.shape).ravel()
    return float(pd.Series(degree).corr(pd.Series(spread.ravel()), method="spearman"))


def final_accuracy(curves: pd.DataFrame, last: int = 3) -> pd.Series:
    """Each run's mean test accuracy over its last ``last`` evaluations (steadier than the last one alone)."""
    return curves.sort_values("epoch").groupby("run", sort=False)["test_acc"].apply(lambda a: a.tail(last).mean())


def headline(curves: pd.DataFrame, masks: dict[str, Mask], spread: np.ndarray) -> list[Claim]:
    """Lecture 10's checks (Mocanu et al. 2018; Evci et al. 2020), weak forms that hold at ``ci`` scale.

    Moving connections costs SET nothing against the static sparse network at the same density
    (the gain the paper reports needs far longer training: see the lecture) and it stays within a
    few points of the dense network with a few per cent of the weights; RigL, growing where the
    gradient is, moves the input layer's connections toward the pixels that vary over the data
    (SET drifts the same way, too slowly at ``ci`` scale to claim: rank correlation 0.05–0.16).
    """
    acc = final_accuracy(curves)
    return [
        Claim("SET minus static sparse, final test accuracy", acc["SET"] - acc["static"], ">", -0.02),
        Claim("SET minus dense, final test accuracy", acc["SET"] - acc["dense"], ">", -0.07),
        Claim("RigL: rank correlation of a pixel's in-degree with its spread", alignment(masks["RigL"], spread),
              ">", 0.3),
    ]


# ------------------------------------------------------------------ figures

def plot_curves(curves: pd.DataFrame) -> Figure:
    """Test accuracy per epoch of every run; the legend gives each run's density."""
    require_columns(curves, ["run", "epoch", "test_acc", "density"], "plot_curves")
    with styled():
        fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
        for i, (run, part) in enumerate(curves.groupby("run", sort=False)):
            ax.plot(part["epoch"], part["test_acc"], marker="o", ms=3, color=f"C{i}",
                    ls="--" if run == "static" else "-", label=f"{run} ({part['density'].iloc[0]:.1%} of the weights)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        percent(ax.yaxis)
        ax.legend(fontsize="small", loc="lower right")
    return fig


def plot_topology(masks: dict[str, Mask], layer: str = "1.weight") -> Figure:
    """Connections per input pixel for each mask (e.g. the random start, after SET, after RigL), and their
    distributions."""
    degrees = {name: in_degree(mask, layer) for name, mask in masks.items()}
    top = max(d.max() for d in degrees.values())
    with styled():
        fig, axes = plt.subplots(1, len(degrees) + 1, figsize=(4 * len(degrees) + 4.5, 3.8), layout="constrained",
                                 width_ratios=[1] * len(degrees) + [1.4])
        for ax, (name, image) in zip(axes, degrees.items(), strict=False):
            shown = ax.imshow(image, cmap="magma", vmin=0, vmax=top)
            ax.set_title(f"{name}: connections per input pixel", fontsize=9)
            ax.axis("off")
        fig.colorbar(shown, ax=axes[len(degrees) - 1], shrink=0.8, label="connections")
        bins = np.arange(0, top + 2) - 0.5 if top < 60 else 40
        for i, (name, image) in enumerate(degrees.items()):
            axes[-1].hist(image.ravel(), bins=bins, histtype="step", lw=2, label=name,
                          color="0.5" if i == 0 else f"C{i}")
        axes[-1].set_xlabel("connections of an input pixel (in-degree)")
        axes[-1].set_ylabel("pixels")
        axes[-1].legend(fontsize="small")
    return fig


def plot_grid_choice(grid: pd.DataFrame, grid_masks: dict, epsilon: float, zeta: float,
                     reference: pd.DataFrame, layer: str = "1.weight") -> Figure:
    """The widget's figure: SET at (ε, ζ) — its curve beside the dense and static ones, and its input in-degree."""
    require_columns(grid, ["epsilon", "zeta", "epoch", "test_acc", "density"], "plot_grid_choice")
    part = rows_where(rows_where(grid, "epsilon", epsilon, "plot_grid_choice"), "zeta", zeta, "plot_grid_choice")
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.0), layout="constrained", width_ratios=[1.5, 1])
        for i, run in enumerate(("dense", "static")):
            ref = reference[reference["run"] == run]
            left.plot(ref["epoch"], ref["test_acc"], color="0.2" if i == 0 else "0.6", ls="-" if i == 0 else "--",
                      label=f"{run} ({ref['density'].iloc[0]:.1%} of the weights)")
        left.plot(part["epoch"], part["test_acc"], marker="o", ms=3, color="C1",
                  label=f"SET ε = {epsilon:g}, ζ = {zeta:g} ({part['density'].iloc[0]:.1%} of the weights)")
        left.set_xlabel("epoch")
        left.set_ylabel("test accuracy")
        percent(left.yaxis)
        left.legend(fontsize="small", loc="lower right")
        image = right.imshow(in_degree(grid_masks[(epsilon, zeta)], layer), cmap="magma")
        right.set_title("connections per input pixel after training", fontsize=9)
        right.axis("off")
        fig.colorbar(image, ax=right, shrink=0.8)
    return fig
