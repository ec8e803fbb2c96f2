"""Lecture 15's experiments: sloppy spectra, effective dimension and low-dimensional training (slide 14).

Yang, Mao & Chaudhari (ICML 2022, "Does the Data Induce Capacity Control in Deep Learning?")
find that the eigenvalues of the data's covariance, of the Hessian and of the Fisher
information of a trained network are *sloppy*: spread evenly over many decades. Few
directions have large curvature, so the effective dimension at the minimum is far smaller
than the parameter count; Mao et al. (PNAS 2024) find that training itself moves along a
few directions. :func:`train_network` trains an MLP and records its weight trajectory,
:func:`layer_spectra` computes every layer's three spectra exactly (explicit Hessian and
Gram-trick Fisher blocks, activation covariance), :func:`effective_dimensions` estimates
the whole network's effective dimension by stochastic Lanczos quadrature for several
widths, and :func:`headline` states the lecture's checks. The figures are here too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from coursekit.core import data as datasets
from coursekit.core import models
from coursekit.core.claims import Claim
from coursekit.core.plots import percent, rows_where, styled
from coursekit.core.progress import tqdm
from coursekit.core.train import TrainSettings, fit
from coursekit.methods import spectra

MATRICES = ("input covariance", "Hessian", "Fisher")
COLORS = {"input covariance": "C2", "Hessian": "C0", "Fisher": "C3", "Gaussian inputs": "0.5"}


@dataclass(frozen=True)
class SpectraSettings(TrainSettings):
    """``lectures/15_sloppy_spectra.ipynb``'s knobs: the data set, the MLP (``hidden``) and its training (from
    :class:`TrainSettings`), the ``examples`` the Hessian and Fisher average over, the curvature scales ``zs`` of
    the effective dimension, the one-hidden-layer ``widths`` it is measured for (``lanczos_steps`` × ``probes``
    of stochastic Lanczos quadrature each), and how often (``trajectory_every`` steps) the weights are kept."""

    model: str = "mlp"
    dataset: str = "digits"
    hidden: tuple[int, ...] = (32, 32)
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    examples: int = 1_000
    zs: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    widths: tuple[int, ...] = (8, 32, 128, 512)
    lanczos_steps: int = 40
    probes: int = 4
    trajectory_every: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dataset not in datasets.DATASETS:
            raise ValueError(f"dataset must be one of {datasets.DATASETS}, got {self.dataset!r}")
        if not self.hidden or not self.widths or min(*self.hidden, *self.widths) < 1:
            raise ValueError(f"hidden and widths must list positive layer widths, got {self.hidden}, {self.widths}")
        if self.examples < 2 or not self.zs or min(self.zs) <= 0 or self.lanczos_steps < 2 or self.probes < 1:
            raise ValueError(f"need examples ≥ 2, curvature scales zs > 0, lanczos_steps ≥ 2 and probes ≥ 1; got "
                             f"{self.examples}, {self.zs}, {self.lanczos_steps}, {self.probes}")
        if self.trajectory_every < 1:
            raise ValueError(f"trajectory_every must be ≥ 1 step, got {self.trajectory_every}")


PRESETS = {
    "ci": SpectraSettings(),
    "cpu": SpectraSettings(hidden=(64, 64), epochs=60, examples=1_200, widths=(8, 16, 32, 64, 128, 256, 512, 1024),
                           lanczos_steps=80, probes=8),
    "gpu": SpectraSettings(dataset="fashion_mnist", hidden=(64, 64), epochs=30, examples=5_000,
                           widths=(16, 32, 64, 128, 256, 512, 1024, 2048), lanczos_steps=100, probes=10),
}


def load_data(settings: SpectraSettings, scale: str | None = None, device=None) -> datasets.Dataset:
    """The data set at the scale's sizes."""
    return datasets.load(settings.dataset, scale=scale, device=device)


def _network(data: datasets.Dataset, hidden: tuple[int, ...], seed: int) -> nn.Module:
    return models.build("mlp", data.input_shape, data.num_classes, seed=seed, hidden=hidden)


