"""Pruning basics (lecture 03): which mask, which weights, which schedule, which scope.

Experiments on one trained dense network (Zhou et al. 2019, "Deconstructing
Lottery Tickets"; Zhu & Gupta 2017, "To prune, or not to prune"):

* :func:`criterion_protocol_grid`: prune the trained network once to a density with
  each mask criterion, start the survivors from each weight protocol, retrain, and
  record test accuracy (Zhou et al., Fig. 2–4);
* :func:`criterion_density_grid`: the masks and retrained accuracies of every
  criterion at several densities (what the lecture's widget browses);
* :func:`supermask_accuracies`: every criterion's mask with ``sign(w_init)·σ``
  weights (rescaled) and **no** training, against chance;
* :func:`schedule_comparison`: one-shot vs iterative vs gradual pruning to one density.

The widget's figure is :func:`coursekit.core.plots.mask_and_accuracy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure

from coursekit.core import models, pruning
from coursekit.core.batched import fit_batched
from coursekit.core.claims import Claim
from coursekit.core.data import Dataset
from coursekit.core.masks import Mask, prunable_parameters
from coursekit.core.plots import require_columns, styled
from coursekit.core.progress import tqdm
from coursekit.core.pruning import mask_from_scores
from coursekit.core.train import TrainSettings, evaluate, fit
from coursekit.methods import criteria, rewind, schedules, supermask


@dataclass(frozen=True)
class BasicsSettings(TrainSettings):
    """The knobs of ``lectures/03_pruning_basics.ipynb`` (training ones from :class:`TrainSettings`)."""

    density: float = 0.05
    densities: tuple[float, ...] = (0.5, 0.2, 0.05)
    criteria: tuple[str, ...] = tuple(criteria.CRITERIA)
    protocols: tuple[str, ...] = ("init", "random_reinit", "reshuffle", "constant", "sign_flip")
    iterative_rounds: int = 4
    scope: str = "layerwise"
    supermask_density: float = 0.2
    supermask_epochs: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, d in (("density", self.density), ("supermask_density", self.supermask_density),
                        *(("densities", d) for d in self.densities)):
            if not 0 < d <= 1:
                raise ValueError(f"BasicsSettings.{name} must lie in (0, 1], got {d}")
        if not self.densities or not self.criteria or not self.protocols:
            raise ValueError("BasicsSettings needs at least one density, criterion and protocol")
        for name in self.criteria:
            criteria.get(name)
        for name in self.protocols:
            if rewind.get(name).source == "rewind":
                raise ValueError("protocol 'rewind' needs a rewind point, which lecture 03's one-shot pruning "
                                 "does not keep; use lottery.run_imp (lecture 02) for late rewinding")
        if self.iterative_rounds < 1 or self.supermask_epochs < 1:
            raise ValueError(f"BasicsSettings needs iterative_rounds >= 1 and supermask_epochs >= 1, got "
                             f"{self.iterative_rounds} and {self.supermask_epochs}")
        if self.scope not in pruning.SCOPES:
            raise ValueError(f"BasicsSettings.scope must be one of {pruning.SCOPES}, got {self.scope!r}")


PRESETS = {
    # ci keeps 10 %: at 20 % the sign-flip control trailed constant signs by only 1-4 points over seeds
    # 0-4, too close to call on every machine (`make margins`); at 10 % by 5-8
    "ci": BasicsSettings(epochs=2, density=0.1, densities=(0.1, 0.05), iterative_rounds=3,
                         supermask_epochs=1),
    "cpu": BasicsSettings(epochs=6, densities=(0.5, 0.2, 0.1, 0.05, 0.02), iterative_rounds=5,
                          supermask_epochs=3),
    "gpu": BasicsSettings(epochs=20, densities=(0.5, 0.2, 0.1, 0.05, 0.02, 0.01),
                          iterative_rounds=8, supermask_epochs=10),
}


@dataclass
class DenseRun:
    """A trained dense network: its initial and final parameters and test accuracy."""

    init: dict[str, torch.Tensor]
    final: dict[str, torch.Tensor]
    test_acc: float
    seed: int
    names: list[str]  # the prunable weights


def _build(settings: BasicsSettings, data: Dataset, seed: int):
    return models.build(settings.model, data.input_shape, data.num_classes, seed=seed, device=data.device)


def _train(settings: BasicsSettings, model, data: Dataset, seed: int, hooks=()) -> float:
    result = fit(model, data, **settings.fit_kwargs(), seed=seed, hooks=hooks, eval_test=True,
                 progress=False)
    return float(result.final["test_acc"])


def untrained(settings: BasicsSettings, data: Dataset, seed: int = 0):
    """The lecture's network at its initialisation (the same weights ``train_dense`` starts from)."""
    return _build(settings, data, seed)


