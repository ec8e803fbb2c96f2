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

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from coursekit import criteria, models, rewind, schedules
from coursekit.data import Dataset
from coursekit.masks import Mask, prunable_parameters
from coursekit.pruning import mask_from_scores
from coursekit.train import StepContext, fit

CONTROLS = ("random_reinit", "random_mask")


@dataclass(frozen=True)
class LotterySettings:
    """An IMP experiment. Defaults follow Frankle & Carbin 2019's LeNet-300-100 runs.

    Attributes:
        model: a name from :data:`coursekit.models.MODELS`.
        epochs, lr, optimizer, batch_size: training of every round (Adam, 1.2e-3, 60).
        rounds: pruning rounds after the dense round 0.
        prune_fraction_of_remaining: fraction of the *remaining* weights removed per round.
        scope: ``"layerwise"`` (their LeNet) or ``"global"``.
        last_layer_rate: the output layer prunes ``rate × prune_fraction_of_remaining``
            per round (0.5 in the paper); only with ``scope="layerwise"``.
        criterion: mask criterion (:mod:`coursekit.criteria`), ``large_final`` for tickets.
        protocols: weight protocols with an IMP trajectory each (:mod:`coursekit.rewind`).
        controls: trained at every round on the first protocol's masks: ``random_reinit``
            (same structure, new weights) and ``random_mask`` (same per-layer densities).
        rewind_step: the iteration the ``rewind`` protocol returns to.
        seeds: one IMP run per seed (network init, minibatch order, random controls).
        evals_per_epoch: evaluations per epoch, for the early-stopping iteration.
    """

    model: str = "lenet300_100"
    epochs: int = 10
    lr: float = 1.2e-3
    optimizer: str = "adam"
    batch_size: int = 60
    rounds: int = 10
    prune_fraction_of_remaining: float = 0.2
    scope: str = "layerwise"
    last_layer_rate: float = 0.5
    criterion: str = "large_final"
    protocols: tuple[str, ...] = ("init",)
    controls: tuple[str, ...] = CONTROLS
    rewind_step: int = 0
    seeds: tuple[int, ...] = (0,)
    evals_per_epoch: int = 2

    def __post_init__(self) -> None:
        if self.model not in models.MODELS:
            raise ValueError(f"unknown model {self.model!r}; expected one of {tuple(models.MODELS)}")
        criteria.get(self.criterion)
        if not self.protocols:
            raise ValueError("protocols must name at least one weight protocol")
        for p in self.protocols:
            rewind.get(p)
        unknown = [c for c in self.controls if c not in CONTROLS]
        if unknown:
            raise ValueError(f"unknown controls {unknown}; expected a subset of {CONTROLS}")
        if self.scope not in ("layerwise", "global"):
            raise ValueError(f"scope must be 'layerwise' or 'global', got {self.scope!r}")
        schedules.iterative(self.prune_fraction_of_remaining, max(self.rounds, 1))
        if self.rounds < 0 or self.epochs < 1 or not self.seeds:
            raise ValueError("need rounds >= 0, epochs >= 1 and at least one seed")
        if self.rewind_step < 0:
            raise ValueError(f"rewind_step must be >= 0, got {self.rewind_step}")

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(self.protocols) + tuple(self.controls)

    def targets(self, layers: list[str]) -> list[float | dict[str, float]]:
        """What each round prunes to: a global density, or per-layer densities."""
        if self.scope == "global":
            return schedules.iterative(self.prune_fraction_of_remaining, self.rounds) if self.rounds else []
        if not self.rounds:
            return []
        return schedules.iterative_budgets(self.prune_fraction_of_remaining, self.rounds, layers,
                                           {layers[-1]: self.last_layer_rate})


def _derived_seed(seed: int, round_: int, salt: int) -> int:
    return (seed * 1_000_003 + round_ * 10_007 + salt) % 2**62


class _RewindSaver:
    """Hook keeping a copy of the parameters as they are after ``step`` optimiser steps."""

    def __init__(self, step: int) -> None:
        self.step, self.state = step, None

    def __call__(self, ctx: StepContext) -> None:
        if ctx.step == self.step:
            self.state = rewind.snapshot(ctx.model)


