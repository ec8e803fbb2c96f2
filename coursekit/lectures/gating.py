"""Lecture 08's experiments: Hebbian pruning, redundant populations and gates (slide 9).

Three ways to find what a trained network does not need, each from its activity:

* **Hebbian** (:mod:`coursekit.methods.hebbian`): keep the connections whose two ends
  fire together, against magnitude at equal density (:func:`hebbian_vs_magnitude`);
* **redundant populations**: Principal Filter Analysis (Suau et al. 2020,
  :mod:`coursekit.methods.pfa`) reads a width per layer off the spectrum of its
  responses (:func:`spectra`, :func:`pfa_widths`: the narrow network is re-trained
  from scratch); the mutual information of each unit with the label (Dai et al. 2018's
  view; :func:`coursekit.methods.mutual_info.unit_label_information`) ranks units to
  keep (:func:`informative_units`);
* **gates** (Louizos et al. 2018; :mod:`coursekit.methods.gates`): a gate per unit trained
  with an expected-L0 penalty λ; the closed units are removed by surgery, so the
  smaller network is real (:func:`gate_sweep`).

The network is LeNet-300-100; its two hidden layers (``"1"`` and ``"3"``) are the
populations. The figures are here too (``plot_*``).
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
from coursekit.core.claims import Claim
from coursekit.core.data import Dataset
from coursekit.core.masks import prunable_parameters
from coursekit.core.plots import percent, require_columns, rows_where, styled
from coursekit.core.progress import tqdm
from coursekit.core.train import TrainSettings, evaluate, fit
from coursekit.methods import gates, hebbian, mutual_info, pfa, saliency, structured

LAYERS = ("1", "3")  # LeNet-300-100's hidden Linear layers


@dataclass(frozen=True)
class GatingSettings(TrainSettings):
    """The knobs of ``lectures/08_gating.ipynb`` (training ones from :class:`TrainSettings`).

    ``examples``: training examples whose responses the Hebbian, PFA and MI statistics
    see; ``taus``: PFA's energy fractions; ``units_kept``: widths of the first hidden layer
    for the MI ranking; ``lambdas``: L0 penalty weights per open gate; ``gate_lr_scale``:
    the gates learn this many times faster than the weights (a gate must travel from
    ``log α ≈ 2`` to below −2.4 to close, far more than a weight moves).
    """

    model: str = "lenet300_100"
    epochs: int = 8
    examples: int = 2000
    densities: tuple[float, ...] = (0.5, 0.2, 0.1, 0.05)
    finetune_epochs: int = 1
    taus: tuple[float, ...] = (0.8, 0.9, 0.95, 0.99)
    mi_bins: int = 10
    units_kept: tuple[int, ...] = (150, 75, 30, 10)
    kinds: tuple[str, ...] = gates.KINDS
    lambdas: tuple[float, ...] = (0.0, 1e-3, 3e-3, 1e-2, 3e-2)
    gate_lr_scale: float = 30.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model != "lenet300_100":
            raise ValueError(f"GatingSettings.model must be 'lenet300_100' (its hidden layers are the populations), "
                             f"got {self.model!r}")
        if not self.densities or not all(0 < d <= 1 for d in self.densities):
            raise ValueError(f"GatingSettings.densities must lie in (0, 1], got {self.densities}")
        if not self.taus or not all(0 < t <= 1 for t in self.taus):
            raise ValueError(f"GatingSettings.taus (energy fractions τ) must lie in (0, 1], got {self.taus}")
        if not self.units_kept or not all(0 < k <= 300 for k in self.units_kept):
            raise ValueError(f"GatingSettings.units_kept must lie in 1..300 (the first hidden layer), got "
                             f"{self.units_kept}")
        if not self.lambdas or not all(lam >= 0 for lam in self.lambdas):
            raise ValueError(f"GatingSettings.lambdas (L0 penalty weights) must be ≥ 0, got {self.lambdas}")
        unknown = [k for k in self.kinds if k not in gates.KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"GatingSettings.kinds must be some of {gates.KINDS}, got {self.kinds}")
        if self.examples < 2 or self.finetune_epochs < 1 or self.mi_bins < 2 or not self.gate_lr_scale > 0:
            raise ValueError("GatingSettings needs examples ≥ 2, finetune_epochs ≥ 1, mi_bins ≥ 2 and "
                             "gate_lr_scale > 0")


PRESETS = {
    "ci": GatingSettings(densities=(0.2, 0.05), taus=(0.9, 0.99), units_kept=(75, 20),
                         lambdas=(0.0, 3e-3, 1e-2, 3e-2)),
    "cpu": GatingSettings(),
    "gpu": GatingSettings(epochs=20, examples=5000, densities=(0.5, 0.2, 0.1, 0.05, 0.02),
                          taus=(0.8, 0.9, 0.95, 0.98, 0.99, 0.999), lambdas=(0.0, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)),
}


@dataclass
class DenseRun:
    """The trained network and its test accuracy."""

    model: nn.Sequential
    test_acc: float
    seed: int


def _fit(settings: GatingSettings, model: nn.Module, data: Dataset, seed: int, **extra) -> float:
    """Train ``model`` on one thread (it is small) and return its final test accuracy."""
    with runtime.one_thread(data.device):
        result = fit(model, data, **settings.fit_kwargs(), seed=seed, eval_test=True, progress=False, **extra)
    return float(result.final["test_acc"])


def train_dense(settings: GatingSettings, data: Dataset, seed: int = 0) -> DenseRun:
    """Train the network whose activity every experiment reads."""
    model = models.build(settings.model, data.input_shape, data.num_classes, seed=seed, device=data.device)
    return DenseRun(model, _fit(settings, model, data, seed), seed)


def _examples(settings: GatingSettings, data: Dataset) -> torch.Tensor:
    return data.x_train[:settings.examples]


def hebbian_vs_magnitude(settings: GatingSettings, data: Dataset, dense: DenseRun):
    """Test accuracy of Hebbian, magnitude and random masks at each density (layer-wise),
    one-shot and after ``finetune_epochs`` under the mask. Returns the table (``criterion``,
    ``density``, ``one_shot``, ``fine_tuned``) and the masks."""
    weights = prunable_parameters(dense.model)
    gen = torch.Generator().manual_seed(dense.seed)
    scores = {"Hebbian": hebbian.coactivation_scores(dense.model, _examples(settings, data)),
              "magnitude": {n: w.detach().abs() for n, w in weights.items()},
              "random": {n: torch.rand(w.shape, generator=gen).to(w.device) for n, w in weights.items()}}
    finetune = settings.fit_kwargs() | {"epochs": settings.finetune_epochs}
    with runtime.one_thread(data.device):
        table, masks = saliency.accuracy_at_densities(dense.model, data, scores, settings.densities, "layerwise",
                                                      finetune=finetune, seed=dense.seed)
    return table.rename(columns={"method": "criterion", "test_acc": "one_shot",
                                 "fine_tuned_acc": "fine_tuned"}), masks


def spectra(settings: GatingSettings, data: Dataset, dense: DenseRun) -> pd.DataFrame:
    """Per hidden layer, the eigenvalues of its response covariance, largest first:
    ``layer``, ``k`` (1-based), ``eigenvalue``, ``energy`` (the share of the top ``k``)."""
    rows = []
    for layer in LAYERS:
        e = pfa.spectrum(models.responses(dense.model, layer, _examples(settings, data)))
        share = (e.cumsum(0) / e.sum().clamp_min(1e-300)).tolist()
        rows += [{"layer": layer, "k": k + 1, "eigenvalue": float(v), "energy": s}
                 for k, (v, s) in enumerate(zip(e.tolist(), share, strict=True))]
    return pd.DataFrame(rows)


def _narrow_accuracy(settings: GatingSettings, data: Dataset, widths: tuple[int, ...], seed: int) -> float:
    net = models.build("mlp", data.input_shape, data.num_classes, seed=seed, device=data.device, hidden=widths)
    return _fit(settings, net, data, seed)


def pfa_widths(settings: GatingSettings, data: Dataset, dense: DenseRun, progress: bool = True) -> pd.DataFrame:
    """The widths PFA picks — the energy rule at each τ and the KL rule — and the test
    accuracy of a network of those widths trained from scratch, beside the trained widths.

    Rows: ``rule`` (``trained``, ``energy`` or ``KL``), ``tau``, one ``units <layer>``
    column per hidden layer, ``parameters`` and ``test_acc``.
    """
    x = _examples(settings, data)
    eigen = {layer: pfa.spectrum(models.responses(dense.model, layer, x)) for layer in LAYERS}
    trained = tuple(dense.model[int(layer)].out_features for layer in LAYERS)
    choices = [("trained", np.nan, trained)]
    choices += [("energy", tau, tuple(pfa.energy_width(eigen[layer], tau) for layer in LAYERS))
                for tau in settings.taus]
    choices.append(("KL", np.nan, tuple(pfa.kl_width(eigen[layer]) for layer in LAYERS)))
    rows = []
    for rule, tau, widths in tqdm(choices, desc="narrow networks", disable=not progress):
        acc = dense.test_acc if rule == "trained" else _narrow_accuracy(settings, data, widths, dense.seed)
        net = models.build("mlp", data.input_shape, data.num_classes, hidden=widths)
        rows.append({"rule": rule, "tau": tau, **{f"units {layer}": w for layer, w in zip(LAYERS, widths, strict=True)},
                     "parameters": structured.count_parameters(net), "test_acc": acc})
    return pd.DataFrame(rows)


def informative_units(settings: GatingSettings, data: Dataset, dense: DenseRun) -> pd.DataFrame:
    """Keep ``units_kept`` units of the first hidden layer, chosen by their mutual information
    with the label, by their variance, or at random; the others go with mean replacement.

    Rows: ``kept``, ``ranking``, ``test_acc`` (no retraining).
    """
    x, y = _examples(settings, data), data.y_train[:settings.examples]
    layer = LAYERS[0]
    t = models.responses(dense.model, layer, x)
    order = {"mutual information with the label": mutual_info.unit_label_information(t, y, settings.mi_bins),
             "variance": t.var(0),
             "random": torch.rand(t.shape[1], generator=torch.Generator().manual_seed(dense.seed))}
    rows = []
    for ranking, score in order.items():
        ranked = score.cpu().argsort(descending=True, stable=True).tolist()
        for kept in settings.units_kept:
            pruned = saliency.remove_units(dense.model, layer, ranked[kept:], x)
            rows.append({"kept": kept, "ranking": ranking,
                         "test_acc": evaluate(pruned, *data.split("test"))["acc"]})
    return pd.DataFrame(rows)


def gate_sweep(settings: GatingSettings, data: Dataset, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Train a gated LeNet-300-100 for every gate kind × λ, then remove the closed units.

    Rows: ``kind``, ``lambda``, ``open <layer>`` per hidden layer, ``parameters`` (of the
    network after surgery), ``gated_acc`` (the gated network at test time) and ``test_acc``
    (the network after surgery: the same, up to float rounding).
    """
    rows = []
    jobs = [(kind, lam) for kind in settings.kinds for lam in settings.lambdas]
    for kind, lam in tqdm(jobs, desc="gated training", disable=not progress):
        base = models.build(settings.model, data.input_shape, data.num_classes, seed=seed, device=data.device)
        gated = gates.gate_units(base, LAYERS, kind=kind)
        acc = _fit(settings, gated, data, seed, penalty=gates.l0_penalty(lam),
                   lr_scales={"gate": settings.gate_lr_scale})
        small = gates.remove_closed(gated.eval())
        table = gates.gate_table(gated).set_index("gate")["open"]
        rows.append({"kind": kind, "lambda": lam,
                     **{f"open {layer}": int(table[f"gate{layer}"]) for layer in LAYERS},
                     "parameters": structured.count_parameters(small), "gated_acc": acc,
                     "test_acc": evaluate(small, *data.split("test"))["acc"]})
    return pd.DataFrame(rows)


