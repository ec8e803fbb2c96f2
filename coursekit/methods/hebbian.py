"""Hebbian pruning (slide 9): keep the connections whose two ends fire together.

"Cells that fire together wire together" (Hebb 1949), read backwards: a connection whose
pre- and post-synaptic units are unrelated over the data carries little, whatever its
weight. :func:`coactivation_scores` scores each weight ``W[j, i]`` of a Linear layer by
the absolute Pearson correlation, over the data, between its input unit ``i`` and its
output unit ``j`` after the activation that follows (what the next layer sees); the
scores go through the one scores → mask path (:func:`coursekit.core.pruning.mask_from_scores`),
so they compare with magnitude at equal density. The data are looked at, the labels not.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit.core import models
from coursekit.core.masks import prunable_parameters


def _correlation(post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """``|corr(post_j, pre_i)|`` as an (out, in) matrix; a unit that does not vary correlates with nothing."""
    def standardise(a: torch.Tensor) -> torch.Tensor:
        a = a.double() - a.double().mean(0)
        sd = a.pow(2).mean(0).sqrt()
        return torch.where(sd > 1e-12, a / sd.clamp_min(1e-12), torch.zeros_like(a))
    return (standardise(post).T @ standardise(pre) / pre.shape[0]).abs()


@torch.no_grad()
def coactivation_scores(model: nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """``|corr(input unit, output unit)|`` over ``x`` for every weight of every Linear child of ``model``.

    Keys are the weights' parameter names (``"1.weight"``), as for the other saliencies.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"Hebbian scores read an nn.Sequential child by child, got {type(model).__name__}")
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"need a batch of at least 2 examples, got shape {tuple(x.shape)}")
    weights = prunable_parameters(model)
    linear = {f"{name}.weight" for name, m in model.named_children() if isinstance(m, nn.Linear)}
    if not linear or not linear <= set(weights):
        raise ValueError(f"Hebbian scores need a Sequential of Linear layers (and element-wise activations); "
                         f"its prunable weights are {sorted(weights)}")
    was_training = model.training
    model.eval()
    scores, children = {}, dict(model.named_children())
    try:
        out = x
        for name, module in children.items():
            if not isinstance(module, nn.Linear):
                out = module(out)
                continue
            pre = out.flatten(1)
            out = post = module(pre)
            for after in models.unitwise_after(model, name):
                post = children[after](post)
            scores[f"{name}.weight"] = _correlation(post, pre).to(module.weight.dtype)
    finally:
        model.train(was_training)
    return scores
