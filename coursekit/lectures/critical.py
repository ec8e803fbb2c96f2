"""Critical learning periods: a sensory deficit early in training leaves a permanent gap.

Achille, Rovere & Soatto 2019 ("Critical Learning Periods in Deep Networks", ICLR)
blur the images for the first ``t0`` epochs (down-sample, then up-sample back), then
train on clean images for a fixed number of further epochs with an exponentially
annealed learning rate. A deficit removed early costs nothing; removed late, the
network never recovers, however long it trains afterwards, like amblyopia after a
childhood cataract. Pawlak 2025 shows the gap closes when the learning rate is raised
again after the deficit: plasticity is tied to the learning rate schedule.

:func:`deficit` makes the ``transform`` that :func:`coursekit.core.train.fit` applies to
each minibatch; :func:`critical_period_sweep` trains one network per (seed, removal
epoch) and returns the final test accuracies, learning curves and Fisher traces; the
``plot_*`` functions draw them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from coursekit.core import models, runtime
from coursekit.core.claims import Claim
from coursekit.core.data import Dataset
from coursekit.core.plots import percent, require_columns, styled
from coursekit.core.progress import tqdm
from coursekit.core.train import SGDSettings, evaluate, fit
from coursekit.methods.spectra import FisherTrace

DEFICITS = ("blur", "flip")


def blur(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Images ``(N, C, H, W)`` average-pooled by ``factor`` and up-sampled back (bilinear).

    Achille et al.'s cataract: 32×32 CIFAR images seen at 8×8 (``factor=4``).
    """
    if x.ndim != 4:
        raise ValueError(f"blur needs images of shape (N, C, H, W), got {tuple(x.shape)}")
    if not isinstance(factor, int) or not 1 <= factor <= min(x.shape[-2:]):
        raise ValueError(f"factor must be an int from 1 to the image size {min(x.shape[-2:])}, got {factor!r}")
    small = F.avg_pool2d(x, factor, ceil_mode=True)
    return F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)


def deficit(kind: str, until_epoch: int, epochs: int, factor: int = 4
            ) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """The minibatch transform of a deficit lasting the first ``until_epoch`` of ``epochs`` epochs.

    ``kind`` is ``"blur"`` (low-level statistics change: a critical period) or ``"flip"``
    (images upside down: high-level change, which Achille et al. find has no lasting effect).
    """
    if kind not in DEFICITS:
        raise ValueError(f"unknown deficit {kind!r}; expected one of {DEFICITS}")
    if not isinstance(until_epoch, int) or not 0 <= until_epoch <= epochs:
        raise ValueError(f"the deficit must end between epoch 0 and the end of training "
                         f"({epochs} epochs), got until_epoch={until_epoch!r}")

    def transform(xb: torch.Tensor, epoch: int) -> torch.Tensor:
        if epoch >= until_epoch:
            return xb
        return blur(xb, factor) if kind == "blur" else xb.flip(-2)

    return transform


@dataclass(frozen=True)
class CriticalSettings(SGDSettings):
    """The critical-period sweep: which deficit, when it ends, and how the net is trained.

    Achille et al. train CIFAR-10 nets with SGD at lr 0.075 × 0.97^epoch and 160 clean
    epochs after the deficit; ours is a small BatchNorm VGG on Fashion-MNIST with a
    faster schedule (0.6^epoch) so that a sweep fits in minutes. Blurring by 7 shows
    the 28×28 images at 4×4.
    """

    weight_decay: float = 5e-4
    lr_decay: float = 0.6
    deficit: str = "blur"
    factor: int = 7
    until_epochs: tuple[int, ...] = (0, 2, 8)
    clean_epochs: int = 4
    seeds: tuple[int, ...] = (0,)
    fisher_examples: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.deficit not in DEFICITS:
            raise ValueError(f"unknown deficit {self.deficit!r}; expected one of {DEFICITS}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct non-negative ints, at least one, got {self.seeds}")
        if not self.until_epochs or min(self.until_epochs) < 0:
            raise ValueError(f"until_epochs must list epochs >= 0, at least one, got {self.until_epochs}")
        if self.factor < 1 or self.clean_epochs < 1 or self.fisher_examples < 1:
            raise ValueError(f"CriticalSettings needs factor, clean_epochs and fisher_examples >= 1; got "
                             f"{self.factor}, {self.clean_epochs}, {self.fisher_examples}")


