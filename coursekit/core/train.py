"""One lean training loop: ``fit`` and ``evaluate``.

``fit`` trains on a :class:`coursekit.core.data.Dataset` with on-device minibatches,
calls optional hooks after every optimiser step (pruning re-applies its mask
there), evaluates on the validation split, keeps early-stopping bookkeeping
(the best validation step, as in Frankle & Carbin 2019's "early-stopping
iteration"), shows a tqdm progress bar and returns the history as a DataFrame.
With ``checkpoint=`` it writes its state after every epoch and, started again,
resumes where it stopped and returns the same history.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.core import files
from coursekit.core.data import Dataset, batches
from coursekit.core.hooks import Hook, StepContext
from coursekit.core.models import MODELS
from coursekit.core.progress import tqdm
from coursekit.core.runtime import check_fields

OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class TrainSettings:
    """How every network of an experiment is trained; topic settings extend it.

    Defaults: LeNet-300-100 with Adam at 1.2e-3, batch 60 (Frankle & Carbin 2019).
    """

    model: str = "lenet300_100"
    epochs: int = 5
    lr: float = 1.2e-3
    optimizer: str = "adam"
    batch_size: int = 60

    def __post_init__(self) -> None:
        check_fields(self)
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; expected one of {tuple(MODELS)}")
        check_training(**self.fit_kwargs())

    def fit_kwargs(self) -> dict:
        """The arguments of :func:`fit` these settings fix."""
        return {"epochs": self.epochs, "lr": self.lr, "optimizer": self.optimizer,
                "batch_size": self.batch_size}


@dataclass(frozen=True)
class SGDSettings(TrainSettings):
    """SGD with momentum, weight decay and an exponential learning-rate decay on a BatchNorm VGG.

    The recipe of the convnet lectures (critical periods, early-bird tickets,
    data-oblivious pruning); each topic overrides the values its paper uses.
    """

    model: str = "vgg_bn"
    width: float = 0.5
    lr: float = 0.1
    optimizer: str = "sgd"
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_decay: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()  # checks the training knobs, momentum and lr_decay among them
        if not self.width > 0:
            raise ValueError(f"{type(self).__name__}.width must be positive, got {self.width}")

    def fit_kwargs(self) -> dict:
        return super().fit_kwargs() | {"momentum": self.momentum, "weight_decay": self.weight_decay,
                                       "lr_decay": self.lr_decay}


@dataclass
class FitResult:
    """The outcome of :func:`fit`.

    ``history`` has one row per evaluation (step 0 included): ``step``, ``epoch``,
    ``train_loss`` (mean since the previous row), ``val_loss``, ``val_acc`` and, with
    ``eval_test=True``, ``test_loss`` and ``test_acc``.
    """

    history: pd.DataFrame
    best_step: int
    best_val_acc: float
    stopped_early: bool

    @property
    def final(self) -> pd.Series:
        """The last row of the history."""
        return self.history.iloc[-1]

    def early_stop(self, by: str = "val_loss") -> pd.Series:
        """The history row of the early-stopping iteration.

        ``by="val_loss"``: the lowest validation loss, Frankle & Carbin 2019's early-stopping
        iteration; ``by="val_acc"``: the best validation accuracy (``best_step``). Ties go
        to the earlier evaluation; the untrained row (step 0) is never picked.
        """
        if by not in ("val_loss", "val_acc"):
            raise ValueError(f"early stopping is by 'val_loss' or 'val_acc', got {by!r}")
        trained = self.history[self.history["step"] > 0]
        if trained.empty:
            raise ValueError("the history has no evaluation after training started")
        return trained.loc[trained[by].idxmin() if by == "val_loss" else trained[by].idxmax()]


def _fused_supported(params: list[torch.Tensor]) -> bool:
    """Fused optimiser kernels: CUDA, and CPU from PyTorch 2.4 on (2.5× faster Adam here)."""
    device = params[0].device.type if params else "cpu"
    return device == "cuda" or (device == "cpu" and torch.torch_version.TorchVersion(torch.__version__) >= "2.4")


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def check_training(*, epochs: int = 1, lr: float = 0.1, batch_size: int = 60, optimizer: str = "sgd",
                   momentum: float = 0.0, weight_decay: float = 0.0, lr_decay: float = 1.0,
                   eval_every: int | None = None, patience: int | None = None,
                   seeds: Iterable[int] = (0,)) -> None:
    """Refuse training arguments that would fail late or train something else than asked.

    Shared by :func:`fit` and :func:`coursekit.core.batched.fit_batched`; raises ``ValueError``
    naming the argument, what it got and what it takes.
    """
    for name, value, optional in (("epochs", epochs, False), ("batch_size", batch_size, False),
                                  ("eval_every", eval_every, True), ("patience", patience, True)):
        if (value is not None or not optional) and (not _is_int(value) or value < 1):
            raise ValueError(f"{name} must be a positive int{' or None' if optional else ''}, got {value!r}")
    if not _is_number(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}")
    if not _is_number(momentum) or not 0 <= momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    if momentum and optimizer != "sgd":
        raise ValueError(f"momentum applies to optimizer='sgd' only; {optimizer!r} keeps its own moment "
                         f"estimates (leave momentum at 0)")
    if not _is_number(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    if not _is_number(lr_decay) or not 0 < lr_decay <= 1:
        raise ValueError(f"lr_decay must be in (0, 1], got {lr_decay!r}")
    bad = [s for s in seeds if not _is_int(s) or s < 0]
    if bad:
        raise ValueError(f"seeds must be non-negative ints, got {bad}")


def _scaled_groups(model: nn.Module, lr_scales: Mapping[str, float]) -> list[dict]:
    """``model``'s parameters as optimiser groups, each with its ``lr_scale`` (see :func:`fit`)."""
    bad = ({k: v for k, v in lr_scales.items() if not isinstance(k, str) or not _is_number(v) or v <= 0}
           if isinstance(lr_scales, Mapping) else None)
    if bad is None or bad:
        raise ValueError(f"lr_scales maps parameter-name prefixes to positive factors, e.g. {{'gate': 10}}; "
                         f"got {bad or lr_scales!r}")
    names = [n for n, _ in model.named_parameters()]
    unused = [k for k in lr_scales if not any(n.startswith(k) for n in names)]
    if unused:
        raise ValueError(f"lr_scales prefixes {unused} match no parameter; the model has {names}")
    groups: dict[float, list[torch.Tensor]] = {}
    for name, p in model.named_parameters():
        scale = next((v for k, v in lr_scales.items() if name.startswith(k)), 1.0)
        groups.setdefault(float(scale), []).append(p)
    return [{"params": ps, "lr_scale": scale} for scale, ps in groups.items()]