def headline(heb: pd.DataFrame, widths: pd.DataFrame, swept: pd.DataFrame, dense_acc: float,
             lam: float = 1e-2) -> list[Claim]:
    """Lecture 08's checks, weak forms of the slide's claims.

    At 20 % density, one-shot, Hebbian masks beat random ones and magnitude masks beat Hebbian
    ones (in test loss: the accuracy of a pruned, untuned network moves too much from seed to
    seed to call, and after fine-tuning on the `cpu` scale's data every mask recovers);
    the network at PFA-KL's widths, re-trained from scratch, stays near the original with
    far fewer parameters; hard-concrete gates trained with the L0 penalty ``lam`` remove
    most parameters at a small cost in accuracy.
    """
    loss = rows_where(heb, "density", 0.2, "headline").set_index("criterion")["test_loss"]
    kl = widths.set_index("rule").loc["KL"]
    trained = widths.set_index("rule").loc["trained"]
    gated = rows_where(swept[swept["kind"] == "hard_concrete"], "lambda", lam, "headline").iloc[0]
    return [
        Claim("random's test loss minus Hebbian's, one-shot at 20%", loss["random"] - loss["Hebbian"], ">", 0.3),
        Claim("Hebbian's test loss minus magnitude's, one-shot at 20%", loss["Hebbian"] - loss["magnitude"],
              ">", 0.1),
        Claim("re-trained PFA-KL network minus the original, test accuracy", kl["test_acc"] - dense_acc, ">", -0.07),
        Claim("PFA-KL network's parameters over the original's", kl["parameters"] / trained["parameters"], "<", 0.7),
        Claim(f"hard-concrete gates, λ = {lam:g}: share of parameters removed",
              1 - gated["parameters"] / trained["parameters"], ">", 0.6),
        Claim(f"hard-concrete gates, λ = {lam:g}: test accuracy minus dense", gated["test_acc"] - dense_acc, ">", -0.1),
    ]


