"""Pruning at initialisation (slide 10): SNIP, GraSP and SynFlow, and why the last one does not collapse.

All three score the weights of an untrained network; the mask is then kept while the
network trains from its initialisation.

* **SNIP** (Lee et al. 2019): ``|g ⊙ θ|`` on a batch — :func:`coursekit.methods.saliency.snip`.
* **GraSP** (Wang, Zhang & Grosse 2020): keep the weights whose removal would reduce the
  *gradient flow* ``gᵀg`` least. Removing ``θ`` changes it by about ``−2 θᵀHg``; the
  paper removes the weights with the largest ``S = −θ ⊙ Hg``, so the keep-score here is
  ``θ ⊙ Hg`` (:func:`grasp`; one Hessian-gradient product, logits divided by a temperature).
* **SynFlow** (Tanaka et al. 2020): data-free. With every parameter replaced by its
  absolute value and an all-ones input, ``R = 1ᵀ f(1)`` sums the products of the weights
  along every input–output path; the score ``|θ ⊙ ∂R/∂θ|`` is the share of that "synaptic
  flow" through each weight. It obeys a conservation law (what enters a unit leaves it),
  so pruning a layer raises the scores of what is left there; pruned iteratively on an
  exponential schedule (100 rounds by default) no layer is emptied before the network
  as a whole is (:func:`synflow_mask`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from coursekit.core.masks import Mask, prunable_parameters
from coursekit.core.pruning import mask_from_scores

Scores = dict[str, torch.Tensor]


def grasp(model: nn.Module, x: torch.Tensor, y: torch.Tensor, temperature: float = 200.0) -> Scores:
    """GraSP's keep-scores ``θ ⊙ Hg`` for the prunable weights (Wang et al. 2020; higher = keep).

    ``g`` and ``H`` are the gradient and Hessian of the cross-entropy of ``model(x) / temperature``
    (the paper's T = 200 keeps the softmax from saturating at initialisation).
    """
    if x.shape[0] == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"need as many labels as inputs, and at least one: got {x.shape[0]} and {y.shape[0]}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    weights = prunable_parameters(model)
    params = list(weights.values())
    was_training = model.training
    model.eval()
    try:
        g = torch.autograd.grad(F.cross_entropy(model(x) / temperature, y), params, create_graph=True)
        hg = torch.autograd.grad(sum((gi.detach() * gi).sum() for gi in g), params)  # H g: ∂(gᵀ stop(g))/∂θ
    finally:
        model.train(was_training)
    return {n: (w.detach() * h).detach() for (n, w), h in zip(weights.items(), hg, strict=True)}


def _linearised(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` with every weight ``|θ|`` and every bias 0, in eval mode.

    Without biases ``R`` sums over the paths from the input to the output only: a bias
    starts a path half-way, which would let the flow bypass — and prune away — the layers
    below it.
    """
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                p.abs_()
    return net


def synflow_scores(model: nn.Module, input_shape: Sequence[int], mask: Mask | None = None) -> Scores:
    """``|θ ⊙ ∂R/∂θ|`` for every parameter of ``model``, ``R = 1ᵀ f_{|θ|}(1)`` with the biases at 0.

    ``mask`` zeroes pruned weights first. Computed in float64: ``R`` is a sum over
    exponentially many paths.
    """
    net = _linearised(model)
    if mask is not None:
        mask.apply(net)
    params = dict(net.named_parameters())
    r = net(torch.ones(1, *input_shape, dtype=torch.float64, device=next(net.parameters()).device)).sum()
    grads = torch.autograd.grad(r, list(params.values()))
    return {n: (p * g).abs().detach() for (n, p), g in zip(params.items(), grads, strict=True)}


def synflow_mask(model: nn.Module, input_shape: Sequence[int], density: float, iterations: int = 100) -> Mask:
    """SynFlow's mask at ``density``: ``iterations`` rounds, round ``k`` keeping ``density^(k/n)``
    of all prunable weights by a global threshold on the scores of the network pruned so far."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int (Tanaka et al. use 100), got {iterations!r}")
    if isinstance(density, bool) or not isinstance(density, int | float) or not 0 < density <= 1:
        raise ValueError(f"density must lie in (0, 1] (sparsity in [0, 1)), got {density!r}")
    names = list(prunable_parameters(model))
    if not names:
        raise ValueError(f"{type(model).__name__} has no prunable weights")
    mask = None
    for k in range(1, iterations + 1):
        scores = synflow_scores(model, input_shape, mask)
        mask = mask_from_scores({n: scores[n] for n in names}, density ** (k / iterations), "global",
                                previous=mask)
    return mask