def train_dense(settings: BasicsSettings, data: Dataset, seed: int = 0) -> DenseRun:
    """Train the dense network every experiment of the lecture starts from."""
    model = _build(settings, data, seed)
    init = rewind.snapshot(model)
    acc = _train(settings, model, data, seed)
    return DenseRun(init=init, final=rewind.snapshot(model), test_acc=acc, seed=seed,
                    names=list(prunable_parameters(model)))


def prune_once(settings: BasicsSettings, dense: DenseRun, criterion: str, density: float,
               scope: str | None = None) -> Mask:
    """The mask of ``criterion`` at ``density`` (fraction of all prunable weights) on ``dense``."""
    gen = torch.Generator().manual_seed(dense.seed)
    scores = criteria.scores(criterion, dense.init, dense.final, dense.names, gen)
    return mask_from_scores(scores, density, scope or settings.scope)


def _start(settings: BasicsSettings, data: Dataset, dense: DenseRun, mask: Mask, protocol: str):
    """A fresh network whose survivors start from ``protocol``, ready to retrain under ``mask``."""
    model = _build(settings, data, dense.seed)
    fresh = (rewind.snapshot(_build(settings, data, dense.seed + 10_000))
             if protocol == "random_reinit" else None)
    rewind.reset(model, mask, protocol, dense.init, fresh=fresh,
                 generator=torch.Generator().manual_seed(dense.seed))
    return model


def retrain(settings: BasicsSettings, data: Dataset, dense: DenseRun, mask: Mask, protocol: str) -> float:
    """Start the survivors of ``mask`` from ``protocol``, train, and return test accuracy."""
    model = _start(settings, data, dense, mask, protocol)
    return _train(settings, model, data, dense.seed, hooks=[mask.hook(model)])


def _retrain_all(settings: BasicsSettings, data: Dataset, dense: DenseRun,
                 jobs: list[tuple[Mask, str]], batch: bool, progress: bool, desc: str) -> list[float]:
    """Test accuracies after retraining each (mask, protocol); together when ``batch``."""
    if not batch:
        return [retrain(settings, data, dense, m, p)
                for m, p in tqdm(jobs, desc=desc, disable=not progress)]
    nets = [_start(settings, data, dense, m, p) for m, p in jobs]
    results = fit_batched(nets, data, [dense.seed] * len(nets), masks=[m for m, _ in jobs],
                          **settings.fit_kwargs(), eval_test=True, progress=progress)
    return [float(r.final["test_acc"]) for r in results]


def criterion_protocol_grid(settings: BasicsSettings, data: Dataset, dense: DenseRun,
                            progress: bool = True, batch: bool = False) -> pd.DataFrame:
    """Test accuracy after retraining, for every criterion × protocol at ``settings.density``.

    ``batch=True`` retrains all of them as one batched model (:mod:`coursekit.core.batched`).
    """
    masks = {c: prune_once(settings, dense, c, settings.density) for c in settings.criteria}
    pairs = [(c, p) for c in settings.criteria for p in settings.protocols]
    accs = _retrain_all(settings, data, dense, [(masks[c], p) for c, p in pairs], batch, progress,
                        "criterion × protocol")
    return pd.DataFrame([{"criterion": c, "protocol": p, "density": masks[c].density, "test_acc": a}
                         for (c, p), a in zip(pairs, accs, strict=True)])


