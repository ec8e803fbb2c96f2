"""Iterative magnitude pruning (IMP) and the Lottery Ticket Hypothesis.

Frankle & Carbin 2019: train a dense network, remove a fraction of the smallest
weights, reset the survivors to their initial values, and repeat. The sparse
networks found this way — *winning tickets* — train to the dense network's
accuracy (or better, and earlier) down to a few per cent of the weights, while
the same structures with new random weights (``random_reinit``) or random masks
at the same per-layer densities (``random_mask``) fall away much sooner.
Frankle et al. 2020 found that for larger networks the reset must go to an early
iteration k instead of 0 (protocol ``rewind`` with ``rewind_step=k``).

:func:`run_imp` returns one row per seed × variant × round and writes a
checkpoint after every round into its run folder; started again on the same
folder it resumes and returns the same table as an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

import coursekit
from coursekit.core import files, models
from coursekit.core.batched import fit_batched
from coursekit.core.data import Dataset
from coursekit.core.hooks import StepContext
from coursekit.core.masks import Mask, prunable_parameters
from coursekit.core.progress import tqdm
from coursekit.core.pruning import mask_from_scores
from coursekit.core.train import TrainSettings, fit
from coursekit.methods import criteria, rewind, schedules

CONTROLS = ("random_reinit", "random_mask")
EARLY_STOP = ("val_loss", "val_acc")


@dataclass(frozen=True)
class LotterySettings(TrainSettings):
    """An IMP experiment. Defaults follow Frankle & Carbin 2019's LeNet-300-100 runs.

    Attributes:
        model: a name from :data:`coursekit.core.models.MODELS`.
        epochs, lr, optimizer, batch_size: training of every round (Adam, 1.2e-3, 60).
        rounds: pruning rounds after the dense round 0.
        prune_fraction_of_remaining: fraction of the *remaining* weights removed per round.
        scope: ``"layerwise"`` (their LeNet) or ``"global"``.
        last_layer_rate: the output layer prunes ``rate × prune_fraction_of_remaining``
            per round; ``None`` means the paper's 0.5. Only with ``scope="layerwise"``.
        criterion: mask criterion (:mod:`coursekit.methods.criteria`), ``large_final`` for tickets.
        protocols: weight protocols with an IMP trajectory each (:mod:`coursekit.methods.rewind`).
        controls: trained at every round on the first protocol's masks: ``random_reinit``
            (same structure, new weights) and ``random_mask`` (same per-layer densities).
        rewind_step: the iteration the ``rewind`` protocol returns to (only with ``rewind``).
        seeds: one IMP run per seed (network init, minibatch order, random controls).
        evals_per_epoch: evaluations per epoch, for the early-stopping iteration.
        early_stop: what picks the early-stopping iteration: ``"val_loss"`` (its minimum,
            Frankle & Carbin 2019) or ``"val_acc"`` (its maximum).

    Every field is checked when the settings are made, before anything trains.
    """

    epochs: int = 10
    rounds: int = 10
    prune_fraction_of_remaining: float = 0.2
    scope: str = "layerwise"
    last_layer_rate: float | None = None
    criterion: str = "large_final"
    protocols: tuple[str, ...] = ("init",)
    controls: tuple[str, ...] = CONTROLS
    rewind_step: int = 0
    seeds: tuple[int, ...] = (0,)
    evals_per_epoch: int = 2
    early_stop: str = "val_loss"

    def __post_init__(self) -> None:
        super().__post_init__()
        criteria.get(self.criterion)
        for field in ("protocols", "controls", "seeds"):
            value = getattr(self, field)
            if isinstance(value, str) or not isinstance(value, (tuple, list)):
                raise ValueError(f"{field} must be a tuple, e.g. {field}=({value!r},), got {value!r}")
            if len(set(value)) != len(value):
                raise ValueError(f"{field} must not repeat an entry, got {value!r}")
            object.__setattr__(self, field, tuple(value))
        if not self.protocols:
            raise ValueError("protocols must name at least one weight protocol")
        for p in self.protocols:
            rewind.get(p)
        unknown = [c for c in self.controls if c not in CONTROLS]
        if unknown:
            raise ValueError(f"unknown controls {unknown}; expected a subset of {CONTROLS}")
        both = sorted(set(self.protocols) & set(self.controls))
        if both:
            raise ValueError(f"{both} are both protocols and controls; drop them from one, e.g. "
                             f"controls={tuple(c for c in self.controls if c not in both)}")
        if self.scope not in ("layerwise", "global"):
            raise ValueError(f"scope must be 'layerwise' or 'global', got {self.scope!r}")
        schedules.iterative(self.prune_fraction_of_remaining, max(self.rounds, 1))
        if self.rounds < 0 or self.epochs < 1 or not self.seeds or self.evals_per_epoch < 1:
            raise ValueError("need rounds >= 0, epochs >= 1, evals_per_epoch >= 1 and at least one seed")
        bad_seeds = [s for s in self.seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
        if bad_seeds:
            raise ValueError(f"seeds must be non-negative ints, got {bad_seeds}")
        if self.last_layer_rate is not None:
            if self.scope == "global":
                raise ValueError("last_layer_rate applies to scope='layerwise' only; a global threshold "
                                 "sets every layer's density itself (leave last_layer_rate=None)")
            if not 0 < self.last_layer_rate * self.prune_fraction_of_remaining < 1:
                raise ValueError(f"last_layer_rate × prune_fraction_of_remaining must lie in (0, 1), got "
                                 f"{self.last_layer_rate} × {self.prune_fraction_of_remaining}")
        if self.rewind_step < 0:
            raise ValueError(f"rewind_step must be >= 0, got {self.rewind_step}")
        if self.rewind_step and "rewind" not in self.protocols:
            raise ValueError(f"rewind_step={self.rewind_step} is used by the 'rewind' protocol only; add "
                             f"'rewind' to protocols {self.protocols} or leave rewind_step at 0")
        if self.early_stop not in EARLY_STOP:
            raise ValueError(f"early_stop must be one of {EARLY_STOP}, got {self.early_stop!r}")

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(self.protocols) + tuple(self.controls)

    def targets(self, layers: list[str]) -> list[float | dict[str, float]]:
        """What each round prunes to: a global density, or per-layer densities."""
        if self.scope == "global":
            return schedules.iterative(self.prune_fraction_of_remaining, self.rounds) if self.rounds else []
        if not self.rounds:
            return []
        rate = 0.5 if self.last_layer_rate is None else self.last_layer_rate
        return schedules.iterative_budgets(self.prune_fraction_of_remaining, self.rounds, layers,
                                           {layers[-1]: rate})


def _derived_seed(seed: int, round_: int, salt: int) -> int:
    return (seed * 1_000_003 + round_ * 10_007 + salt) % 2**62


class _RewindSaver:
    """Hook keeping a copy of the parameters as they are after ``step`` optimiser steps."""

    def __init__(self, step: int) -> None:
        self.step, self.state = step, None

    def __call__(self, ctx: StepContext) -> None:
        if ctx.step == self.step:
            self.state = rewind.snapshot(ctx.model)


def _record(settings: LotterySettings, data: Dataset) -> dict:
    """Everything that determines a run folder's results (checked by :func:`coursekit.core.files.ensure_record`)."""
    return {"coursekit": coursekit.__version__, "settings": asdict(settings), "data": data.fingerprint()}


