"""Supermasks (Zhou et al. 2019): masks that make an *untrained* network accurate.

Two ways to get one:

* :func:`constant_supermask`: prune a trained network with a criterion (``large_final``),
  then set every survivor to ``sign(w_init) · σ`` (σ: the layer's init std) and do
  **not** train: Zhou et al. found such supermasks far above chance (86 % on MNIST and
  41 % on CIFAR-10 in their abstract, with their best criteria and rescaling).
* :func:`train_supermask`: keep the weights at their random initialisation forever and
  train only a *score* per weight; the forward pass uses the top-scoring fraction of
  each layer (Ramanujan et al. 2020's edge-popup; Zhou et al. trained Bernoulli masks),
  and gradients reach the scores through a straight-through estimator.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from coursekit.core.data import Dataset, batches
from coursekit.core.masks import Mask, prunable_parameters
from coursekit.core.progress import tqdm
from coursekit.core.pruning import mask_from_scores
from coursekit.core.train import evaluate
from coursekit.methods import rewind

RESCALINGS = {"variance": 0.5, "zhou": 1.0, "none": 0.0}  # survivors × density^(-power)


@torch.no_grad()
def constant_supermask(model: nn.Module, mask: Mask, init: Mapping[str, torch.Tensor],
                       rescale: str = "variance") -> nn.Module:
    """Survivors become ``sign(w_init) · σ_layer``, rescaled per layer; pruned weights 0; no training.

    ``rescale``:

    * ``"variance"`` (the default, what lecture 03 shows): × ``1/√density``, which keeps
      each unit's input variance at the dense network's. Without rescaling the few
      surviving ±σ weights of a sparse layer give signals too weak to beat the biases,
      and every input lands in one class.
    * ``"zhou"``: × ``1/density`` (total / kept weights), Zhou et al. 2019's dynamic
      weight rescaling, which keeps each unit's *mean* input instead.
    * ``"none"``: ±σ as they are.

    Biases keep their initial values.
    """
    if rescale not in RESCALINGS:
        raise ValueError(f"unknown rescale {rescale!r}; expected one of {tuple(RESCALINGS)}")
    rewind.reset(model, mask, "constant", init)
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        params[name].mul_(keep.float().mean().clamp_min(1e-12).pow(-RESCALINGS[rescale]))
    return model


class _TopKStraightThrough(torch.autograd.Function):
    """Forward: 1 for the top-``k`` scores, else 0. Backward: the gradient passes unchanged."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, k: int) -> torch.Tensor:
        out = torch.zeros_like(scores)
        out.view(-1)[scores.flatten().topk(k).indices] = 1.0
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


def _masked_params(model, scores, frozen, density):
    params = dict(frozen)
    for name, s in scores.items():
        k = max(1, round(density * s.numel()))
        params[name] = frozen[name] * _TopKStraightThrough.apply(s, k) * (s.numel() / k) ** 0.5
    return params


class _Masked(nn.Module):
    """The frozen network seen through the current top-k masks (for :func:`evaluate`)."""

    def __init__(self, model, scores, frozen, density):
        super().__init__()
        self.model, self.scores, self.frozen, self.density = model, scores, frozen, density

    def forward(self, x):
        return functional_call(self.model, _masked_params(self.model, self.scores, self.frozen,
                                                          self.density), (x,))


def train_supermask(model: nn.Module, data: Dataset, density: float, epochs: int = 2,
                    lr: float = 1.0, batch_size: int = 128, seed: int = 0,
                    progress: bool = True) -> tuple[Mask, pd.DataFrame]:
    """Learn a layer-wise mask of ``density`` over ``model``'s frozen random weights.

    Returns the final mask and a history (``epoch``, ``val_acc``, ``test_acc``). The
    model's own weights are never changed; like :func:`constant_supermask` (by default),
    the kept weights are scaled by ``1/√density``. Scores start at ``|w_init|`` (with a little
    noise to break ties) and are trained with SGD + momentum; their gradients are the
    weights' gradients times the tiny initial weights, hence the large default ``lr``.
    """
    if not 0 < density <= 1:
        raise ValueError(f"density must lie in (0, 1], got {density!r}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    frozen = {n: p.detach() for n, p in model.named_parameters()}
    scores = {n: (p.detach().abs() * (1 + 0.01 * torch.randn(p.shape, generator=torch.Generator()
                                                                 .manual_seed(seed)).to(p.device)))
              .requires_grad_() for n, p in prunable_parameters(model).items()}
    opt = torch.optim.SGD(scores.values(), lr=lr, momentum=0.9)
    masked = _Masked(model, scores, frozen, density)
    rows = [{"epoch": 0, **_accuracies(masked, data)}]
    for epoch in tqdm(range(epochs), desc="supermask", disable=not progress, leave=False):
        gen = torch.Generator(device=data.device).manual_seed(seed * 1_000_003 + epoch)
        for xb, yb in batches(data.x_train, data.y_train, batch_size, generator=gen):
            loss = F.cross_entropy(masked(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        rows.append({"epoch": epoch + 1, **_accuracies(masked, data)})
    mask = mask_from_scores({n: s.detach() for n, s in scores.items()}, density, "layerwise")
    return mask, pd.DataFrame(rows)


def _accuracies(model: nn.Module, data: Dataset) -> dict[str, float]:
    with torch.no_grad():
        return {"val_acc": evaluate(model, data.x_val, data.y_val)["acc"],
                "test_acc": evaluate(model, data.x_test, data.y_test)["acc"]}