# ------------------------------------------------------------------ figures

def plot_spectra(spec: pd.DataFrame, widths: pd.DataFrame) -> Figure:
    """Per hidden layer: the cumulative energy of its spectrum, with the widths each rule picks."""
    require_columns(spec, ["layer", "k", "energy"], "plot_spectra")
    require_columns(widths, ["rule", "tau"], "plot_spectra")
    layers = list(spec["layer"].unique())
    with styled():
        fig, axes = plt.subplots(1, len(layers), figsize=(5.2 * len(layers), 4.0), layout="constrained")
        for ax, layer in zip(np.atleast_1d(axes), layers, strict=True):
            part = spec[spec["layer"] == layer]
            ax.plot(part["k"], part["energy"], color="0.2", lw=2, label="top-k eigenvalues' share")
            ax.set_xscale("log")
            column = f"units {layer}"
            for i, (_, row) in enumerate(widths[widths["rule"] == "energy"].iterrows()):
                k = int(row[column])
                share = float(part.loc[part["k"] == k, "energy"].iloc[0])  # ≥ τ: the first k that reaches it
                ax.plot([k], [share], "o", color=f"C{i}", ms=8, label=f"energy τ = {row['tau']:g}: {k} units")
            kl = int(widths.loc[widths["rule"] == "KL", column].iloc[0])
            ax.axvline(kl, color="0.3", ls="--", label=f"KL rule: {kl} units")
            trained = int(widths.loc[widths["rule"] == "trained", column].iloc[0])
            ax.set_xlim(0.9, trained * 1.1)
            ax.set_xlabel("k (eigen-directions kept)")
            ax.set_title(f"layer {layer}: {trained} units")
            percent(ax.yaxis)
            ax.legend(fontsize="small", loc="lower right")
        np.atleast_1d(axes)[0].set_ylabel("share of the response variance")
    return fig