def _settings_file(run_dir: Path, settings: LotterySettings, data: Dataset) -> None:
    wanted = {"settings": json.loads(json.dumps(asdict(settings))), "data": data.name,
              "train_examples": len(data.y_train)}
    path = run_dir / "settings.json"
    if path.is_file():
        found = json.loads(path.read_text())
        if found != wanted:
            diff = {k: (found.get("settings", {}).get(k), v) for k, v in wanted["settings"].items()
                    if found.get("settings", {}).get(k) != v}
            if found.get("data") != wanted["data"] or found.get("train_examples") != wanted["train_examples"]:
                diff["data"] = ((found.get("data"), found.get("train_examples")),
                                (wanted["data"], wanted["train_examples"]))
            raise ValueError(f"run folder {run_dir} was made with other settings (folder, now): {diff}; "
                             "use another folder, or delete this one to start over. Nothing was changed.")
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(wanted, indent=1))
    os.replace(tmp, path)


def _save(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _train_level(model: nn.Module, data: Dataset, settings: LotterySettings, seed: int, mask: Mask,
                 extra_hooks=(), desc: str = "") -> tuple[dict, dict[str, torch.Tensor]]:
    """Train one network under ``mask``; return its results row and final weights."""
    steps_per_epoch = -(-len(data.y_train) // settings.batch_size)
    result = fit(model, data, epochs=settings.epochs, lr=settings.lr, batch_size=settings.batch_size,
                 optimizer=settings.optimizer, seed=seed, eval_test=True,
                 eval_every=max(1, steps_per_epoch // settings.evals_per_epoch),
                 hooks=[mask.hook(model), *extra_hooks], progress=False, desc=desc)
    hist = result.history
    best = hist.loc[hist["step"] == result.best_step].iloc[0]
    row = {"density": mask.density, "early_stop_step": result.best_step,
           "val_acc_early_stop": float(best["val_acc"]), "test_acc_early_stop": float(best["test_acc"]),
           "test_acc_end": float(hist["test_acc"].iloc[-1]), "train_steps": int(hist["step"].iloc[-1])}
    return row, rewind.snapshot(model)


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
            progress: bool = True) -> pd.DataFrame:
    """Run IMP for every seed and protocol, plus the controls; one row per seed × variant × round.

    Columns: ``seed``, ``variant`` (a protocol or a control), ``round`` (0 = dense),
    ``density`` (fraction of all prunable weights kept), ``early_stop_step`` (step of the
    best validation accuracy), ``val_acc_early_stop``, ``test_acc_early_stop``,
    ``test_acc_end``, ``train_steps``.

    With ``run_dir``, each finished round is written to ``run_dir/seed<S>/round<R>.pt``
    (rows, masks and trained weights) and ``run_dir/settings.json`` records the
    settings; a later call with the same folder skips finished rounds and returns the
    same table. Other settings on an existing folder raise ``ValueError``.
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:
        _settings_file(run_dir, settings, data)
    rows: list[dict] = []
    total = len(settings.seeds) * (1 + settings.rounds)
    bar = tqdm(total=total, desc="IMP rounds", disable=not progress)
    for seed in settings.seeds:
        rows += _run_seed(settings, data, seed, run_dir, bar)
    bar.close()
    return pd.DataFrame(rows)


def _run_seed(settings: LotterySettings, data: Dataset, seed: int, run_dir: Path | None,
              bar) -> list[dict]:
    def build(s: int) -> nn.Module:
        return models.build(settings.model, data.input_shape, data.num_classes, seed=s, device=data.device)

    model = build(seed)
    init = rewind.snapshot(model)
    layers = list(prunable_parameters(model))
    targets = settings.targets(layers)
    seed_dir = run_dir / f"seed{seed}" if run_dir is not None else None
    if seed_dir is not None:
        seed_dir.mkdir(parents=True, exist_ok=True)

    def checkpoint(r: int) -> Path | None:
        return seed_dir / f"round{r:02d}.pt" if seed_dir is not None else None

    # state carried from round to round: per protocol the mask, start and final weights
    rows: list[dict] = []
    state: dict | None = None
    done = -1
    if seed_dir is not None:
        for r in range(settings.rounds, -1, -1):
            if checkpoint(r).is_file():
                state = torch.load(checkpoint(r), map_location=data.device, weights_only=False)
                done = r
                break
    if state is not None:
        for r in range(done + 1):
            rows += torch.load(checkpoint(r), map_location="cpu", weights_only=False)["rows"]
        bar.update(done + 1)

    if state is None:  # round 0: the dense network, shared by every variant
        saver = _RewindSaver(settings.rewind_step)
        dense = Mask.ones_like(model)
        if settings.rewind_step == 0:
            saver.state = rewind.snapshot(model)
        row, final = _train_level(model, data, settings, seed, dense, [saver], "dense")
        if "rewind" in settings.protocols and saver.state is None:
            raise ValueError(f"rewind_step {settings.rewind_step} was never reached: dense training "
                             f"has {row['train_steps']} steps")
        rows += [{"seed": seed, "variant": v, "round": 0, **row} for v in settings.variants]
        state = {"rewind": saver.state,
                 "protocols": {p: {"mask": dense, "start": init, "final": final} for p in settings.protocols},
                 "rows": rows[-len(settings.variants):]}
        if seed_dir is not None:
            _save(state, checkpoint(0))
        bar.update(1)
        done = 0

    for r in range(done + 1, settings.rounds + 1):
        gen = torch.Generator().manual_seed(_derived_seed(seed, r, 1))
        level_rows, new_protocols = [], {}
        for p in settings.protocols:
            prev = state["protocols"][p]
            mask = _prune_level(settings, prev["start"], prev["final"], prev["mask"], targets[r - 1], gen)
            fresh = rewind.snapshot(build(_derived_seed(seed, r, 2))) if p == "random_reinit" else None
            rewind.reset(model, mask, p, init, rewind=state["rewind"], fresh=fresh, generator=gen)
            start = rewind.snapshot(model)
            row, final = _train_level(model, data, settings, seed, mask, desc=f"{p} round {r}")
            level_rows.append({"seed": seed, "variant": p, "round": r, **row})
            new_protocols[p] = {"mask": mask, "start": start, "final": final}
        ticket = new_protocols[settings.protocols[0]]["mask"]
        for c in settings.controls:
            if c == "random_reinit":
                mask = ticket
                fresh = rewind.snapshot(build(_derived_seed(seed, r, 3)))
                rewind.reset(model, mask, "random_reinit", init, fresh=fresh)
            else:
                mask = _random_mask_like(ticket, gen)
                rewind.reset(model, mask, "init", init)
            row, _ = _train_level(model, data, settings, seed, mask, desc=f"{c} round {r}")
            level_rows.append({"seed": seed, "variant": c, "round": r, **row})
        state = {"rewind": state["rewind"], "protocols": new_protocols, "rows": level_rows}
        rows += level_rows
        if seed_dir is not None:
            _save(state, checkpoint(r))
        bar.update(1)
    return rows


def load_masks(run_dir: str | Path, seed: int, protocol: str) -> dict[int, Mask]:
    """Round → mask of ``protocol`` for ``seed``, read back from a run folder's checkpoints."""
    seed_dir = Path(run_dir) / f"seed{seed}"
    files = sorted(seed_dir.glob("round*.pt"))
    if not files:
        raise FileNotFoundError(f"no checkpoints in {seed_dir}; run run_imp with run_dir={run_dir}")
    out = {}
    for f in files:
        state = torch.load(f, map_location="cpu", weights_only=False)
        if protocol not in state["protocols"]:
            raise ValueError(f"protocol {protocol!r} not in this run; it has {list(state['protocols'])}")
        out[int(f.stem[len("round"):])] = state["protocols"][protocol]["mask"]
    return out



PRESETS = {  # lectures/02_lottery_tickets.ipynb
    "ci": LotterySettings(epochs=5, rounds=5, prune_fraction_of_remaining=0.5, seeds=(0,)),
    "cpu": LotterySettings(epochs=5, rounds=8, prune_fraction_of_remaining=0.35, seeds=(0, 1)),
    "gpu": LotterySettings(epochs=20, rounds=15, prune_fraction_of_remaining=0.2, seeds=(0, 1, 2, 3, 4)),
}