def make_optimizer(name: str, params: Iterable[torch.Tensor] | Iterable[dict], lr: float, momentum: float = 0.0,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """``sgd`` (with optional momentum), ``adam`` or ``adamw`` over ``params``, fused where possible.

    ``params`` may be parameter groups whose ``lr_scale`` multiplies ``lr``."""
    check_training(lr=lr, optimizer=name, momentum=momentum, weight_decay=weight_decay)
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [g | {"lr": lr * g.get("lr_scale", 1.0), "lr_scale": g.get("lr_scale", 1.0)} for g in params]
        tensors = [p for g in params for p in g["params"]]
    else:
        params = [{"params": params, "lr_scale": 1.0}]
        tensors = params[0]["params"]
    fused = {"fused": True} if _fused_supported(tensors) else {}
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **fused)
    kind = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return kind(params, lr=lr, weight_decay=weight_decay, **fused)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 4096) -> dict[str, float]:
    """Mean cross-entropy ``loss`` and accuracy ``acc`` of ``model`` on ``(x, y)``."""
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"need as many targets as inputs (and at least one): x {tuple(x.shape)}, "
                         f"y {tuple(y.shape)}")
    was_training = model.training
    model.eval()
    loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for xb, yb in batches(x, y, batch_size, shuffle=False):
        logits = model(xb)
        loss += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    model.train(was_training)
    n = x.shape[0]
    return {"loss": loss.item() / n, "acc": correct.item() / n}


def check_compatible(model: nn.Module, data: Dataset) -> None:
    """Fail early, in words, when the model and the data cannot work together."""
    param = next(model.parameters(), None)
    if param is None:
        raise ValueError("the model has no parameters to train")
    if param.device != data.device:
        raise ValueError(f"the model is on {param.device} but the data on {data.device}; build the "
                         f"model with device=data.device (or move it with .to)")
    was_training = model.training
    model.eval()  # a probe, not a step: BatchNorm statistics stay as they are
    try:
        with torch.no_grad():
            logits = model(data.x_train[:2])
    except RuntimeError as err:
        raise ValueError(f"the model does not accept inputs of shape {data.input_shape} "
                         f"from {data.name!r}: {err}") from err
    finally:
        model.train(was_training)
    if logits.shape != (min(2, len(data.y_train)), data.num_classes):
        raise ValueError(f"the model outputs shape {tuple(logits.shape[1:])} per example but "
                         f"{data.name!r} has {data.num_classes} classes")


