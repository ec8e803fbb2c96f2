"""Lecture 11's experiments: permutation symmetry, the overlap of sparse vectors, k-winners under noise (slide 12).

Three views of why sparse representations might suit networks. :func:`permutation_demo`
(Ainsworth et al. 2023, *Git Re-Basin*): permuting hidden units changes nothing the
network computes, and aligning two independently trained networks' units removes most
of the loss barrier on the straight line between them. :func:`overlap_curve` (Ahmad &
Scheinkman 2019): the chance that a random sparse vector overlaps a given one falls
steeply with the dimension, exact and simulated. :func:`noise_robustness`: their dense
and sparse (k-winners, sparse weights) CNN at equal clean accuracy, on inputs with more
and more pixels replaced by noise. :func:`headline` states the checks; figures ``plot_*``.
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
from coursekit.core.claims import Claim
from coursekit.core.data import Dataset
from coursekit.core.plots import percent, require_columns, styled
from coursekit.core.train import TrainSettings, fit
from coursekit.methods import kwinners, overlap, permutations


@dataclass(frozen=True)
class SparseSettings(TrainSettings):
    """``lectures/11_kwinners.ipynb``'s knobs (training ones, for the CNNs, from :class:`TrainSettings`).

    ``perm_hidden``, ``perm_epochs``: the two MLPs aligned by weight matching; ``channels``,
    ``width``, ``k_fraction``, ``k_inference_fraction``, ``weight_density``: Ahmad & Scheinkman's
    CNN pair (:func:`coursekit.methods.kwinners.cnn_pair`); ``noise_levels``: fractions of pixels
    replaced by noise; ``sizes``, ``density``: the overlap curve (``a = s = density · n``,
    ``θ = a / 2``), simulated with ``trials`` draws.
    """

    model: str = "mlp"  # the permutation demo's; the CNN pair is kwinners.cnn_pair
    optimizer: str = "sgd"
    lr: float = 0.02
    momentum: float = 0.9
    batch_size: int = 32
    epochs: int = 8
    perm_hidden: tuple[int, ...] = (256, 256)
    perm_epochs: int = 5
    channels: int = 32
    width: int = 300
    k_fraction: float = 0.1
    k_inference_fraction: float = 0.15
    weight_density: float = 0.3
    noise_levels: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    sizes: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)
    density: float = 0.1
    trials: int = 20_000

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.noise_levels or not all(0 <= v <= 1 for v in self.noise_levels):
            raise ValueError(f"noise_levels are fractions of the pixels in [0, 1], got {self.noise_levels}")
        if not 0 < self.density <= 1 or not self.sizes or min(self.sizes) < 2:
            raise ValueError(f"the overlap curve needs a density in (0, 1] and sizes ≥ 2, got {self.density}, "
                             f"{self.sizes}")

    def fit_kwargs(self) -> dict:
        return super().fit_kwargs() | {"momentum": self.momentum}


PRESETS = {
    "ci": SparseSettings(perm_hidden=(128, 128), perm_epochs=4, trials=10_000),
    "cpu": SparseSettings(epochs=12, trials=100_000),
    "gpu": SparseSettings(epochs=20, channels=64, width=1000, trials=1_000_000),
}


# ------------------------------------------------------------------ permutations

def permutation_demo(settings: SparseSettings, data: Dataset, seed: int = 0) -> dict:
    """Two MLPs trained (Adam, lr 10⁻³) from seeds ``seed`` and ``seed + 1``; a random permutation of the first; the second
    aligned to the first by weight matching; the loss along the straight line between them before and after.

    Returns ``max_change`` (largest output change from the permutation), ``log10_class_size``,
    ``barrier`` (rows ``alpha``, ``loss``, ``acc``, ``barrier``, ``pair``: "as trained" or "aligned").
    """
    nets = []
    for s in (seed, seed + 1):
        net = models.build("mlp", data.input_shape, data.num_classes, seed=s, device=data.device,
                           hidden=settings.perm_hidden)
        with runtime.one_thread(data.device):
            fit(net, data, seed=s, progress=False, epochs=settings.perm_epochs, optimizer="adam", lr=1e-3,
                batch_size=settings.batch_size)
        nets.append(net.eval())
    a, b = nets
    shuffled = permutations.permute(a, permutations.random_permutations(a, torch.Generator().manual_seed(seed)))
    x = data.x_test[:500]
    with torch.no_grad():
        change = float((a(x) - shuffled(x)).abs().max())
    aligned = permutations.permute(b, permutations.match_weights(a, b, generator=torch.Generator().manual_seed(seed)))
    barrier = pd.concat([permutations.loss_barrier(a, b, data).assign(pair="as trained"),
                         permutations.loss_barrier(a, aligned, data).assign(pair="aligned")], ignore_index=True)
    return {"max_change": change, "log10_class_size": permutations.log10_class_size(a), "barrier": barrier}


# ------------------------------------------------------------------ overlaps

def overlap_curve(settings: SparseSettings, seed: int = 0) -> pd.DataFrame:
    """``P(overlap ≥ θ)`` for each ``n`` of the settings (``a = s = density · n``, ``θ = ⌈a/2⌉``), exact and
    simulated: rows ``n``, ``a``, ``theta``, ``probability``, ``log10``, ``simulated`` and ``stderr``, the
    simulation's standard error if the exact probability is right, ``√(p(1 − p) / trials)``."""
    table = overlap.overlap_table(settings.sizes, settings.density)
    gen = torch.Generator().manual_seed(seed)
    simulated = [overlap.simulate(int(r.n), int(r.a), int(r.a), int(r.theta), settings.trials, gen)[0]
                 for r in table.itertuples()]
    p = table["probability"]
    return table.assign(simulated=simulated, stderr=np.sqrt(p * (1 - p) / settings.trials))