def plot_pfa_choice(widths: pd.DataFrame, tau: float) -> Figure:
    """The widget's figure: the widths the energy rule picks at ``tau`` against the trained
    widths and the KL rule, with parameters and re-trained accuracy."""
    require_columns(widths, ["rule", "tau", "parameters", "test_acc"], "plot_pfa_choice")
    chosen = rows_where(widths[widths["rule"] == "energy"], "tau", tau, "plot_pfa_choice")
    table = pd.concat([widths[widths["rule"] == "trained"], chosen, widths[widths["rule"] == "KL"]])
    names = ["trained", f"energy τ = {tau:g}", "KL"]
    layers = [c for c in widths.columns if c.startswith("units ")]
    with styled():
        fig, (left, mid, right) = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
        x = np.arange(len(layers))
        for i, (name, row) in enumerate(zip(names, table.itertuples(), strict=True)):
            values = [table.iloc[i][c] for c in layers]
            bars = left.bar(x + (i - 1) * 0.27, values, 0.27, color=f"C{i}", label=name)
            left.bar_label(bars, fontsize=8)
            mid.bar(i, row.parameters, color=f"C{i}")
            mid.text(i, row.parameters, f"{row.parameters / 1000:.0f}k", ha="center", va="bottom", fontsize=9)
            right.bar(i, row.test_acc, color=f"C{i}")
            right.text(i, row.test_acc, f"{row.test_acc:.1%}", ha="center", va="bottom", fontsize=9)
        left.set_xticks(x, [c.replace("units ", "layer ") for c in layers])
        left.set_ylabel("units")
        left.legend(fontsize="small")
        for ax in (mid, right):
            ax.set_xticks(range(len(names)), names, rotation=15)
        mid.set_ylabel("parameters")
        mid.yaxis.set_major_formatter(lambda v, _: f"{v / 1000:.0f}k")
        right.set_ylabel("test accuracy (re-trained)")
        right.set_ylim(max(0.0, table["test_acc"].min() - 0.15), 1)
        percent(right.yaxis)
    return fig


