"""Curvature seen through gradients: the trace of the Fisher information, per layer.

The Fisher information of the weights, ``F = E_x E_{y~p(y|x)} [g gᵀ]`` with
``g = ∇_w log p(y|x)``, measures how much the output distribution changes when a
weight moves: a large ``tr F`` means strong, "consolidated" connections. Achille et
al. 2019 ("Critical Learning Periods in Deep Networks") find that ``tr F`` rises
quickly in the first epochs, while the network learns, then falls as it forgets
information it does not need; a deficit changes how it is spread across layers.

* ``kind="true"``: labels drawn from the model's own predictive distribution
  (the Fisher proper);
* ``kind="empirical"``: the data's labels (the "empirical Fisher", Kunstner et al.
  2019 warn it is a different object; both are shown).

``tr F = E ||g||²`` needs one gradient per example. :func:`fisher_trace` gets them
all at once with ``torch.func.vmap(grad(...))`` in chunks, not a Python loop.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

FISHER_KINDS = ("true", "empirical")


def _layer_names(model: nn.Module) -> dict[str, str]:
    """Parameter name → its module's name and kind: ``"3.weight"`` → ``"3 Conv2d"``."""
    modules = dict(model.named_modules())
    names = {}
    for name, _ in model.named_parameters():
        owner = name.rpartition(".")[0]
        names[name] = f"{owner} {type(modules[owner]).__name__}".strip()
    return names


def _check_labels(x: torch.Tensor, y: torch.Tensor) -> None:
    if y.dtype != torch.long or y.shape != (x.shape[0],) or (y.numel() and int(y.min()) < 0):
        raise ValueError(f"labels must be non-negative int64 class indices, one per input: x has {x.shape[0]} "
                         f"inputs, y is {y.dtype} of shape {tuple(y.shape)}")


def fisher_trace(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, kind: str = "true",
                 chunk: int = 256, generator: torch.Generator | None = None) -> pd.Series:
    """Trace of the Fisher information per layer, from per-example gradients.

    Args:
        model: a classifier returning logits; evaluated in ``eval`` mode (BatchNorm
            uses its running statistics, so each example's gradient is its own).
        x: inputs ``(N, ...)``.
        y: labels ``(N,)``; needed for ``kind="empirical"``.
        kind: ``"true"`` (labels sampled from the model) or ``"empirical"``.
        chunk: examples per vectorised call (memory: ``chunk`` × parameter count).
        generator: fixes the sampled labels of the true Fisher.

    Returns:
        ``tr F`` restricted to each layer's parameters (a Series indexed by the module's
        name and kind, e.g. ``"0 Conv2d"``;
        ``(1/N) Σ_n ||∇ log p(y_n|x_n)||²`` over the layer's weights and biases); the
        sum over layers is the trace of the whole Fisher.
    """
    if kind not in FISHER_KINDS:
        raise ValueError(f"unknown Fisher kind {kind!r}; expected one of {FISHER_KINDS}")
    if kind == "empirical" and (y is None or y.shape[0] != x.shape[0]):
        raise ValueError("the empirical Fisher needs one label per input: pass y with y.shape[0] == x.shape[0]")
    if y is not None:
        _check_labels(x, y)
    if x.shape[0] == 0 or chunk < 1:
        raise ValueError(f"need at least one input and chunk ≥ 1, got {x.shape[0]} inputs, chunk={chunk}")
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())

    def log_likelihood(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return -F.cross_entropy(logits, yi.unsqueeze(0))

    per_example = vmap(grad(log_likelihood), in_dims=(None, 0, 0))
    layer_of = _layer_names(model)
    totals: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=x.device))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, x.shape[0], chunk):
            xb = x[start:start + chunk]
            if kind == "true":
                with torch.no_grad():
                    probs = F.softmax(model(xb), dim=1)
                yb = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            else:
                yb = y[start:start + chunk]
            for name, g in per_example(params, xb, yb).items():
                totals[layer_of[name]] += g.pow(2).sum()
    finally:
        model.train(was_training)
    return pd.Series({layer: t.item() / x.shape[0] for layer, t in totals.items()}, name=f"{kind}_fisher_trace")


class FisherTrace:
    """A :func:`coursekit.core.train.fit` hook recording :func:`fisher_trace` at the end of every epoch.

    ``rows`` (and :meth:`table`) hold one entry per (epoch, layer, kind); epoch 0 is
    recorded by calling :meth:`record` before training.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, kinds: tuple[str, ...] = FISHER_KINDS, seed: int = 0):
        if isinstance(kinds, str) or not kinds or any(k not in FISHER_KINDS for k in kinds):
            raise ValueError(f"kinds must be a tuple of Fisher kinds from {FISHER_KINDS}, got {kinds!r}")
        _check_labels(x, y)
        self.x, self.y, self.kinds = x, y, kinds
        self.generator = torch.Generator(device=x.device).manual_seed(seed)
        self.rows: list[dict] = []

    def record(self, model: nn.Module, epoch: int) -> None:
        for kind in self.kinds:
            traces = fisher_trace(model, self.x, self.y, kind, generator=self.generator)
            self.rows += [{"epoch": epoch, "layer": layer, "kind": kind, "trace": value}
                          for layer, value in traces.items()]

    def __call__(self, ctx) -> None:
        if ctx.end_of_epoch:
            self.record(ctx.model, ctx.epoch + 1)

    def table(self) -> pd.DataFrame:
        """The recorded traces: columns ``epoch``, ``layer``, ``kind``, ``trace``."""
        return pd.DataFrame(self.rows, columns=["epoch", "layer", "kind", "trace"])