# ------------------------------------------------------------------ noise

def noise_robustness(settings: SparseSettings, data: Dataset, seed: int = 0,
                     progress: bool = True) -> tuple[pd.DataFrame, dict[str, nn.Module]]:
    """Train the dense and the sparse CNN (same architecture, same start) and test them at every noise level.

    Returns the table (``network``, ``noise``, ``test_acc``) and the trained networks.
    """
    dense, sparse, mask = kwinners.cnn_pair(data.input_shape, data.num_classes, settings.channels, settings.width,
                                            settings.k_fraction, settings.k_inference_fraction,
                                            settings.weight_density, seed)
    dense, sparse = dense.to(data.device), sparse.to(data.device)
    # evaluated once, at the end: the lecture reads the trained networks, not their learning curves
    steps = settings.epochs * -(-len(data.y_train) // settings.batch_size)
    kwargs = settings.fit_kwargs() | {"seed": seed, "progress": progress, "eval_every": steps}
    with runtime.one_thread(data.device):
        fit(dense, data, desc="dense CNN", **kwargs)
        fit(sparse, data, hooks=[mask.hook(sparse), kwinners.decay_boost_hook], desc="sparse CNN", **kwargs)
    nets = {"dense": dense.eval(), "sparse (k-WTA)": sparse.eval()}
    return kwinners.noise_table(nets, data.x_test, data.y_test, settings.noise_levels, seed), nets


def noise_gain(table: pd.DataFrame, from_level: float = 0.3) -> float:
    """The sparse CNN's accuracy minus the dense one's, averaged over the noise levels ≥ ``from_level``."""
    wide = table.pivot(index="noise", columns="network", values="test_acc")
    heavy = wide[wide.index >= from_level - 1e-9]
    return float((heavy["sparse (k-WTA)"] - heavy["dense"]).mean())


def headline(perm: dict, curve: pd.DataFrame, noise: pd.DataFrame) -> list[Claim]:
    """Lecture 11's checks, weak forms that hold at ``ci`` scale.

    Permuting hidden units leaves the outputs unchanged to float precision; aligning the
    units removes at least half of the loss barrier (Ainsworth et al. 2023); the simulated
    overlap probabilities agree with the exact ones within 6 standard errors (the worst of
    several sizes: 0.4–4 over seeds 0–4) and
    the exact one falls by at least 10⁴ over the sizes; the sparse CNN is as accurate as the
    dense one on clean images (within 5 points) and more accurate under heavy noise (Ahmad &
    Scheinkman 2019; by 8 to 30 points at ``ci`` scale over seeds 0–4).
    """
    peaks = perm["barrier"].groupby("pair")["barrier"].max()
    worst = float(((curve["simulated"] - curve["probability"]).abs() / curve["stderr"]).max())
    clean = noise[noise["noise"] == 0].set_index("network")["test_acc"]
    return [
        Claim("largest output change from permuting hidden units", perm["max_change"], "<", 1e-4),
        Claim("aligned barrier / barrier as trained", peaks["aligned"] / peaks["as trained"], "<", 0.5),
        Claim("|simulated − exact| in standard errors (worst n)", worst, "<", 6),
        Claim("log10 P(overlap ≥ θ): smallest n minus largest n",
              curve["log10"].iloc[0] - curve["log10"].iloc[-1], ">", 4),
        Claim("sparse minus dense CNN, clean test accuracy", clean["sparse (k-WTA)"] - clean["dense"], ">", -0.05),
        Claim("sparse minus dense CNN, test accuracy at ≥ 30 % noise", noise_gain(noise), ">", 0.0),
    ]


# ------------------------------------------------------------------ figures

def plot_barrier(barrier: pd.DataFrame) -> Figure:
    """Test loss and accuracy along the straight line between the two networks, as trained and aligned."""
    require_columns(barrier, ["alpha", "loss", "acc", "pair"], "plot_barrier")
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
        for (pair, part), color in zip(barrier.groupby("pair", sort=False), ("C3", "C0"), strict=True):
            left.plot(part["alpha"], part["loss"], marker="o", ms=4, color=color, label=pair)
            right.plot(part["alpha"], part["acc"], marker="o", ms=4, color=color, label=pair)
        for ax, what in ((left, "test loss"), (right, "test accuracy")):
            ax.set_xlabel("α: network (1 − α)·θ_A + α·θ_B")
            ax.set_ylabel(what)
        percent(right.yaxis)
        left.legend(fontsize="small")
    return fig


def plot_overlap(curve: pd.DataFrame, trials: int) -> Figure:
    """``P(overlap ≥ θ)`` against ``n`` on a log scale: exact, and simulated (``trials`` draws) with its standard
    error; sizes where no draw overlapped enough are marked at ``1 / trials``."""
    require_columns(curve, ["n", "probability", "simulated", "stderr"], "plot_overlap")
    with styled():
        fig, ax = plt.subplots(figsize=(7.5, 4.0), layout="constrained")
        ax.plot(curve["n"], curve["probability"], marker="o", color="C0", label="exact (log space)")
        seen = curve[curve["simulated"] > 0]
        ax.errorbar(seen["n"], seen["simulated"], yerr=seen["stderr"], fmt="s", color="C1", ms=6, capsize=3,
                    label="simulated (± standard error)")
        unseen = curve[curve["simulated"] == 0]
        if len(unseen):
            floor = 1 / trials
            ax.plot(unseen["n"], [floor] * len(unseen), ls="none", marker="v", color="C1", alpha=0.6,
                    label=f"simulated: not one in {trials:,} draws")
            ax.axhline(floor, color="C1", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n, the dimension (a = s = 10 % of n on, θ = a/2)")
        ax.set_ylabel("P(overlap ≥ θ)")
        ax.legend(fontsize="small")
    return fig


def plot_noise(table: pd.DataFrame, x: torch.Tensor, seed: int = 0) -> Figure:
    """Test accuracy against the fraction of noisy pixels for each network, beside one image at each level."""
    require_columns(table, ["network", "noise", "test_acc"], "plot_noise")
    levels = sorted(table["noise"].unique())
    with styled():
        fig = plt.figure(figsize=(12, 4.0), layout="constrained")
        left, right = fig.subfigures(1, 2, width_ratios=[1.3, 1])
        ax = left.subplots()
        for (name, part), color in zip(table.groupby("network", sort=False), ("0.3", "C0"), strict=True):
            ax.plot(part["noise"], part["test_acc"], marker="o", color=color, lw=2, label=name)
        ax.set_xlabel("fraction of pixels replaced by noise")
        ax.set_ylabel("test accuracy")
        percent(ax.xaxis)
        percent(ax.yaxis)
        ax.legend(fontsize="small")
        cols = math.ceil(len(levels) / 2)
        axes = np.atleast_1d(right.subplots(2, cols)).ravel()
        for axi, level in zip(axes, levels, strict=False):
            image = kwinners.with_noise(x[:1], level, torch.Generator().manual_seed(seed))[0, 0]
            axi.imshow(image.cpu().numpy(), cmap="gray")
            axi.set_title(f"{level:.0%}", fontsize=9)
            axi.axis("off")
        for axi in axes[len(levels):]:
            axi.axis("off")
    return fig


def plot_overlap_choice(n: int, a: int, theta: int) -> Figure:
    """The widget's figure: the distribution of the overlap between a fixed and a random ``a``-of-``n`` vector,
    with the tail ``overlap ≥ θ`` shaded and its probability in the title."""
    if theta > a or a > n:
        raise ValueError(f"need θ ≤ a ≤ n, got n = {n}, a = {a}, θ = {theta}")
    dist = overlap.overlap_distribution(n, a, a)
    tail = overlap.overlap_probability(n, a, a, theta)
    with styled():
        fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
        shown = dist[dist > 1e-300]
        colors = ["C3" if b >= theta else "C0" for b in shown.index]
        ax.bar(shown.index, shown.to_numpy(), color=colors, width=0.8)
        ax.axvline(theta - 0.5, color="C3", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("overlap b (bits on in both)")
        ax.set_ylabel("P(overlap = b)")
        ax.set_title(f"n = {n}, a = s = {a} ({a / n:.1%} on), θ = {theta}:  P(overlap ≥ θ) = {tail:.3g}",
                     fontsize=10)
    return fig