def criterion_density_grid(settings: BasicsSettings, data: Dataset, dense: DenseRun,
                           known: pd.DataFrame | None = None, progress: bool = True, batch: bool = False
                           ) -> tuple[pd.DataFrame, dict[tuple[str, float], Mask]]:
    """For every criterion and density: the mask, and test accuracy retrained from ``init``.

    ``known``: a :func:`criterion_protocol_grid` result whose ``init`` column is reused
    at its density instead of retraining (same mask, same training, same number).
    """
    reuse = {}
    if known is not None:
        if not (known["density"] - settings.density).abs().lt(0.01).all():
            raise ValueError(f"known was computed at density {sorted(known['density'].round(3).unique().tolist())} but "
                             f"settings.density is {settings.density}; pass the grid of these settings")
        rows_init = known[known["protocol"] == "init"]
        reuse = {(r.criterion, settings.density): r.test_acc for r in rows_init.itertuples()}
    pairs = [(c, d) for c in settings.criteria for d in settings.densities]
    masks = {(c, d): prune_once(settings, dense, c, d) for c, d in pairs}
    todo = [pair for pair in pairs if pair not in reuse]
    accs = dict(zip(todo, _retrain_all(settings, data, dense, [(masks[t], "init") for t in todo],
                                       batch, progress, "criterion × density"), strict=True))
    rows = [{"criterion": c, "density": d, "test_acc": reuse.get((c, d), accs.get((c, d)))}
            for c, d in pairs]
    return pd.DataFrame(rows), masks


def supermask_accuracies(settings: BasicsSettings, data: Dataset, dense: DenseRun) -> pd.DataFrame:
    """Every criterion's mask at ``settings.supermask_density`` as a constant supermask, untrained.

    See :func:`coursekit.methods.supermask.constant_supermask` (Zhou et al. 2019, Section 5).
    """
    rows = []
    model = _build(settings, data, dense.seed)
    for c in settings.criteria:
        mask = prune_once(settings, dense, c, settings.supermask_density)
        supermask.constant_supermask(model, mask, dense.init)
        rows.append({"criterion": c, "test_acc": evaluate(model, data.x_test, data.y_test)["acc"]})
    return pd.DataFrame(rows)