def train_with_deficit(settings: CriticalSettings, data: Dataset, until_epoch: int, seed: int = 0,
                       progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One network: deficit for ``until_epoch`` epochs, then ``settings.clean_epochs`` clean ones.

    Returns the history of :func:`coursekit.core.train.fit` (validation accuracy per epoch;
    the last row also has the final ``test_acc``) and the per-layer Fisher trace after
    every epoch (:class:`coursekit.methods.spectra.FisherTrace`, on ``fisher_examples`` clean
    training images), both with ``until_epoch`` and ``seed`` columns. On the CPU it
    trains on one thread (:func:`coursekit.core.runtime.one_thread`): the network is small.
    """
    epochs = until_epoch + settings.clean_epochs
    model = models.build(settings.model, data.input_shape, data.num_classes, seed=seed, device=data.device,
                         width=settings.width)
    n = settings.fisher_examples
    fisher = FisherTrace(data.x_train[:n], data.y_train[:n], seed=seed)
    with runtime.one_thread(data.device):
        fisher.record(model, 0)
        result = fit(model, data, **settings.fit_kwargs() | {"epochs": epochs}, seed=seed,
                     transform=deficit(settings.deficit, until_epoch, epochs, settings.factor),
                     hooks=[fisher], progress=progress, desc=f"deficit until {until_epoch}")
        test_acc = evaluate(model, *data.split("test"))["acc"]
    history = result.history.assign(test_acc=float("nan"), until_epoch=until_epoch, seed=seed)
    history.loc[history.index[-1], "test_acc"] = test_acc
    return history, fisher.table().assign(until_epoch=until_epoch, seed=seed)


@dataclass
class Sweep:
    """What :func:`critical_period_sweep` measured.

    ``table``: one row per run with ``test_acc`` after its last epoch and ``gap``, the
    same seed's accuracy without a deficit minus this one; ``histories``: the learning
    curves; ``fisher``: the Fisher trace per epoch and layer. All carry ``seed`` and
    ``until_epoch`` columns.
    """

    table: pd.DataFrame
    histories: pd.DataFrame
    fisher: pd.DataFrame


def critical_period_sweep(settings: CriticalSettings, data: Dataset, progress: bool = True) -> Sweep:
    """Final test accuracy for each epoch the deficit is removed (Achille et al. 2019, Fig. 1).

    Trains one network per seed and entry of ``settings.until_epochs`` (0, no deficit,
    is always included).
    """
    until_epochs = sorted(set(settings.until_epochs) | {0})
    if settings.deficit == "blur":
        blur(data.x_train[:1], settings.factor)  # refuse a factor larger than the images before training
    runs = [(s, e) for s in settings.seeds for e in until_epochs]
    histories, fishers = [], []
    for seed, until in tqdm(runs, desc="critical periods", disable=not progress):
        history, fisher = train_with_deficit(settings, data, until, seed, progress=False)
        histories.append(history)
        fishers.append(fisher)
    curves = pd.concat(histories, ignore_index=True)
    table = (curves.groupby(["seed", "until_epoch"]).tail(1)
             [["seed", "until_epoch", "epoch", "test_acc"]].reset_index(drop=True))
    clean = table[table["until_epoch"] == 0].set_index("seed")["test_acc"]
    table["gap"] = table["seed"].map(clean) - table["test_acc"]
    return Sweep(table, curves, pd.concat(fishers, ignore_index=True))


def headline(sweep: Sweep) -> list[Claim]:
    """Lecture 04's critical-period checks (Achille et al. 2019, weak form), seed means.

    A deficit removed at the last epoch of the sweep leaves a real gap (> 2 points), and
    a larger one than a deficit removed at the first epoch after 0.
    """
    gaps = sweep.table.groupby("until_epoch")["gap"].mean()
    first, last = min(e for e in gaps.index if e > 0), max(gaps.index)
    return [Claim(f"gap left by a deficit removed at epoch {last}", gaps[last], ">", 0.02),
            Claim(f"gap at epoch {last} minus gap at epoch {first}", gaps[last] - gaps[first], ">", 0.02)]


PRESETS = {  # lectures/04_critical_periods.ipynb
    # ci blurs to 2×2: at 4×4 (factor 7) the gap left at epoch 8 ranged from 5 to 16 points over seeds
    # 0-4 on 2 000 training images, too close to the 2-point bound to hold everywhere (`make margins`)
    "ci": CriticalSettings(factor=14),
    "cpu": CriticalSettings(until_epochs=(0, 2, 4, 6, 8, 10, 12), clean_epochs=6, fisher_examples=128),
    "gpu": CriticalSettings(width=1.0, until_epochs=(0, 2, 4, 6, 8, 10, 12, 14, 16), clean_epochs=8,
                            seeds=(0, 1, 2), fisher_examples=256),
}


# ------------------------------------------------------------------ figures

def plot_critical_period(sweep: Sweep, until_epoch: int | None = None) -> Figure:
    """Left: accuracy gap vs the epoch the deficit ends (Achille et al. Fig. 1). Right: learning curves.

    ``sweep`` comes from :func:`coursekit.lectures.critical.critical_period_sweep`; ``until_epoch``
    picks the run drawn against the no-deficit run (default: the latest removal).
    """
    sweep, curves = sweep.table, sweep.histories
    until_epoch = int(sweep["until_epoch"].max()) if until_epoch is None else until_epoch
    if until_epoch not in set(sweep["until_epoch"]):
        raise ValueError(f"no run with the deficit ending at epoch {until_epoch}; "
                         f"the sweep has {sorted(sweep['until_epoch'].unique().tolist())}")
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.9), layout="constrained")
        summary = sweep.groupby("until_epoch")["gap"].agg(["mean", "min", "max"])
        left.fill_between(summary.index, summary["min"], summary["max"], alpha=0.2, lw=0)
        left.plot(summary.index, summary["mean"], "o-", lw=2, label="mean over seeds")
        left.plot([until_epoch], [summary.loc[until_epoch, "mean"]], "o", ms=13, mfc="none", mec="k", mew=2)
        left.axhline(0, color="grey", lw=1)
        left.set_xlabel("epoch at which the blur is removed")
        left.set_ylabel("accuracy lost vs no deficit")
        left.set_title("a late deficit leaves a permanent gap")
        percent(left.yaxis)
        for label, until, style in (("no deficit", 0, "-"), (f"blur until epoch {until_epoch}", until_epoch, "-")):
            run = curves[(curves["until_epoch"] == until) & (curves["seed"] == curves["seed"].min())]
            right.plot(run["epoch"], run["val_acc"], style, lw=2, label=label)
        right.axvspan(0, until_epoch, color="grey", alpha=0.15, lw=0, label="deficit")
        right.set_xlabel("epoch")
        for ax in (left, right):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set_ylabel("validation accuracy (clean images)")
        right.set_title("learning curves (first seed)")
        right.legend(fontsize="small", loc="center right")
        percent(right.yaxis)
    return fig


def fisher_peaks(fisher: pd.DataFrame, kind: str = "true") -> pd.DataFrame:
    """When each run's total Fisher trace peaks, and how far it has fallen from the peak by the end.

    One row per run (``until_epoch``): the last epoch, the epoch of the peak and ``final_over_peak``
    (1.0: still at its peak, i.e. still rising or flat when training stopped). Achille et al. see the
    trace rise, then fall — the fall needs training long past the peak.
    """
    require_columns(fisher, ["epoch", "layer", "kind", "trace", "until_epoch"], "fisher_trace")
    totals = fisher[fisher["kind"] == kind].groupby(["until_epoch", "epoch"])["trace"].sum()
    rows = [{"until_epoch": until, "last_epoch": int(run.index.get_level_values("epoch").max()),
             "peak_epoch": int(run.idxmax()[1]), "final_over_peak": float(run.iloc[-1] / run.max())}
            for until, run in totals.groupby(level="until_epoch")]
    return pd.DataFrame(rows).set_index("until_epoch")


def plot_fisher_trace(fisher: pd.DataFrame, until_epoch: int = 0, kind: str = "true") -> Figure:
    """Trace of the Fisher information per layer over epochs, stacked (Achille et al. Fig. 4).

    ``fisher`` is the ``fisher`` table of a critical-period :class:`~coursekit.lectures.critical.Sweep`;
    the deficit window, if any, is shaded.
    """
    require_columns(fisher, ["epoch", "layer", "kind", "trace", "until_epoch"], "fisher_trace")
    run = fisher[(fisher["until_epoch"] == until_epoch) & (fisher["kind"] == kind)]
    if run.empty:
        raise ValueError(f"no {kind!r} Fisher traces for the run with the deficit ending at {until_epoch}")
    table = run.groupby(["epoch", "layer"])["trace"].mean().unstack("layer")
    table = table[sorted(table.columns, key=lambda c: int(c.split()[0]) if c.split()[0].isdigit() else c)]
    with styled():
        fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
        colors = sns.color_palette("tab10", n_colors=table.shape[1])  # neighbours in the stack must differ
        ax.stackplot(table.index, table.T.values, labels=list(table.columns), colors=colors, edgecolor="white",
                     linewidth=0.6)
        if until_epoch:
            ax.axvspan(0, until_epoch, color="grey", alpha=0.2, lw=0)
            ax.text(until_epoch / 2, ax.get_ylim()[1] * 0.95, "blurred", ha="center", va="top")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"trace of the {kind} Fisher")
        ax.set_title("Fisher information per layer, no deficit" if not until_epoch
                     else f"Fisher information per layer, blur until epoch {until_epoch}")
        handles, labels = ax.get_legend_handles_labels()  # top of the legend = top of the stack
        ax.legend(handles[::-1], labels[::-1], fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1),
                  title="module")
        ax.set_xlim(table.index.min(), table.index.max())
    return fig


def plot_fisher_curves(fisher: pd.DataFrame) -> Figure:
    """Total trace of the Fisher information over epochs: one colour per network, true solid, empirical dashed.

    ``fisher`` stacks the Fisher tables of :func:`coursekit.lectures.information_plane.information_plane`
    runs (column ``activation``). Both axes are logarithmic (epoch 0 drawn at 0.5).
    """
    require_columns(fisher, ["epoch", "layer", "kind", "trace", "activation"], "fisher_curves")
    totals = fisher.groupby(["activation", "kind", "epoch"])["trace"].sum()
    with styled():
        fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
        colors = dict(zip(dict.fromkeys(fisher["activation"]), sns.color_palette(), strict=False))
        for (act, kind), series in totals.groupby(level=[0, 1]):
            epochs = series.index.get_level_values("epoch").to_numpy().astype(float)
            ax.plot(np.where(epochs == 0, 0.5, epochs), series.to_numpy(), "-" if kind == "true" else "--",
                    marker="o", ms=4, color=colors[act], lw=2, label=f"{act}, {kind} Fisher")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("epoch (log scale; epoch 0 at 0.5)")
        ax.set_ylabel("trace of the Fisher information")
        ax.set_title("connections form fast, then consolidate")
        ax.legend(fontsize="small")
    return fig
