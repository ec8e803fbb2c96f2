"""Lecture 07's experiments: every data-dependent saliency on one trained network (slide 8).

Magnitude asks how large a weight is; the saliencies of :mod:`coursekit.methods.saliency`
ask the data how much the loss needs it: Taylor ``|g·w|`` (Molchanov et al. 2019), OBD
``½ H_qq w_q²`` with a Hutchinson or an exact Gauss-Newton diagonal (LeCun et al. 1990),
SNIP at initialisation (Lee et al. 2019) and movement during training (Sanh et al.
2020). :func:`train_dense` trains LeNet-300-100 once (collecting movement scores);
:func:`all_scores` scores it with every criterion on the same examples, and the
lecture's experiments compare them:

* :func:`correlations`: Spearman rank correlation between every two criteria;
* :func:`density_sweep`: test accuracy at equal density, one-shot and after a short fine-tune
  (drawn by :func:`coursekit.core.plots.accuracy_vs_density`);
* :func:`obs_vs_removal`: Optimal Brain Surgeon's weight update against removing the
  same weights (or the smallest ones) without it (Hassibi & Stork 1993);
* :func:`mean_replacement`: the units that hardly vary, removed with and without their
  mean folded into the next bias (Evci et al. 2018).

The figures are here too (``plot_*``); the widget draws :func:`coursekit.core.plots.mask_and_accuracy`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from torch import nn

from coursekit.core import models, runtime
from coursekit.core.claims import Claim
from coursekit.core.data import Dataset
from coursekit.core.masks import prunable_parameters
from coursekit.core.plots import percent, require_columns, rows_where, styled
from coursekit.core.pruning import SCOPES
from coursekit.core.train import TrainSettings, evaluate, fit
from coursekit.methods import saliency
from coursekit.methods.saliency import Scores

CRITERIA = ("magnitude", "taylor", "obd", "obd_ggn", "snip", "movement", "random")
LABELS = {"magnitude": "magnitude |w|", "taylor": "Taylor |g·w|", "obd": "OBD (Hutchinson)",
          "obd_ggn": "OBD (exact GGN)", "snip": "SNIP (at init)", "movement": "movement",
          "random": "random"}


@dataclass(frozen=True)
class SaliencySettings(TrainSettings):
    """The knobs of ``lectures/07_saliency.ipynb`` (training ones from :class:`TrainSettings`).

    ``examples``: the training examples every saliency sees; ``obs_layer``: the Linear layer
    OBS works on (its exact Hessian is ``n² `` entries: LeNet's last layer, 1 000 weights);
    ``unit_layer``: the layer whose low-variance units are removed.
    """

    epochs: int = 8
    criteria: tuple[str, ...] = CRITERIA
    densities: tuple[float, ...] = (0.5, 0.2, 0.1, 0.05, 0.02)
    scope: str = "global"
    examples: int = 1000
    finetune_epochs: int = 1
    obs_layer: str = "5"
    obs_removed: tuple[int, ...] = (300, 500, 700, 800, 850, 900)
    unit_layer: str = "3"
    units_removed: tuple[int, ...] = (20, 40, 60, 80, 90)

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [c for c in self.criteria if c not in CRITERIA]
        if unknown or not self.criteria:
            raise ValueError(f"SaliencySettings.criteria must be some of {CRITERIA}, got {self.criteria}")
        if not self.densities or not all(0 < d <= 1 for d in self.densities):
            raise ValueError(f"SaliencySettings.densities must lie in (0, 1], got {self.densities}")
        if self.scope not in SCOPES:
            raise ValueError(f"SaliencySettings.scope must be one of {SCOPES}, got {self.scope!r}")
        for name in ("examples", "finetune_epochs"):
            if getattr(self, name) < 1 + (name == "examples"):
                raise ValueError(f"SaliencySettings.{name} is too small: {getattr(self, name)}")
        for name in ("obs_removed", "units_removed"):
            counts = getattr(self, name)
            if not counts or any(k < 1 for k in counts) or list(counts) != sorted(set(counts)):
                raise ValueError(f"SaliencySettings.{name} must be increasing positive counts, got {counts}")


PRESETS = {
    "ci": SaliencySettings(epochs=6, densities=(0.2, 0.05, 0.02), obs_removed=(500, 700, 800),
                           units_removed=(40, 60, 80)),
    "cpu": SaliencySettings(epochs=8),
    "gpu": SaliencySettings(epochs=20, densities=(0.5, 0.2, 0.1, 0.05, 0.02, 0.01), examples=5000,
                            finetune_epochs=2),
}


@dataclass
class DenseRun:
    """The trained network, the same network at its initialisation, and its movement scores."""

    model: nn.Sequential
    init: nn.Sequential
    movement: Scores
    test_acc: float
    seed: int


def train_dense(settings: SaliencySettings, data: Dataset, seed: int = 0, progress: bool = True) -> DenseRun:
    """Train the network every experiment scores, accumulating movement scores (Sanh et al. 2020)."""
    model = models.build(settings.model, data.input_shape, data.num_classes, seed=seed, device=data.device)
    init = copy.deepcopy(model)
    movement = saliency.Movement(model)
    with runtime.one_thread(data.device):
        result = fit(model, data, **settings.fit_kwargs(), seed=seed, hooks=[movement], eval_test=True,
                     progress=progress, desc="dense network")
    return DenseRun(model, init, movement.scores, float(result.final["test_acc"]), seed)


def score_batch(settings: SaliencySettings, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The training examples the saliencies (and OBS's Hessian) are computed on."""
    return data.x_train[:settings.examples], data.y_train[:settings.examples]


def all_scores(settings: SaliencySettings, data: Dataset, dense: DenseRun) -> dict[str, Scores]:
    """Every criterion's scores for the prunable weights of the trained network.

    SNIP scores the network at its initialisation, where Lee et al. use it; ``random``
    draws uniform scores (the baseline every criterion must beat).
    """
    x, y = score_batch(settings, data)
    gen = torch.Generator().manual_seed(dense.seed)
    out = {}
    for c in settings.criteria:
        if c == "movement":
            out[c] = {n: s.clone() for n, s in dense.movement.items()}
        elif c == "snip":
            out[c] = saliency.snip(dense.init, x, y)
        elif c == "random":
            out[c] = {n: torch.rand(w.shape, generator=gen).to(w.device)
                      for n, w in prunable_parameters(dense.model).items()}
        elif c == "obd":
            out[c] = saliency.obd(dense.model, x, y, generator=gen)
        else:
            out[c] = saliency.score(c, dense.model, x, y)
    return out


def correlations(scores: dict[str, Scores]) -> pd.DataFrame:
    """Spearman rank correlation between every two criteria, over all prunable weights together."""
    return saliency.rank_correlations({c: torch.cat([s[n].flatten() for n in sorted(s)])
                                       for c, s in scores.items()})


def density_sweep(settings: SaliencySettings, data: Dataset, dense: DenseRun, scores: dict[str, Scores],
                  progress: bool = True):
    """Test accuracy of each criterion's mask at each density: one-shot, and fine-tuned.

    Fine-tuning trains the pruned network for ``finetune_epochs`` under its mask, every
    (criterion, density) at once (:mod:`coursekit.core.batched`). Returns the table —
    ``criterion``, ``density``, ``test_loss``, ``one_shot``, ``fine_tuned`` — and the masks.
    """
    finetune = settings.fit_kwargs() | {"epochs": settings.finetune_epochs}
    with runtime.one_thread(data.device):
        table, masks = saliency.accuracy_at_densities(dense.model, data, scores, settings.densities,
                                                      settings.scope, finetune=finetune, seed=dense.seed,
                                                      progress=progress)
    table = table.rename(columns={"method": "criterion", "test_acc": "one_shot", "fine_tuned_acc": "fine_tuned"})
    return table, masks


@torch.no_grad()
def _zeroed(model: nn.Sequential, layer: str, weights: torch.Tensor) -> nn.Sequential:
    """A copy of ``model`` whose Linear ``layer`` has ``weights``."""
    out = copy.deepcopy(model)
    dict(out.named_children())[layer].weight.copy_(weights)
    return out


def obs_vs_removal(settings: SaliencySettings, data: Dataset, dense: DenseRun) -> pd.DataFrame:
    """Loss and accuracy after removing weights of ``obs_layer``: OBS with its update, the same
    weights zeroed without it, and the smallest weights zeroed.

    Rows: ``removed``, ``weights`` (the layer's), ``method``, ``loss`` (on the examples OBS's
    Hessian was computed on), ``test_acc`` and, for OBS, ``predicted`` (the dense loss plus
    the sum of its predicted increases: what its quadratic model expects). The model holds
    while the updates stay small: on LeNet's last layer, to about 85 % of its weights removed.
    """
    x, y = score_batch(settings, data)
    layer = dict(dense.model.named_children())[settings.obs_layer]
    n = layer.weight.numel()
    if settings.obs_removed[-1] >= n:
        raise ValueError(f"obs_removed goes up to {settings.obs_removed[-1]} but layer {settings.obs_layer!r} "
                         f"has {n} weights")
    base = evaluate(dense.model, x, y)["loss"]
    order = layer.weight.detach().abs().flatten().argsort()
    rows, removed, predicted = [], [], base
    for row, w in saliency.obs_path(dense.model, settings.obs_layer, x, y):
        removed.append(row["row"] * layer.in_features + row["col"])
        predicted += row["predicted_increase"]
        k = row["step"]
        if k not in settings.obs_removed:
            continue
        plain = layer.weight.detach().flatten().clone()
        plain[removed] = 0
        smallest = layer.weight.detach().flatten().clone()
        smallest[order[:k]] = 0
        for method, weights in (("OBS: remove and update", w.clone()),
                                ("OBS's choice, no update", plain.view_as(layer.weight)),
                                ("smallest |w|, no update", smallest.view_as(layer.weight))):
            net = _zeroed(dense.model, settings.obs_layer, weights.to(layer.weight.dtype))
            rows.append({"removed": k, "weights": n, "method": method, "loss": evaluate(net, x, y)["loss"],
                         "test_acc": evaluate(net, *data.split("test"))["acc"],
                         "predicted": predicted if method.startswith("OBS:") else np.nan})
        if k == settings.obs_removed[-1]:
            break
    return pd.DataFrame(rows)


@torch.no_grad()
def _next_layer_output(model: nn.Sequential, layer: str, x: torch.Tensor) -> torch.Tensor:
    """The output of the first Linear child after ``layer`` (what removing its units disturbs)."""
    names = list(dict(model.named_children()))
    after = next(i for i in range(names.index(layer) + 1, len(model)) if isinstance(model[i], nn.Linear))
    model.eval()
    return model[:after + 1](x)


def mean_replacement(settings: SaliencySettings, data: Dataset, dense: DenseRun) -> pd.DataFrame:
    """Remove the lowest-variance units of ``unit_layer``, with and without mean replacement.

    Units are ranked by the variance of their output over the score examples
    (:func:`~coursekit.methods.saliency.unit_statistics`). Rows: ``removed``, ``method``,
    ``variance_share`` (of the layer's response variance, held by the removed units),
    ``test_loss``, ``test_acc`` and ``output_change``: the mean squared change, over the
    test set, of the next Linear layer's output (``removed = 0`` is the dense network).
    Folding the mean removes the mean part of that change, leaving only the variance part.
    """
    x, _ = score_batch(settings, data)
    stats = saliency.unit_statistics(dense.model, settings.unit_layer, x)
    if settings.units_removed[-1] >= len(stats):
        raise ValueError(f"units_removed goes up to {settings.units_removed[-1]} but layer "
                         f"{settings.unit_layer!r} has {len(stats)} units")
    variance = stats["variance"].to_numpy()
    lowest = variance.argsort(kind="stable")
    x_test, y_test = data.split("test")
    reference = _next_layer_output(dense.model, settings.unit_layer, x_test)
    dense_eval = evaluate(dense.model, x_test, y_test)
    rows = [{"removed": 0, "method": m, "variance_share": 0.0, "test_loss": dense_eval["loss"],
             "test_acc": dense_eval["acc"], "output_change": 0.0} for m in ("plain removal", "mean replacement")]
    for k in settings.units_removed:
        units = [int(u) for u in lowest[:k]]
        for method, given in (("plain removal", None), ("mean replacement", x)):
            pruned = saliency.remove_units(dense.model, settings.unit_layer, units, given)
            result = evaluate(pruned, x_test, y_test)
            change = (_next_layer_output(pruned, settings.unit_layer, x_test) - reference).pow(2).sum(1).mean()
            rows.append({"removed": k, "method": method, "variance_share": float(variance[units].sum() / variance.sum()),
                         "test_loss": result["loss"], "test_acc": result["acc"], "output_change": float(change)})
    return pd.DataFrame(rows)


def run(settings: SaliencySettings, data: Dataset, seed: int = 0, progress: bool = True) -> dict:
    """Every experiment of the lecture, in order: what :func:`headline` checks."""
    dense = train_dense(settings, data, seed, progress)
    scores = all_scores(settings, data, dense)
    sweep, masks = density_sweep(settings, data, dense, scores, progress)
    return {"dense": dense, "scores": scores, "sweep": sweep, "masks": masks, "correlations": correlations(scores),
            "obs_vs_removal": obs_vs_removal(settings, data, dense),
            "mean_replacement": mean_replacement(settings, data, dense)}


def headline(sweep: pd.DataFrame, corr: pd.DataFrame, obs: pd.DataFrame, means: pd.DataFrame) -> list[Claim]:
    """Lecture 07's checks, weak forms of the papers' results.

    Every informed criterion beats random one-shot at 20 % density (in test loss: a random
    mask's accuracy there swings between 15 and 40 % from seed to seed); Taylor and the
    exact-GGN OBD rank the weights alike; with up to 80 % of the layer removed, where its
    quadratic model still holds, OBS's update lowers the loss against removing the same
    weights without it (Hassibi & Stork); mean replacement (Evci et al.) takes the mean part
    out of what removing units does to the next layer, on held-out data. Whether that lowers
    the *loss* depends on how quiet the removed units are (the lecture's figure); on a single
    network the saving moves too much from seed to seed to claim.
    """
    at = rows_where(sweep, "density", 0.2, "headline").set_index("criterion")
    informed = at.drop(index="random")
    valid = obs[obs["removed"] <= 0.8 * obs["weights"]]
    if valid.empty:
        raise ValueError("headline needs an OBS count of at most 80 % of the layer's weights")
    obs_last = valid[valid["removed"] == valid["removed"].max()].set_index("method")["loss"]
    change = means[means["removed"] > 0].pivot(index="removed", columns="method", values="output_change")
    return [
        Claim("random's test loss minus the worst informed criterion's, one-shot at 20%",
              at.loc["random", "test_loss"] - informed["test_loss"].max(), ">", 0.3),
        Claim("rank correlation of Taylor with exact-GGN OBD", corr.loc["taylor", "obd_ggn"], ">", 0.5),
        Claim("loss without OBS's update minus with it, at ≤ 80 % removed",
              obs_last["OBS's choice, no update"] - obs_last["OBS: remove and update"], ">", 0),
        Claim("next layer's output change, mean replacement over plain removal (mean over counts)",
              (change["mean replacement"] / change["plain removal"]).mean(), "<", 0.9),
    ]


# ------------------------------------------------------------------ figures

def plot_correlations(corr: pd.DataFrame) -> Figure:
    """The rank-correlation matrix between criteria, annotated."""
    with styled():
        fig, ax = plt.subplots(figsize=(6.5, 5.2), layout="constrained")
        labels = [LABELS.get(c, c) for c in corr.columns]
        sns.heatmap(corr, ax=ax, vmin=-1, vmax=1, cmap="vlag", annot=True, fmt=".2f", square=True,
                    xticklabels=labels, yticklabels=labels, cbar_kws={"label": "Spearman rank correlation"})
        ax.set_title("do the criteria agree on which weights matter?")
        ax.tick_params(axis="x", rotation=40)
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    return fig


def plot_obs(obs: pd.DataFrame) -> Figure:
    """Loss (left) and test accuracy (right) vs weights removed from one layer, with and without OBS's update."""
    require_columns(obs, ["removed", "method", "loss", "test_acc", "predicted"], "plot_obs")
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.0), layout="constrained")
        for i, (method, part) in enumerate(obs.groupby("method", sort=False)):
            left.plot(part["removed"], part["loss"], "o-", color=f"C{i}", label=method)
            right.plot(part["removed"], part["test_acc"], "o-", color=f"C{i}", label=method)
            if part["predicted"].notna().any():
                shown = part[part["predicted"] > 0]  # past its range the model can predict a negative loss
                left.plot(shown["removed"], shown["predicted"], "x:", color=f"C{i}", label="OBS's prediction")
        left.set_yscale("log")
        left.set_ylabel("loss on the scoring examples")
        right.set_ylabel("test accuracy")
        percent(right.yaxis)
        n = int(obs["removed"].max())
        for ax in (left, right):
            ax.set_xlabel("weights removed from the last layer")
        left.legend(fontsize="small")
        fig.suptitle(f"Optimal Brain Surgeon on one layer (up to {n} weights removed)")
    return fig