def _check_against_data(settings: LotterySettings, data: Dataset) -> None:
    """Settings that only the data can refute, checked before the dense round trains."""
    steps = settings.epochs * -(-len(data.y_train) // settings.batch_size)
    if settings.rewind_step > steps:
        raise ValueError(f"rewind_step {settings.rewind_step} is never reached: dense training has {steps} "
                         f"steps ({settings.epochs} epochs of {len(data.y_train)} examples in batches of "
                         f"{settings.batch_size})")


@dataclass
class _Job:
    """One network to train in a round: whose, which variant, its model and mask."""

    seed: int
    variant: str
    model: nn.Module
    mask: Mask
    hooks: tuple = ()
    start: dict[str, torch.Tensor] | None = None


def _train_jobs(jobs: list[_Job], data: Dataset, settings: LotterySettings,
                batch: bool) -> list[tuple[dict, dict[str, torch.Tensor]]]:
    """Train every job under its mask (together when ``batch``); rows and final weights."""
    steps_per_epoch = -(-len(data.y_train) // settings.batch_size)
    common = {**settings.fit_kwargs(), "eval_test": True, "progress": False,
              "eval_every": max(1, steps_per_epoch // settings.evals_per_epoch)}
    if batch and not any(j.hooks for j in jobs):
        results = fit_batched([j.model for j in jobs], data, [j.seed for j in jobs],
                              masks=[j.mask for j in jobs], **common)
    else:
        results = [fit(j.model, data, seed=j.seed, hooks=[j.mask.hook(j.model), *j.hooks], **common)
                   for j in jobs]
    out = []
    for job, result in zip(jobs, results, strict=True):
        hist = result.history
        best = result.early_stop(settings.early_stop)
        row = {"density": job.mask.density, "early_stop_step": int(best["step"]),
               "val_acc_early_stop": float(best["val_acc"]), "test_acc_early_stop": float(best["test_acc"]),
               "test_acc_end": float(hist["test_acc"].iloc[-1]), "train_steps": int(hist["step"].iloc[-1])}
        out.append((row, rewind.snapshot(job.model)))
    return out


def _prune_level(settings: LotterySettings, start: Mapping[str, torch.Tensor],
                 final: Mapping[str, torch.Tensor], previous: Mask,
                 target: float | dict[str, float], generator: torch.Generator) -> Mask:
    """The next mask: criterion scores of the surviving weights, pruned to ``target``."""
    names = list(previous)
    scores = criteria.scores(settings.criterion, start, final, names, generator)
    if isinstance(target, dict):
        return mask_from_scores(scores, scope=target, previous=previous)
    return mask_from_scores(scores, target, "global", previous=previous)


def _random_mask_like(mask: Mask, generator: torch.Generator) -> Mask:
    """A random mask with the same per-layer densities as ``mask``."""
    scores = {n: torch.rand(t.shape, generator=generator).to(t.device) for n, t in mask.items()}
    counts = {n: int(t.sum()) / t.numel() for n, t in mask.items()}
    return mask_from_scores(scores, scope=counts)


def run_imp(settings: LotterySettings, data: Dataset, run_dir: str | Path | None = None,
            progress: bool = True, batch: bool = False) -> pd.DataFrame:
    """Run IMP for every seed and protocol, plus the controls; one row per seed × variant × round.

    Columns: ``seed``, ``variant`` (a protocol or a control), ``round`` (0 = dense),
    ``density`` (fraction of all prunable weights kept), ``early_stop_step`` (the step of
    the lowest validation loss, or of the best validation accuracy: ``settings.early_stop``),
    ``val_acc_early_stop``, ``test_acc_early_stop``,
    ``test_acc_end``, ``train_steps``.

    With ``run_dir``, each finished round is written to ``run_dir/seed<S>/round<R>.pt``
    (rows, masks and trained weights) and ``run_dir/settings.json`` records what
    determines the results (settings, the data's fingerprint, the library version); a
    later call with the same folder skips finished rounds and returns the same table.
    Anything else on an existing folder, a missing round or an unreadable checkpoint
    raises ``ValueError`` naming the file, before anything trains.

    ``batch=True`` trains all networks of a round — every seed, protocol and control —
    as one batched model (:mod:`coursekit.core.batched`); the table is the same to float
    tolerance.
    """
    _check_against_data(settings, data)
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:
        if not (run_dir / "settings.json").is_file() and any(run_dir.glob("seed*/round*.pt")):
            raise ValueError(f"run folder {run_dir} holds checkpoints but no settings.json, so nothing says "
                             "what made them; use another folder, or delete this one to start over")
        files.ensure_record(run_dir / "settings.json", _record(settings, data))
    runs = [_SeedRun(settings, data, seed, run_dir) for seed in settings.seeds]
    bar = tqdm(total=len(runs) * (1 + settings.rounds), initial=sum(r.done + 1 for r in runs),
               desc="IMP rounds", disable=not progress)
    for round_ in range(settings.rounds + 1):
        todo = [r for r in runs if r.done < round_]
        if not todo:
            continue
        jobs = {r.seed: r.jobs(round_) for r in todo}
        trained = iter(_train_jobs([j for r in todo for j in jobs[r.seed]], data, settings, batch))
        for r in todo:
            r.finish(round_, [(j, next(trained)) for j in jobs[r.seed]])
            bar.update()
    bar.close()
    return pd.DataFrame([row for r in runs for row in r.rows])


class _SeedRun:
    """One seed's IMP trajectory: its state between rounds, its rows, its checkpoints."""

    def __init__(self, settings: LotterySettings, data: Dataset, seed: int, run_dir: Path | None):
        self.settings, self.data, self.seed = settings, data, seed
        model = self.build(seed)
        self.init = rewind.snapshot(model)
        self.layers = list(prunable_parameters(model))
        self.targets = settings.targets(self.layers)
        self.dir = run_dir / f"seed{seed}" if run_dir is not None else None
        self.rows: list[dict] = []
        self.state: dict | None = None
        self.done = -1
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            finished = sorted(self.dir.glob("round*.pt"))
            rounds = [int(p.stem[len("round"):]) for p in finished]
            if rounds != list(range(len(rounds))):
                missing = sorted(set(range(max(rounds) + 1)) - set(rounds))
                raise ValueError(f"{self.dir} lacks round(s) {missing} but holds later ones {rounds}: the later "
                                 "rounds were pruned from the missing ones, so delete the files after the gap "
                                 "to train them again")
            for path in finished:
                self.rows += files.load_torch(path)["rows"]
            if finished:
                self.state = files.load_torch(finished[-1], map_location=data.device)
                self.done = rounds[-1]

    def build(self, seed: int) -> nn.Module:
        s, d = self.settings, self.data
        return models.build(s.model, d.input_shape, d.num_classes, seed=seed, device=d.device)

    def jobs(self, round_: int) -> list[_Job]:
        s = self.settings
        if round_ == 0:  # the dense network, shared by every variant
            model = self.build(self.seed)
            self.saver = _RewindSaver(s.rewind_step)
            if s.rewind_step == 0:
                self.saver.state = rewind.snapshot(model)
            hooks = (self.saver,) if "rewind" in s.protocols and s.rewind_step > 0 else ()
            return [_Job(self.seed, "dense", model, Mask.ones_like(model), hooks, self.init)]
        gen = torch.Generator().manual_seed(_derived_seed(self.seed, round_, 1))
        jobs = []
        for p in s.protocols:
            prev = self.state["protocols"][p]
            mask = _prune_level(s, prev["start"], prev["final"], prev["mask"], self.targets[round_ - 1], gen)
            model = self.build(self.seed)
            fresh = rewind.snapshot(self.build(_derived_seed(self.seed, round_, 2))) if p == "random_reinit" else None
            rewind.reset(model, mask, p, self.init, rewind=self.state["rewind"], fresh=fresh, generator=gen)
            jobs.append(_Job(self.seed, p, model, mask, start=rewind.snapshot(model)))
        ticket = jobs[0].mask
        for c in s.controls:
            model = self.build(self.seed)
            if c == "random_reinit":
                mask, fresh = ticket, rewind.snapshot(self.build(_derived_seed(self.seed, round_, 3)))
                rewind.reset(model, mask, "random_reinit", self.init, fresh=fresh)
            else:
                mask = _random_mask_like(ticket, gen)
                rewind.reset(model, mask, "init", self.init)
            jobs.append(_Job(self.seed, c, model, mask))
        return jobs

    def finish(self, round_: int, trained: list[tuple[_Job, tuple[dict, dict]]]) -> None:
        s = self.settings
        if round_ == 0:
            (job, (row, final)), = trained
            rows = [{"seed": self.seed, "variant": v, "round": 0, **row} for v in s.variants]
            protocols = {p: {"mask": job.mask, "start": self.init, "final": final} for p in s.protocols}
            self.state = {"rewind": self.saver.state, "protocols": protocols, "rows": rows}
        else:
            rows = [{"seed": self.seed, "variant": job.variant, "round": round_, **row}
                    for job, (row, _) in trained]
            protocols = {job.variant: {"mask": job.mask, "start": job.start, "final": final}
                         for job, (_, final) in trained if job.variant in s.protocols}
            self.state = {"rewind": self.state["rewind"], "protocols": protocols, "rows": rows}
        self.rows += rows
        self.done = round_
        if self.dir is not None:
            files.save_torch(self.state, self.dir / f"round{round_:02d}.pt")


def load_masks(run_dir: str | Path, seed: int, protocol: str) -> dict[int, Mask]:
    """Round → mask of ``protocol`` for ``seed``, read back from a run folder's checkpoints."""
    seed_dir = Path(run_dir) / f"seed{seed}"
    paths = sorted(seed_dir.glob("round*.pt"))
    if not paths:
        raise FileNotFoundError(f"no checkpoints in {seed_dir}; run run_imp with run_dir={run_dir}")
    out = {}
    for f in paths:
        state = files.load_torch(f)
        if protocol not in state["protocols"]:
            raise ValueError(f"protocol {protocol!r} not in this run; it has {list(state['protocols'])}")
        out[int(f.stem[len("round"):])] = state["protocols"][protocol]["mask"]
    return out