def schedule_comparison(settings: BasicsSettings, data: Dataset, dense: DenseRun,
                        progress: bool = True) -> pd.DataFrame:
    """One-shot, iterative (reset to init each round) and gradual (cubic, during training) pruning.

    All three end at ``settings.density`` with magnitude (``large_final``) masks. Gradual pruning
    (Zhu & Gupta 2017) starts from the trained dense network and prunes while training it once more,
    so it costs what one-shot costs: two trainings (column ``trainings``).
    """
    rows = []
    one_shot = prune_once(settings, dense, "large_final", settings.density)
    rows.append({"schedule": "one-shot", "density": one_shot.density,
                 "test_acc": retrain(settings, data, dense, one_shot, "init"), "trainings": 2})

    rounds = settings.iterative_rounds
    p = 1 - settings.density ** (1 / rounds)  # of the remaining, per round
    mask, final = None, dense.final
    for target in tqdm(schedules.iterative(p, rounds), desc="iterative", disable=not progress):
        mask = mask_from_scores({n: final[n].abs() for n in dense.names}, target, settings.scope,
                                previous=mask)
        model = _build(settings, data, dense.seed)
        rewind.reset(model, mask, "init", dense.init)
        acc = _train(settings, model, data, dense.seed, hooks=[mask.hook(model)])
        final = rewind.snapshot(model)
    rows.append({"schedule": f"iterative ({rounds} rounds)", "density": mask.density,
                 "test_acc": acc, "trainings": rounds + 1})

    model = _build(settings, data, dense.seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(dense.final[name])
    steps = settings.epochs * -(-len(data.y_train) // settings.batch_size)
    gradual = schedules.GradualPruning(model, settings.density, start_step=0,
                                       end_step=int(0.5 * steps), every=max(1, steps // 50),
                                       scope=settings.scope)
    acc = _train(settings, model, data, dense.seed, hooks=[gradual])
    rows.append({"schedule": "gradual (cubic)", "density": gradual.mask.density, "test_acc": acc,
                 "trainings": 2})
    return pd.DataFrame(rows)


def plot_schedules(schedule: pd.DataFrame, dense_acc: float) -> Figure:
    """Test accuracy of each schedule of :func:`schedule_comparison` at their shared density, with its cost.

    Dots on an axis zoomed to the differences (bars from zero would hide them); each is labelled with
    its accuracy and its cost in trainings; the dense network is the dashed line.
    """
    require_columns(schedule, ["schedule", "density", "test_acc", "trainings"], "schedule_comparison")
    with styled():
        fig, ax = plt.subplots(figsize=(7, 0.55 * len(schedule) + 1.6), layout="constrained")
        rows = schedule.reset_index(drop=True)
        y = range(len(rows))[::-1]
        ax.hlines(y, 0, rows["test_acc"], color="0.85", lw=2)
        ax.plot(rows["test_acc"], y, "o", ms=10, color="tab:blue")
        for yi, r in zip(y, rows.itertuples(), strict=True):
            ax.annotate(f"{r.test_acc:.1%}  ({r.trainings} trainings)", (r.test_acc, yi), xytext=(8, 0),
                        textcoords="offset points", va="center", fontsize="small")
        ax.axvline(dense_acc, color="0.3", ls="--", lw=1.2, label=f"dense network ({dense_acc:.1%})")
        low = min(rows["test_acc"].min(), dense_acc)
        span = max(rows["test_acc"].max(), dense_acc) - low
        ax.set_xlim(low - max(0.02, 0.3 * span), max(rows["test_acc"].max(), dense_acc) + max(0.03, 0.6 * span))
        ax.set_yticks(list(y), rows["schedule"])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.set_xlabel("test accuracy after pruning (axis zoomed to the differences)")
        ax.set_title(f"Three schedules to the same {rows['density'].mean():.0%} density")
        ax.legend(fontsize="small", loc="lower right")
        ax.grid(axis="y", visible=False)
    return fig


def scope_comparison(settings: BasicsSettings, dense: DenseRun, density: float) -> pd.DataFrame:
    """Per-layer density of ``large_final`` masks at one global density: global vs layer-wise scope."""
    out = {}
    for scope in ("global", "layerwise"):
        out[scope] = prune_once(settings, dense, "large_final", density, scope).layer_densities()
    return pd.DataFrame(out).rename_axis("layer")


def headline(grid: pd.DataFrame, supers: pd.DataFrame, learned: pd.DataFrame) -> list[Claim]:
    """Lecture 03's checks (Zhou et al. 2019, weak form) of the criterion × protocol grid, the
    supermasks of :func:`supermask_accuracies` and a learned supermask's history.

    Large final weights make a far better mask than small ones; keeping the initial
    signs matters more than the magnitudes; a good mask alone, on untrained weights,
    is far above chance (10 %).
    """
    table = grid.pivot(index="criterion", columns="protocol", values="test_acc")
    masks = supers.set_index("criterion")["test_acc"]
    return [
        Claim("large_final minus small_final, retrained from init", table.loc["large_final", "init"]
              - table.loc["small_final", "init"], ">", 0.05),
        Claim("large_final: constant (signs kept) minus sign_flip", table.loc["large_final", "constant"]
              - table.loc["large_final", "sign_flip"], ">", 0),
        Claim("best supermask's accuracy", masks.max(), ">", 0.4),
        Claim("large_final supermask minus random supermask", masks["large_final"] - masks["random"], ">", 0.3),
        Claim("learned supermask's final accuracy", learned["test_acc"].iloc[-1], ">", 0.4),
    ]