def plot_informative_units(informative: pd.DataFrame) -> Figure:
    """Test accuracy vs units kept in the first hidden layer, per ranking (mean replacement, no retraining)."""
    require_columns(informative, ["kept", "ranking", "test_acc"], "plot_informative_units")
    with styled():
        fig, ax = plt.subplots(figsize=(6.5, 4.0), layout="constrained")
        for i, (ranking, part) in enumerate(informative.groupby("ranking", sort=False)):
            ax.plot(part["kept"], part["test_acc"], marker="o", color="0.5" if ranking == "random" else f"C{i}",
                    ls="--" if ranking == "random" else "-", label=ranking)
        ax.set_xscale("log")
        kept = sorted(informative["kept"].unique())
        ax.set_xticks(kept, [str(k) for k in kept])
        ax.minorticks_off()
        ax.set_xlabel("units kept in the first hidden layer (of 300)")
        ax.set_ylabel("test accuracy, no retraining")
        percent(ax.yaxis)
        ax.legend(fontsize="small")
    return fig


def plot_gates(swept: pd.DataFrame, dense_params: int, dense_acc: float) -> Figure:
    """Test accuracy vs parameters left after surgery, one point per λ, one line per gate kind."""
    require_columns(swept, ["kind", "lambda", "parameters", "test_acc"], "plot_gates")
    with styled():
        fig, ax = plt.subplots(figsize=(7.5, 4.4), layout="constrained")
        for i, (kind, part) in enumerate(swept.groupby("kind", sort=False)):
            part = part.sort_values("lambda")
            ax.plot(part["parameters"], part["test_acc"], marker="o", color=f"C{i}", label=kind.replace("_", " "))
            for _, row in part.iterrows():
                ax.annotate(f"λ={row['lambda']:g}", (row["parameters"], row["test_acc"]), fontsize=8,
                            xytext=(4, -10 if i else 4), textcoords="offset points", color=f"C{i}")
        ax.plot([dense_params], [dense_acc], "k*", ms=12, label="dense network")
        ax.set_xscale("log")
        ax.set_xlabel("parameters after removing closed units")
        ax.set_ylabel("test accuracy")
        percent(ax.yaxis)
        ax.legend(fontsize="small", loc="lower right")
    return fig