def train_network(settings: SpectraSettings, data: datasets.Dataset, seed: int = 0,
                  hidden: tuple[int, ...] | None = None) -> tuple[nn.Module, spectra.WeightTrajectory]:
    """A trained MLP (``hidden`` widths, the settings' by default) and its weight trajectory (from the start)."""
    model = _network(data, hidden or settings.hidden, seed)
    trajectory = spectra.WeightTrajectory(settings.trajectory_every)
    trajectory.record(model)
    fit(model, data, seed=seed, hooks=[trajectory], progress=False, **settings.fit_kwargs())
    return model, trajectory


def _examples(settings: SpectraSettings, data: datasets.Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``examples`` training examples, in float64 (the spectra's small eigenvalues need it)."""
    n = min(settings.examples, len(data.y_train))
    return data.x_train[:n].double(), data.y_train[:n]


def linear_layers(model: nn.Module) -> list[str]:
    """The names of the model's Linear layers, input first."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]


def layer_spectra(model: nn.Module, data: datasets.Dataset, settings: SpectraSettings,
                  seed: int = 0) -> pd.DataFrame:
    """Every Linear layer's three spectra, exact, in one long table (``layer``, ``matrix``, ``rank``,
    ``eigenvalue``, descending per layer and matrix): the covariance of the layer's inputs over the whole
    training split (the data for the first layer), and the blocks of the Hessian and of the (true) Fisher of
    the mean cross-entropy with respect to its weights, on the first ``examples`` training examples; all in
    float64."""
    x, y = _examples(settings, data)
    model = copy.deepcopy(model).double()
    modules = dict(model.named_modules())
    inputs = {}
    hooks = [modules[name].register_forward_hook(lambda m, args, out, name=name: inputs.__setitem__(name, args[0]))
             for name in linear_layers(model)]
    try:
        with torch.no_grad():
            model.eval()(data.x_train.double())
    finally:
        for h in hooks:
            h.remove()
    rows = []
    for i, name in enumerate(linear_layers(model)):
        label = f"layer {i + 1} ({modules[name].in_features} → {modules[name].out_features})"
        weight = [f"{name}.weight"]
        found = {
            "input covariance": spectra.input_spectrum(inputs[name]),
            "Hessian": torch.linalg.eigvalsh(spectra.HessianOperator(model, x, y, params=weight).matrix()).flip(0),
            "Fisher": spectra.fisher_eigenvalues(model, x, y, "true", params=weight,
                                                 generator=torch.Generator().manual_seed(seed)),
        }
        for matrix, values in found.items():
            rows += [{"layer": label, "matrix": matrix, "rank": r + 1, "eigenvalue": float(v)}
                     for r, v in enumerate(values)]
    return pd.DataFrame(rows)


def gaussian_spectrum(data: datasets.Dataset, seed: int = 0) -> torch.Tensor:
    """The covariance spectrum of Gaussian inputs of the training inputs' shape: the non-sloppy reference."""
    noise = torch.randn(data.x_train.shape, generator=torch.Generator().manual_seed(seed))
    return spectra.input_spectrum(noise)


def spans(table: pd.DataFrame) -> pd.DataFrame:
    """Per layer and matrix: the number of eigenvalues, how many are positive, and the decades they span
    (:func:`coursekit.methods.spectra.decades`)."""
    rows = []
    for (layer, matrix), part in table.groupby(["layer", "matrix"], sort=False):
        values = torch.tensor(part["eigenvalue"].to_numpy())
        rows.append({"layer": layer, "matrix": matrix, "eigenvalues": len(values),
                     "positive": int((values > 0).sum()), "decades": spectra.decades(values)})
    return pd.DataFrame(rows)


def effective_dimensions(settings: SpectraSettings, data: datasets.Dataset, seed: int = 0,
                         progress: bool = True) -> pd.DataFrame:
    """For each one-hidden-layer width and curvature scale ``z``: the parameter count, the Hessian's top
    eigenvalue (Lanczos) and its effective dimension ``Σ λ/(λ + z)`` over the positive curvature, estimated by
    stochastic Lanczos quadrature (:func:`coursekit.methods.spectra.spectral_nodes`) on the trained network."""
    x, y = _examples(settings, data)
    rows = []
    for width in tqdm(settings.widths, desc="widths", disable=not progress):
        model, _ = train_network(settings, data, seed, hidden=(width,))
        operator = spectra.HessianOperator(model.double(), x, y)
        gen = torch.Generator().manual_seed(seed)
        nodes, weights = spectra.spectral_nodes(operator.matvec, operator.dim, settings.lanczos_steps,
                                                settings.probes, generator=gen)
        for z in settings.zs:
            d_eff = spectra.effective_dimension(nodes.clamp(min=0), z, weights)
            rows.append({"width": width, "z": z, "parameters": operator.dim, "top eigenvalue": float(nodes.max()),
                         "effective dimension": d_eff, "share": d_eff / operator.dim})
    return pd.DataFrame(rows)


def headline(table: pd.DataFrame, gaussian: torch.Tensor, dimensions: pd.DataFrame,
             trajectory: torch.Tensor, z: float = 1e-2) -> list[Claim]:
    """Lecture 15's checks, weak forms that hold at ``ci`` scale for seeds 0–4.

    The data's covariance spans more than 5 decades, Gaussian inputs' less than one; the Hessian and the Fisher
    of the first layer span more than 4; at the curvature scale ``z`` the effective dimension of the widest
    network is below a tenth of its parameter count (at ``ci``: 2 %), and that share falls as the width grows; the first three directions of the weight trajectory hold
    more than 70 % of its variance.
    """
    found = spans(table).set_index(["layer", "matrix"])
    first = found.index.get_level_values("layer")[0]
    by_width = rows_where(dimensions, "z", z, "headline").sort_values("width")
    return [
        Claim("data covariance: decades spanned", found.loc[(first, "input covariance"), "decades"], ">", 5),
        Claim("Gaussian inputs: decades spanned", spectra.decades(gaussian), "<", 1),
        Claim("layer 1 Hessian: decades spanned", found.loc[(first, "Hessian"), "decades"], ">", 4),
        Claim("layer 1 Fisher: decades spanned", found.loc[(first, "Fisher"), "decades"], ">", 4),
        Claim(f"widest network: effective dimension / parameters (z = {z:g})", by_width["share"].iloc[-1], "<", 0.1),
        Claim("share at the widest − at the narrowest", by_width["share"].iloc[-1] - by_width["share"].iloc[0],
              "<", 0),
        Claim("trajectory: variance in the first 3 directions", float(trajectory[:3].sum()), ">", 0.7),
    ]


# ------------------------------------------------------------------ figures

def plot_spectra(table: pd.DataFrame, gaussian: torch.Tensor) -> Figure:
    """The headline figure: the first layer's three spectra, each over its largest eigenvalue, against the
    relative rank, on a log scale; Gaussian inputs' covariance for reference."""
    first = table["layer"].iloc[0]
    part = rows_where(table, "layer", first, "plot_spectra")
    with styled():
        fig, ax = plt.subplots(figsize=(9, 4.6), layout="constrained")
        curves = {m: torch.tensor(rows_where(part, "matrix", m, "plot_spectra")["eigenvalue"].to_numpy())
                  for m in MATRICES} | {"Gaussian inputs": gaussian}
        for name, values in curves.items():
            kept = values[values > 1e-12 * values.max()]
            ax.plot(np.arange(1, len(kept) + 1) / len(values), (kept / kept.max()).numpy(), color=COLORS[name],
                    lw=2, ls="--" if name == "Gaussian inputs" else "-",
                    label=f"{name} ({spectra.decades(values):.1f} decades)")
        ax.set_yscale("log")
        ax.set_xlabel("rank / number of eigenvalues")
        ax.set_ylabel("eigenvalue / largest")
        percent(ax.xaxis)
        ax.set_title(f"{first}: the data's covariance, and the Hessian and Fisher of its weights", fontsize=10)
        ax.legend(fontsize="small", loc="lower left")
    return fig


def plot_layer(table: pd.DataFrame, layer: str, matrix: str, z: float | None = None) -> Figure:
    """The widget's figure: one layer's spectrum of one matrix — eigenvalues by rank (log scale) and a histogram
    of their logarithms (a sloppy spectrum is flat there) — with the effective dimension at ``z`` if given."""
    part = rows_where(rows_where(table, "layer", layer, "plot_layer"), "matrix", matrix, "plot_layer")
    values = torch.tensor(part["eigenvalue"].to_numpy())
    kept = values[values > 1e-12 * values.max()]
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.0), layout="constrained")
        left.plot(np.arange(1, len(kept) + 1), kept.numpy(), color=COLORS[matrix], lw=2)
        left.set_yscale("log")
        left.set_xlabel("rank")
        left.set_ylabel("eigenvalue")
        title = f"{layer}, {matrix}: {len(values)} eigenvalues, {spectra.decades(values):.1f} decades"
        if z is not None and matrix != "input covariance":
            d_eff = spectra.effective_dimension(values.clamp(min=0), z)
            left.axhline(z, color="0.3", ls=":", lw=1, label=f"z = {z:g}: effective dimension {d_eff:.1f}")
            left.legend(fontsize="small", loc="upper right")
        left.set_title(title, fontsize=10)
        right.hist(np.log10(kept.numpy()), bins=30, color=COLORS[matrix], alpha=0.8)
        right.set_xlabel("log10 eigenvalue")
        right.set_ylabel("eigenvalues")
    return fig