def plot_mean_replacement(means: pd.DataFrame) -> Figure:
    """As the lowest-variance units go, with and without mean replacement: the next layer's
    output change, the test loss and the test accuracy; the top axis gives the share of the
    layer's response variance removed."""
    require_columns(means, ["removed", "method", "variance_share", "output_change", "test_loss", "test_acc"],
                    "plot_mean_replacement")
    panels = (("output_change", "next layer's output change\n(mean squared, test set)"),
              ("test_loss", "test loss"), ("test_acc", "test accuracy"))
    with styled():
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.9), layout="constrained")
        for i, (method, part) in enumerate(means.groupby("method", sort=False)):
            for ax, (column, _) in zip(axes, panels, strict=True):
                ax.plot(part["removed"], part[column], marker="o", color=f"C{i}", label=method)
        shares = means.drop_duplicates("removed").sort_values("removed")
        for ax, (_, label) in zip(axes, panels, strict=True):
            ax.set_ylabel(label)
            ax.set_xlabel("lowest-variance units removed")
            top = ax.secondary_xaxis("top")
            top.set_xticks(shares["removed"], [f"{s:.0%}" for s in shares["variance_share"]], fontsize=8)
        fig.suptitle("top axis: the share of the layer's response variance the removed units held", fontsize=10)
        percent(axes[2].yaxis)
        axes[0].legend(fontsize="small")
    return fig
