"""Lecture 05's Early-Bird experiment: the channel mask settles in the first epochs, so draw it there.

You et al. 2020 ("Drawing Early-Bird Tickets", ICLR) train with network slimming and,
after every epoch, take the channel mask that prunes the fraction ``p`` of channels
with the smallest ``|γ|``; once successive masks stop moving the mask is the
Early-Bird (EB) ticket (:mod:`coursekit.methods.slimming` holds the scores, masks,
distances and the rule). Pruning it then and retraining costs a fraction of training
the dense network to the end first.

:func:`search` trains once and keeps the scales and weights of every epoch, so the
EB point for any ``p``, ``ε`` (:func:`~coursekit.methods.slimming.early_bird_epoch`)
is found without retraining; :func:`compare_tickets` retrains the EB ticket and the
ticket drawn at the end. The lecture's figures are here too (``plot_*``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, MultipleLocator
from torch import nn

from coursekit.core import models, runtime
from coursekit.core.claims import Claim
from coursekit.core.data import Dataset
from coursekit.core.plots import percent, require_columns, styled
from coursekit.core.progress import tqdm
from coursekit.core.train import SGDSettings, fit
from coursekit.methods import structured
from coursekit.methods.slimming import (
    ChannelMasks,
    bn_scales,
    channel_masks,
    check_pruning,
    early_bird_epoch,
    slimming_penalty,
)


@dataclass(frozen=True)
class EarlyBirdSettings(SGDSettings):
    """You et al. 2020's recipe (SGD, slimming, p = 50 %, ε = 0.1, window 5), scaled down.

    Training here has 500 (``ci``) or 6 000 (``cpu``) steps instead of 60 000, so the
    slimming strength is 2e-3 or 1e-3 instead of 1e-4 and the window 3 epochs (16 or 20
    in all); at ``ci`` ε = 0.15, since with 56 channels one channel changing sides moves
    the distance by 0.018. Retraining runs long enough for the annealed learning rate
    to settle both tickets (12 epochs: at 8 the final accuracies still jumped by up to
    15 points between runs).
    """

    epochs: int = 16
    lr_decay: float = 0.75
    slimming: float = 2e-3
    ratio: float = 0.5
    scope: str = "layerwise"
    epsilon: float = 0.15
    window: int = 3
    retrain_epochs: int = 12
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_pruning(self.ratio, self.scope)
        early_bird_epoch([], self.epsilon, self.window)  # validates both
        slimming_penalty(self.slimming)
        if self.retrain_epochs < 1:
            raise ValueError(f"retrain_epochs must be >= 1, got {self.retrain_epochs}")


@dataclass
class Search:
    """One slimming run: the BatchNorm scales and weights after each epoch, and its history."""

    scales: list[dict[str, torch.Tensor]]
    states: list[dict[str, torch.Tensor]]
    history: pd.DataFrame
    model: nn.Module

    def masks(self, ratio: float, scope: str = "layerwise") -> list[ChannelMasks]:
        """The channel mask of every epoch for pruning ratio ``ratio`` (see :func:`channel_masks`)."""
        return [channel_masks(s, ratio, scope) for s in self.scales]

    def network_at(self, epoch: int) -> nn.Module:
        """A copy of the network as it was after ``epoch`` (1-based)."""
        if not 1 <= epoch <= len(self.states):
            raise ValueError(f"epoch must be between 1 and {len(self.states)}, got {epoch!r}")
        net = copy.deepcopy(self.model)
        net.load_state_dict(self.states[epoch - 1])
        return net


def search(settings: EarlyBirdSettings, data: Dataset, progress: bool = True) -> Search:
    """Train the dense network with network slimming, recording scales and weights every epoch."""
    model = models.build(settings.model, data.input_shape, data.num_classes, seed=settings.seed,
                         device=data.device, width=settings.width)
    bn_scales(model)  # fail before training if the network has no BatchNorm scales
    scales, states = [], []

    def record(ctx) -> None:
        if ctx.end_of_epoch:
            scales.append(bn_scales(ctx.model))
            states.append({k: v.detach().clone() for k, v in ctx.model.state_dict().items()})

    with runtime.one_thread(data.device):  # a small network: a second CPU thread only adds waiting
        result = fit(model, data, **settings.fit_kwargs(), seed=settings.seed,
                     penalty=slimming_penalty(settings.slimming), hooks=[record], eval_test=True,
                     progress=progress, desc="slimming search")
    return Search(scales, states, result.history, model)


def retrain_ticket(settings: EarlyBirdSettings, data: Dataset, found: Search, epoch: int,
                   progress: bool = True) -> tuple[nn.Module, pd.DataFrame]:
    """Prune the channels of ``epoch``'s mask from that epoch's weights (surgery), then retrain.

    The pruned network is physically smaller (:func:`coursekit.methods.structured.remove_filters`),
    so retraining it costs fewer FLOPs. Returns the retrained network and its history.
    """
    masks = channel_masks(found.scales[epoch - 1], settings.ratio, settings.scope)
    kept = {name: m.nonzero().squeeze(1) for name, m in masks.items()}
    ticket = structured.remove_filters(found.network_at(epoch), kept)
    with runtime.one_thread(data.device):
        result = fit(ticket, data, **settings.fit_kwargs() | {"epochs": settings.retrain_epochs},
                     seed=settings.seed, eval_test=True, progress=progress,
                     desc=f"retrain ticket of epoch {epoch}")
    return ticket, result.history


FINAL_EPOCHS = 3


def final_accuracy(history: pd.DataFrame) -> float:
    """Test accuracy at the end of training, averaged over the last 3 epochs.

    Small BatchNorm nets jitter from epoch to epoch; the average smooths that. It is a
    steadier read-out than the test accuracy at the best validation epoch, which on
    500 validation examples picks an epoch partly by chance (measured at ``ci``: the
    EB-minus-late difference had 1.5× the spread, and a bias towards the longer-trained
    late ticket).
    """
    return float(history["test_acc"].iloc[-FINAL_EPOCHS:].mean())


def compare_tickets(settings: EarlyBirdSettings, data: Dataset,
                    progress: bool = True) -> tuple[pd.DataFrame, Search]:
    """Dense vs the Early-Bird ticket vs the ticket drawn after full training (You et al. 2020, Tab. 1).

    Returns one row per network: the epoch its mask was drawn, ``test_acc`` at the end
    of training (:func:`final_accuracy`), ``params``, ``flops`` (multiply–accumulates per example) and ``cost``: training
    FLOPs in units of one dense epoch (search epochs, plus retraining epochs scaled by
    the ticket's FLOPs). If the masks never settle, the EB ticket is drawn at the end.
    Also returns the :class:`Search`, to read it with other ratios and ε.
    """
    found = search(settings, data, progress)
    eb = early_bird_epoch(found.masks(settings.ratio, settings.scope), settings.epsilon, settings.window) or settings.epochs
    dense_flops = structured.count_flops(found.model, data.input_shape)
    rows = [{"ticket": "dense", "drawn_at": None, "test_acc": final_accuracy(found.history),
             "params": structured.count_parameters(found.model), "flops": dense_flops,
             "cost": float(settings.epochs)}]
    for name, epoch in tqdm([("early-bird", eb), ("late", settings.epochs)], desc="retraining tickets",
                            disable=not progress, leave=False):
        ticket, history = retrain_ticket(settings, data, found, epoch, progress=False)
        flops = structured.count_flops(ticket, data.input_shape)
        rows.append({"ticket": name, "drawn_at": epoch, "test_acc": final_accuracy(history),
                     "params": structured.count_parameters(ticket), "flops": flops,
                     "cost": epoch + settings.retrain_epochs * flops / dense_flops})
    return pd.DataFrame(rows), found


def headline(tickets: pd.DataFrame, settings: EarlyBirdSettings) -> list[Claim]:
    """Lecture 05's checks of a :func:`compare_tickets` table (You et al. 2020's claims, weak form).

    The EB mask settles in the first half of training; its retrained ticket is within
    5 points of the late ticket's accuracy, cheaper to obtain, and smaller than dense.
    """
    rows = tickets.set_index("ticket")
    eb, late, dense = rows.loc["early-bird"], rows.loc["late"], rows.loc["dense"]
    return [Claim("EB ticket drawn in the first half (epoch)", eb["drawn_at"], "<=", settings.epochs / 2),
            Claim("EB ticket accuracy minus the late ticket's", eb["test_acc"] - late["test_acc"], ">", -0.05),
            Claim("EB ticket's cost over the late ticket's", eb["cost"] / late["cost"], "<", 1.0),
            Claim("EB ticket's FLOPs over the dense network's", eb["flops"] / dense["flops"], "<", 1.0)]


PRESETS = {  # lectures/05_early_bird.ipynb
    "ci": EarlyBirdSettings(),
    "cpu": EarlyBirdSettings(width=1.0, epochs=20, lr_decay=0.85, slimming=1e-3, epsilon=0.1, retrain_epochs=12),
    "gpu": EarlyBirdSettings(width=2.0, epochs=40, lr_decay=0.92, slimming=1e-4, epsilon=0.1, window=5,
                             retrain_epochs=20),
}


# ------------------------------------------------------------------ figures

def plot_mask_distances(distances: pd.DataFrame, eb_epoch: int | None, ratio: float, epsilon: float) -> Figure:
    """Heat map of the channel-mask distances between epochs, the Early-Bird epoch marked (You et al. Fig. 2)."""
    with styled():
        fig, ax = plt.subplots(figsize=(6.2, 5), layout="constrained")
        n = distances.shape[0]
        image = ax.imshow(distances.values, cmap="magma_r", vmin=0, vmax=max(0.3, distances.values.max()),
                          extent=(0.5, n + 0.5, n + 0.5, 0.5))
        fig.colorbar(image, ax=ax, label="mask distance (fraction of channels)")
        ax.grid(False)
        if eb_epoch is not None:
            ax.axhline(eb_epoch, color="tab:cyan", lw=2)
            ax.axvline(eb_epoch, color="tab:cyan", lw=2)
            ax.plot(eb_epoch, eb_epoch, "*", ms=18, color="tab:cyan", mec="k")
            found = f"Early-Bird ticket at epoch {eb_epoch} of {n}"
        else:
            found = f"no Early-Bird ticket within {n} epochs"
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("epoch")
        ax.set_title(f"{found}\n(pruning {ratio:.0%} of channels, ε = {epsilon:g})", fontsize="medium")
    return fig


def plot_ticket_comparison(table: pd.DataFrame) -> Figure:
    """Test accuracy and training cost of the dense net, the Early-Bird and the late ticket."""
    require_columns(table, ["ticket", "test_acc", "cost", "flops"], "ticket_comparison")
    with styled():
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
        colors = sns.color_palette(n_colors=len(table))
        for ax, (column, label) in zip(axes, (("test_acc", "test accuracy"),
                                              ("cost", "training cost [dense epochs]"),
                                              ("flops", "inference MACs per image")), strict=True):
            ax.bar(table["ticket"], table[column], color=colors)
            ax.set_ylabel(label)
            for x, v in enumerate(table[column]):
                text = {"test_acc": f"{v:.1%}", "cost": f"{v:.1f}", "flops": f"{v / 1e3:,.0f}k"}[column]
                ax.annotate(text, (x, v), ha="center", va="bottom", fontsize="small")
        axes[2].yaxis.set_major_formatter(lambda v, _: f"{v / 1e3:,.0f}k")
        low = table["test_acc"].min()
        axes[0].set_ylim(max(0, low - 0.1), min(1, table["test_acc"].max() + 0.05))
        axes[0].yaxis.set_major_locator(MultipleLocator(0.05))
        percent(axes[0].yaxis)
    return fig
