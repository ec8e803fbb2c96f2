"""Lecture 02's experiment: IMP's winning tickets against their controls, its checks and figures.

The method, iterative magnitude pruning with its controls and run folders, is
:mod:`coursekit.methods.lottery`; here are the lecture's presets, the weak form of
Frankle & Carbin 2019's headline it checks (:func:`headline`) and its figures
(``plot_*``: accuracy vs density per variant, the first layer's masks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure

from coursekit.core.claims import Claim
from coursekit.core.plots import MASK_LABEL, draw_input_mask, remaining_axis, styled
from coursekit.methods.lottery import LotterySettings


def headline(results: pd.DataFrame, settings: LotterySettings) -> list[Claim]:
    """Lecture 02's checks of a :func:`~coursekit.methods.lottery.run_imp` table (Frankle & Carbin 2019, weak form).

    After the last round the ticket (the first protocol) beats both controls and stays
    within 5 points of the dense network, at under 5 % of the weights (seed means). At
    ``ci`` scale (2 000 training images) the ticket at 3 % of the weights trailed dense
    by 0.2-2.4 points over seeds 0-4: 3 points was too close to call on every machine.
    """
    ticket = settings.protocols[0]
    rounds, variants = sorted(results["round"].unique().tolist()), set(results["variant"])
    if settings.rounds not in rounds or not {ticket, *settings.controls} <= variants:
        raise ValueError(f"results hold rounds {rounds} and variants {sorted(variants)}, but settings ask for round "
                         f"{settings.rounds} and {[ticket, *settings.controls]}: pass the settings that made them")
    acc = results.groupby(["round", "variant"])["test_acc_early_stop"].mean()
    last, dense = acc.loc[settings.rounds], acc.loc[0].mean()
    claims = [Claim(f"ticket minus {c} (last round)", last[ticket] - last[c], ">", 0) for c in settings.controls]
    return [*claims, Claim("ticket minus dense (last round)", last[ticket] - dense, ">", -0.05),
            Claim("ticket's density (last round)", results.loc[results["variant"] == ticket, "density"].min(),
                  "<", 0.05)]


PRESETS = {  # lectures/02_lottery_tickets.ipynb
    "ci": LotterySettings(epochs=5, rounds=5, prune_fraction_of_remaining=0.5, seeds=(0,)),
    "cpu": LotterySettings(epochs=5, rounds=8, prune_fraction_of_remaining=0.35, seeds=(0, 1)),
    "gpu": LotterySettings(epochs=20, rounds=15, prune_fraction_of_remaining=0.2, seeds=(0, 1, 2, 3, 4)),
}


# ------------------------------------------------------------------ figures

VARIANT_LABELS = {
    "init": "winning ticket (reset to init)", "rewind": "ticket, late rewinding",
    "random_reinit": "random reinit", "random_mask": "random mask",
    "reshuffle": "reshuffled init", "constant": "constant ±σ", "sign_flip": "random signs",
}


LOTTERY_METRICS = {
    "test_acc_early_stop": "test accuracy at early stop", "test_acc_end": "test accuracy at the end",
    "early_stop_step": "early-stopping iteration", "val_acc_early_stop": "validation accuracy at early stop",
}


def _variant_order(results: pd.DataFrame) -> list[str]:
    present = set(results["variant"])
    return [v for v in VARIANT_LABELS if v in present] + sorted(present - set(VARIANT_LABELS))


def _draw_lottery(ax, results: pd.DataFrame, metric: str, highlight_density: float | None) -> None:
    stats = (results.groupby(["variant", "round"])[["density", metric]]
             .agg(["mean", "min", "max"]).reset_index())
    order = _variant_order(results)
    colors = dict(zip(order, sns.color_palette(n_colors=max(len(order), 3)), strict=False))
    for v in order:
        s = stats[stats["variant"] == v].sort_values("round")
        x = s[("density", "mean")] * 100
        ax.plot(x, s[(metric, "mean")], "o-", color=colors[v], label=VARIANT_LABELS.get(v, v), ms=4, lw=2)
        if results["seed"].nunique() > 1:
            ax.fill_between(x, s[(metric, "min")], s[(metric, "max")], color=colors[v], alpha=0.2)
    ax.axhline(results.loc[results["round"] == 0, metric].mean(), color="0.4", ls="--", lw=1,
               label="dense network")
    remaining_axis(ax, results["density"])
    ax.set_ylabel(LOTTERY_METRICS.get(metric, metric))
    if "acc" in metric:
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    if highlight_density is not None:
        ax.axvline(highlight_density * 100, color="0.2", lw=1.5, alpha=0.7)


def plot_lottery_curves(results: pd.DataFrame, metrics: Sequence[str] = ("test_acc_early_stop", "early_stop_step"),
                   highlight_density: float | None = None) -> Figure:
    """Metric vs % of weights remaining, one line per variant: mean over seeds, band = min–max.

    ``results`` is the table of :func:`coursekit.methods.lottery.run_imp`; the dashed line is the
    dense network (round 0). As in Frankle & Carbin 2019, Fig. 3–4.
    """
    needed = {"seed", "variant", "round", "density", *metrics}
    if not needed <= set(results.columns):
        raise ValueError(f"results lack columns {sorted(needed - set(results.columns))}")
    with styled():
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.6 * len(metrics), 4.0), squeeze=False,
                                 layout="constrained")
        for ax, metric in zip(axes[0], metrics, strict=True):
            _draw_lottery(ax, results, metric, highlight_density)
        axes[0, 0].legend(fontsize="small", loc="lower left")
    return fig


def pixel_usage(keep: torch.Tensor, images: torch.Tensor) -> pd.DataFrame:
    """Per input pixel: the share of its first-layer weights a mask keeps (``kept``, × the layer's
    average) and how much the pixel varies over ``images`` (``spread``, its standard deviation).

    ``keep`` has shape (hidden, pixels); ``images`` (n, ...) flatten to (n, pixels).
    """
    keep = keep.float().cpu()
    flat = images.reshape(len(images), -1).float().cpu()
    if flat.shape[1] != keep.shape[1]:
        raise ValueError(f"the mask has {keep.shape[1]} inputs but the images have {flat.shape[1]} pixels")
    return pd.DataFrame({"kept": (keep.mean(0) / keep.mean().clamp_min(1e-12)).numpy(),
                         "spread": flat.std(0).numpy()})


def describe_pixel_usage(usage: pd.DataFrame, quiet: float = 0.2) -> str:
    """What a mask does with the input, in numbers: the rank correlation between a pixel's kept weights and
    its spread, and what the quietest ``quiet`` share of the pixels keeps (Markdown, for the notebook)."""
    rho = usage["kept"].corr(usage["spread"], method="spearman")
    calm = usage.nsmallest(max(1, round(quiet * len(usage))), "spread")
    return (f"Rank correlation between a pixel's kept weights and how much it varies over the training "
            f"images: **{rho:.2f}**. The {quiet:.0%} of pixels that vary least keep "
            f"**{calm['kept'].mean():.2f}×** the layer's average share of their weights.")


def plot_input_masks(masks: Mapping[int, Mapping[str, torch.Tensor]], layer: str,
                     image_shape: Sequence[int] = (28, 28), images: torch.Tensor | None = None) -> Figure:
    """Per input pixel, the share of its first-layer connections kept, one panel per round.

    Shown relative to the layer's density (1× = average, 0 = pixel disconnected), so
    rounds of very different density share one colour scale. With ``images``, a first panel
    shows how much each pixel varies over them (its standard deviation), to compare with.

    Args:
        masks: round → mask (e.g. :func:`coursekit.methods.lottery.load_masks`).
        layer: the first layer's weight name, shape (hidden, pixels).
    """
    if not masks:
        raise ValueError("no masks to show")
    panels = len(masks) + (images is not None)
    with styled():
        fig, axes = plt.subplots(1, panels, figsize=(2.3 * panels + 1.2, 2.8), squeeze=False,
                                 layout="constrained")
        axes = list(axes[0])
        if images is not None:
            spread = images.reshape(len(images), -1).float().std(0).reshape(*image_shape).cpu()
            axes[0].imshow(spread.numpy(), cmap="Greys_r")
            axes[0].set_title("how much each pixel varies\n(training images)", fontsize=9)
            axes[0].axis("off")
            axes = axes[1:]
        for ax, (r, mask) in zip(axes, sorted(masks.items()), strict=True):
            image = draw_input_mask(ax, mask[layer], image_shape,
                                     f"round {r}: {mask[layer].float().mean():.1%} kept")
        fig.colorbar(image, ax=axes, shrink=0.85, label=MASK_LABEL)
    return fig


def plot_lottery_round(results: pd.DataFrame, masks: Mapping[int, Mapping[str, torch.Tensor]], round: int,
                  layer: str, image_shape: Sequence[int] = (28, 28)) -> Figure:
    """One IMP round: accuracy vs density with that round marked, beside its first-layer mask."""
    if round not in masks:
        raise ValueError(f"round {round} not available; rounds: {sorted(masks)}")
    keep = masks[round][layer]
    density = float(results.loc[(results["round"] == round), "density"].mean())
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0), width_ratios=[1.6, 1],
                                          layout="constrained")
        _draw_lottery(left, results, "test_acc_early_stop", density)
        left.legend(fontsize="small", loc="lower left")
        image = draw_input_mask(right, keep, image_shape,
                                 f"round {round}: first layer, {keep.float().mean():.1%} kept")
        fig.colorbar(image, ax=right, shrink=0.8, label=MASK_LABEL)
    return fig