def plot_dimensions(dimensions: pd.DataFrame) -> Figure:
    """Effective dimension against the parameter count over the widths, one line per curvature scale ``z``,
    with the diagonal ``d = P``."""
    with styled():
        fig, ax = plt.subplots(figsize=(8, 4.4), layout="constrained")
        widths = dimensions.drop_duplicates("width").sort_values("width")
        ax.plot(widths["parameters"], widths["parameters"], color="0.6", ls="--", label="= the parameter count")
        for i, (z, part) in enumerate(dimensions.sort_values("width").groupby("z")):
            ax.plot(part["parameters"], part["effective dimension"], marker="o", color=f"C{i}", lw=2,
                    label=f"Hessian, z = {z:g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        top = ax.secondary_xaxis("top")
        top.set_xticks(widths["parameters"].tolist(), [f"{w:.0f}" for w in widths["width"]])
        top.minorticks_off()
        top.set_xlabel("hidden units")
        ax.set_xlabel("parameters (one hidden layer)")
        ax.set_ylabel("effective dimension  Σ λ / (λ + z)")
        ax.legend(fontsize="small", loc="upper left")
    return fig


def plot_trajectory(trajectory: spectra.WeightTrajectory, shown: int = 10) -> Figure:
    """The weight trajectory in its first two principal directions (colour: time), and the share of its
    variance in each direction with the cumulative share."""
    shares = trajectory.pca()
    shown = min(shown, len(shares))
    coords = trajectory.coordinates(2).numpy()
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.0), layout="constrained")
        dots = left.scatter(coords[:, 0], coords[:, 1], c=np.arange(len(coords)), cmap="viridis", s=14)
        left.plot(coords[:, 0], coords[:, 1], color="0.7", lw=0.8, zorder=0)
        left.set_xlabel(f"direction 1 ({shares[0]:.0%} of the variance)")
        left.set_ylabel(f"direction 2 ({shares[1]:.0%})")
        left.set_title("the weights during training, projected", fontsize=10)
        fig.colorbar(dots, ax=left, label=f"snapshot (every {trajectory.every} steps)")
        ranks = np.arange(1, shown + 1)
        right.bar(ranks, shares[:shown].numpy(), color="C0", label="this direction")
        right.plot(ranks, shares[:shown].cumsum(0).numpy(), marker="o", color="C3", label="the first ones together")
        right.set_xticks(ranks)
        right.set_xlabel("principal direction of the weight trajectory")
        right.set_ylabel("share of the variance")
        right.set_ylim(0, 1.03)
        percent(right.yaxis)
        right.legend(fontsize="small", loc="center right")
    return fig