def _epoch_generator(device: torch.device, seed: int, epoch: int) -> torch.Generator:
    """The minibatch order of one epoch depends only on (seed, epoch): resumable, repeatable."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)


def _mean_finite_loss(window: list[torch.Tensor], step: int, epoch: int) -> float:
    """Mean of the losses of the last ``len(window)`` steps, which ended at ``step``; refuses NaN/inf."""
    losses = torch.stack(window)
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        first = step - len(window) + 1 + int(bad[0, 0])
        raise FloatingPointError(f"the training loss became {losses[bad[0, 0]].item()} at step {first} "
                                 f"(in epoch {epoch + 1}); lower the learning rate, or check the data and any penalty")
    return losses.mean().item()


def fit(model: nn.Module, data: Dataset, *, epochs: int = 1, lr: float = 0.1, batch_size: int = 60,
        optimizer: str = "sgd", momentum: float = 0.0, weight_decay: float = 0.0, seed: int = 0,
        lr_decay: float = 1.0, eval_every: int | None = None, eval_test: bool = False,
        patience: int | None = None, hooks: Iterable[Hook] = (),
        transform: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
        penalty: Callable[[nn.Module], torch.Tensor] | None = None,
        lr_scales: Mapping[str, float] | None = None,
        checkpoint: str | Path | None = None, progress: bool = True,
        desc: str = "training") -> FitResult:
    """Train ``model`` on ``data`` with cross-entropy and return its history.

    Args:
        epochs: passes over the training split.
        batch_size: examples per step (60 in Frankle & Carbin's LeNet runs).
        optimizer, lr, momentum, weight_decay: see :func:`make_optimizer`.
        lr_decay: the learning rate of epoch ``e`` is ``lr * lr_decay**e`` (exponential
            annealing, as in Achille et al. 2019); 1 keeps it constant.
        seed: fixes the minibatch order (the model's init comes from its own seed).
        eval_every: evaluate every so many steps; default once per epoch. The last
            step is always evaluated, so the last row describes the trained model.
        eval_test: also evaluate on the test split at each evaluation.
        patience: stop after this many evaluations without a better validation
            accuracy; ``None`` trains all epochs (the best step is recorded anyway).
        hooks: callables taking a :class:`StepContext`, run after every optimiser step;
            those that mask weights (``masks_weights = True``, e.g. ``Mask.hook``) run
            first, so the others always see the masked weights.
        transform: ``transform(xb, epoch)`` changes each training minibatch, e.g. a
            sensory deficit for the first epochs (:mod:`coursekit.lectures.critical`).
        penalty: ``penalty(model)`` is added to the loss, e.g. the L1 norm of
            BatchNorm scales of network slimming (:mod:`coursekit.lectures.early_bird`); the
            recorded ``train_loss`` includes it.
        lr_scales: ``{name prefix: factor}``: parameters whose name starts with a prefix
            learn at ``lr × factor`` (the first matching prefix counts), e.g. ``{"gate": 10}``
            for the gates of :mod:`coursekit.methods.gates`, which must travel much further
            than the weights.
        checkpoint: a file to save the state to after each epoch; if it exists when
            ``fit`` starts, training resumes from it. It must have been written with the
            same arguments and data (``epochs`` may grow: training goes on); otherwise a
            ``ValueError`` names the differences.
        progress: show a tqdm progress bar.

    Raises:
        FloatingPointError: the loss became NaN or infinite; names the first such step.
    """
    check_training(epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer, momentum=momentum,
                   weight_decay=weight_decay, lr_decay=lr_decay, eval_every=eval_every, patience=patience,
                   seeds=(seed,))
    hooks = None if callable(hooks) else list(hooks)
    if hooks is None or not all(callable(h) for h in hooks):
        raise ValueError("hooks must be a list of callables taking a StepContext, e.g. hooks=[mask.hook(model)]")
    hooks.sort(key=lambda h: not getattr(h, "masks_weights", False))  # stable: masks first
    device = data.device
    check_compatible(model, data)
    opt = make_optimizer(optimizer, _scaled_groups(model, lr_scales or {}), lr, momentum, weight_decay)
    n_train = data.x_train.shape[0]
    steps_per_epoch = -(-n_train // batch_size)
    rows: list[dict] = []
    start_epoch, stale, stopped = 0, 0, False
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.is_dir():
        raise ValueError(f"checkpoint {checkpoint} is a folder; give a file name, e.g. {checkpoint / 'fit.pt'}")
    made_by = {"lr": lr, "batch_size": batch_size, "optimizer": optimizer, "momentum": momentum,
               "weight_decay": weight_decay, "seed": seed, "lr_decay": lr_decay, "eval_every": eval_every,
               "eval_test": eval_test, "patience": patience,
               "data": data.fingerprint() if checkpoint is not None else None}
    if lr_scales:
        made_by["lr_scales"] = dict(lr_scales)
    if checkpoint is not None and checkpoint.is_file():
        state = files.load_torch(checkpoint, map_location=device)
        differ = files.differences(state.get("made_by"), made_by)
        if differ:
            raise ValueError(f"checkpoint {checkpoint} was written by another training run; (checkpoint, now): "
                             f"{differ}; delete it to start over, or use another file")
        if state["epoch"] > epochs:
            raise ValueError(f"checkpoint {checkpoint} already holds {state['epoch']} epochs but epochs={epochs} "
                             "was asked; epochs may only grow (delete the checkpoint to train fewer)")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        rows, start_epoch, stale, stopped = state["rows"], state["epoch"], state["stale"], state["stopped"]

    def record(step: int, train_loss: float) -> bool:
        """Evaluate, append a row, and say whether validation accuracy improved."""
        row = {"step": step, "epoch": step / steps_per_epoch, "train_loss": train_loss}
        for split in ("val", "test") if eval_test else ("val",):
            metrics = evaluate(model, *data.split(split))
            row |= {f"{split}_loss": metrics["loss"], f"{split}_acc": metrics["acc"]}
        if not math.isfinite(row["val_loss"]):
            raise FloatingPointError(f"the validation loss became {row['val_loss']} at step {step}: the weights "
                                     "diverged; lower the learning rate")
        improved = not rows or row["val_acc"] > max(r["val_acc"] for r in rows)
        rows.append(row)
        return improved

    if not rows:
        record(0, float("nan"))
    model.train()
    step = start_epoch * steps_per_epoch
    bar = tqdm(total=epochs * steps_per_epoch, initial=step, desc=desc, disable=not progress,
               leave=False)
    window: list[torch.Tensor] = []  # the losses since the last evaluation (no sync per step)
    for epoch in range(start_epoch, epochs):
        if stopped:
            break
        gen = _epoch_generator(device, seed, epoch)
        for group in opt.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0) * lr_decay**epoch  # checkpoints from before lr_scales lack it
        for xb, yb in batches(data.x_train, data.y_train, batch_size, generator=gen):
            if transform is not None:
                xb = transform(xb, epoch)
            loss = F.cross_entropy(model(xb), yb)
            if penalty is not None:
                loss = loss + penalty(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            window.append(loss.detach())
            bar.update()
            end_of_epoch = step % steps_per_epoch == 0
            if hooks:
                ctx = StepContext(model, opt, step, epoch, loss, end_of_epoch)
                for hook in hooks:
                    hook(ctx)
            last_step = step == epochs * steps_per_epoch
            if last_step or (eval_every and step % eval_every == 0) or (eval_every is None and end_of_epoch):
                stale = 0 if record(step, _mean_finite_loss(window, step, epoch)) else stale + 1
                window.clear()
                bar.set_postfix(val_acc=f"{rows[-1]['val_acc']:.3f}")
                if patience is not None and stale >= patience:
                    stopped = True
                    break
        if checkpoint is not None:
            files.save_torch({"model": model.state_dict(), "optimizer": opt.state_dict(), "rows": rows,
                              "epoch": epoch + 1, "stale": stale, "stopped": stopped, "made_by": made_by},
                             checkpoint)
    bar.close()
    history = pd.DataFrame(rows)
    best = history.loc[history["val_acc"].idxmax()]
    return FitResult(history=history, best_step=int(best["step"]), best_val_acc=float(best["val_acc"]),
                     stopped_early=stopped)
