"""Data-dependent saliency (slide 8): how much the loss on data needs each weight.

Magnitude pruning asks only how large a weight is. The methods here ask the data:

* **ablation** — the exact change of the loss when one weight is set to zero
  (:func:`ablation`; one forward pass of the rest of the network per weight);
* **Taylor** — its first-order estimate ``ΔL ≈ −g·w``, scored ``|g·w|`` per weight
  (Molchanov et al. 2019; their 2017 paper scores whole feature maps, ``|mean(a·∂L/∂a)|``),
  and per filter ``(Σ g·w)²`` over its BatchNorm scale and shift (:func:`taylor_filters`);
* **OBD** — the second-order term at a minimum, where ``g ≈ 0``: ``½ H_qq w_q²``
  with the Hessian's diagonal (LeCun, Denker & Solla 1990), estimated with Hutchinson's
  ``E[z ⊙ Hz]`` (:func:`hessian_diagonal`, :func:`obd`) or replaced by the exact diagonal
  of the generalised Gauss-Newton matrix (:func:`ggn_diagonal`, :func:`obd_ggn`);
* **OBS** — the whole inverse Hessian: remove ``w_q`` with the least ``w_q² / (2[H⁻¹]_qq)``
  and move the other weights by ``δw = −w_q H⁻¹e_q / [H⁻¹]_qq`` to make up for it
  (Hassibi & Stork 1993; :func:`obs_steps` for any Hessian, :func:`obs_path` and
  :func:`obs_prune` for one Linear layer);
* **SNIP** — connection sensitivity ``|g ⊙ w|`` at initialisation, normalised to sum 1
  (Lee, Ajanthan & Torr 2019): prune before training;
* **movement** — ``S = −Σ_t g_t ⊙ w_t`` accumulated while training: weights moving away
  from zero score high (Sanh, Wolf & Rush 2020; :class:`Movement`).

Every score function returns ``{parameter name: scores}`` for the prunable weights
(:func:`coursekit.core.masks.prunable_parameters`), higher = keep, ready for
:func:`coursekit.core.pruning.mask_from_scores`. Units whose output hardly varies over the
data can go without losing anything if their mean is folded into the next layer's bias
(mean replacement, Evci et al. 2018: :func:`remove_units`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.core import models
from coursekit.core.batched import fit_batched
from coursekit.core.data import Dataset
from coursekit.core.masks import Mask, prunable_parameters
from coursekit.core.pruning import Scope, mask_from_scores
from coursekit.core.train import evaluate

Scores = dict[str, torch.Tensor]


def _check_batch(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape[0] == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"need as many labels as inputs, and at least one: got {x.shape[0]} inputs, "
                         f"{y.shape[0]} labels")


def _check_count(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")


def loss_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 1024) -> Scores:
    """Gradient of the mean cross-entropy on ``(x, y)`` for each prunable weight (eval mode)."""
    _check_batch(x, y)
    _check_count(chunk, "chunk")
    weights = prunable_parameters(model)
    grads = {n: torch.zeros_like(w) for n, w in weights.items()}
    was_training = model.training
    model.eval()
    try:
        for start in range(0, x.shape[0], chunk):
            xb, yb = x[start:start + chunk], y[start:start + chunk]
            loss = F.cross_entropy(model(xb), yb, reduction="sum") / x.shape[0]
            for g, part in zip(grads.values(), torch.autograd.grad(loss, list(weights.values())),
                               strict=True):
                g += part
    finally:
        model.train(was_training)
    return grads


def taylor(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Scores:
    """``|g·w|``: the first-order estimate of the loss change when ``w`` is zeroed.

    Per weight, as in Molchanov et al. 2019 ("Importance Estimation for Neural Network
    Pruning"); Molchanov et al. 2017 applied the same expansion to whole feature maps.
    """
    weights = prunable_parameters(model)
    return {n: (g * weights[n]).abs().detach() for n, g in loss_gradients(model, x, y).items()}


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Scores:
    """Connection sensitivity ``|g ⊙ w| / Σ|g ⊙ w|`` on one batch, meant at initialisation (Lee et al. 2019)."""
    scores = taylor(model, x, y)
    total = sum(s.sum() for s in scores.values())
    if not total > 0:
        raise ValueError("every connection has zero sensitivity on this batch (all gradients or weights are 0)")
    return {n: s / total for n, s in scores.items()}


def taylor_filters(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 256) -> Scores:
    """Molchanov et al. 2019's filter importance, ``(Σ_s g_s w_s)²`` over a filter's BatchNorm gate.

    For each convolution followed by a BatchNorm, the channel's scale ``γ`` and shift
    ``β`` gate the whole filter: ``(g_γ γ + g_β β)²`` is the squared first-order change of
    the loss when the channel is switched off, averaged over minibatches of ``chunk``
    examples (their "Taylor FO on BN" criterion). Keyed by the conv's name, one score per
    filter, ready for :func:`coursekit.methods.structured.select_filters` (``scores=``).
    """
    _check_batch(x, y)
    _check_count(chunk, "chunk")
    gates = {name: after for (name, layer), (_, after) in zip(list(model.named_children()),
                                                              list(model.named_children())[1:], strict=False)
             if isinstance(layer, nn.Conv2d) and isinstance(after, nn.BatchNorm2d) and after.affine}
    if not gates:
        raise ValueError(f"{type(model).__name__} has no Conv2d followed by an affine BatchNorm2d, whose scale and "
                         "shift gate each filter")
    params = [p for bn in gates.values() for p in (bn.weight, bn.bias)]
    totals = {name: torch.zeros_like(bn.weight) for name, bn in gates.items()}
    was_training = model.training
    model.eval()
    try:
        batches = range(0, x.shape[0], chunk)
        for start in batches:
            loss = F.cross_entropy(model(x[start:start + chunk]), y[start:start + chunk])
            grads = iter(torch.autograd.grad(loss, params))
            for name, bn in gates.items():
                g_gamma, g_beta = next(grads), next(grads)
                totals[name] += (g_gamma * bn.weight + g_beta * bn.bias).detach() ** 2
    finally:
        model.train(was_training)
    return {name: t / len(batches) for name, t in totals.items()}


def hessian_diagonal(model: nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int = 64,
                     generator: torch.Generator | None = None) -> Scores:
    """Hutchinson's estimate of the loss Hessian's diagonal for each prunable weight.

    ``diag H = E[z ⊙ Hz]`` for Rademacher ``z`` (±1 entries): each sample costs one
    Hessian-vector product (a second backward pass), never the ``n × n`` Hessian. The
    error of an entry shrinks as ``1/√samples`` times the size of its row's off-diagonal part.
    """
    _check_batch(x, y)
    _check_count(samples, "samples")
    weights = prunable_parameters(model)
    params = list(weights.values())
    was_training = model.training
    model.eval()
    try:
        loss = F.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        diag = [torch.zeros_like(p) for p in params]
        for i in range(samples):
            zs = [(torch.randint(0, 2, p.shape, generator=generator).to(p.device, p.dtype) * 2 - 1)
                  for p in params]
            hz = torch.autograd.grad(grads, params, grad_outputs=zs, retain_graph=i < samples - 1)
            for d, z, h in zip(diag, zs, hz, strict=True):
                d += z * h.detach()
    finally:
        model.train(was_training)
    return {n: d / samples for n, d in zip(weights, diag, strict=True)}


def _ggn_columns(p: torch.Tensor):
    """Columns ``m_j`` of ``M = diag(√p) − p√pᵀ`` (``M Mᵀ = diag p − ppᵀ``), one (examples × classes) block each."""
    root = p.sqrt()
    for j in range(p.shape[1]):
        v = -p * root[:, j:j + 1]
        v[:, j] += root[:, j]
        yield v


def _ggn_linear(model: nn.Module, names: dict[str, str], x: torch.Tensor, chunk: int) -> Scores:
    """The GGN diagonal when every prunable weight is a Linear layer's: a per-example gradient of
    ``W`` is ``δ aᵀ``, so its square summed over examples is ``(δ²)ᵀ (a²)``: no per-example gradient
    is ever formed (BackPACK's ``DiagGGNExact`` for Linear layers)."""
    modules = dict(model.named_modules())
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [modules[m].register_forward_hook(
        lambda mod, inp, out, m=m: seen.__setitem__(m, (inp[0].detach(), out))) for m in names.values()]
    diag = {n: torch.zeros_like(modules[m].weight) for n, m in names.items()}
    try:
        for start in range(0, x.shape[0], chunk):
            logits = model(x[start:start + chunk])
            outs = [seen[m][1] for m in names.values()]
            for v in _ggn_columns(torch.softmax(logits, dim=1).detach()):
                deltas = torch.autograd.grad(logits, outs, grad_outputs=v, retain_graph=True)
                for (n, m), d in zip(names.items(), deltas, strict=True):
                    diag[n] += d.pow(2).T @ seen[m][0].pow(2)
    finally:
        for h in hooks:
            h.remove()
    return diag


def ggn_diagonal(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, chunk: int = 128) -> Scores:
    """The exact diagonal of the generalised Gauss-Newton matrix of the mean cross-entropy.

    ``G = mean_n J_nᵀ H_n J_n`` with ``J_n`` the Jacobian of example ``n``'s logits and
    ``H_n = diag(p) − ppᵀ`` the cross-entropy's Hessian in the logits (Schraudolph 2002;
    what BackPACK's ``DiagGGNExact`` computes). ``H_n = M Mᵀ`` with ``M = diag(√p) − p√pᵀ``,
    so ``diag G = mean_n Σ_j (J_nᵀ m_j)²``: one backward pass per class, never a Jacobian.
    For Linear layers the per-example squares come from the layer's inputs and output
    gradients directly; other layers (convolutions) take per-example gradients
    (``torch.func``), which costs far more. Positive semi-definite, unlike the Hessian;
    equal to it where the logits are linear in the weights. Needs no labels (``y`` is
    only checked when given). Model in eval mode (BatchNorm uses its running statistics).
    """
    from torch.func import functional_call, grad, vmap

    if y is not None:
        _check_batch(x, y)
    elif x.shape[0] == 0:
        raise ValueError("need at least one input")
    _check_count(chunk, "chunk")
    weights = prunable_parameters(model)
    modules = dict(model.named_modules())
    owners = {n: n.rpartition(".")[0] for n in weights}
    was_training = model.training
    model.eval()
    try:
        if all(n.endswith(".weight") and isinstance(modules.get(m), nn.Linear) for n, m in owners.items()):
            diag = _ggn_linear(model, owners, x, chunk)
        else:
            params = {n: p.detach() for n, p in model.named_parameters()}

            def projected(params: dict, x1: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
                return (functional_call(model, params, (x1.unsqueeze(0),)).squeeze(0) * v1).sum()

            per_example = vmap(grad(projected), in_dims=(None, 0, 0))
            diag = {n: torch.zeros_like(w) for n, w in weights.items()}
            for start in range(0, x.shape[0], chunk):
                xb = x[start:start + chunk]
                with torch.no_grad():
                    p = torch.softmax(model(xb), dim=1)
                for v in _ggn_columns(p):
                    g = per_example(params, xb, v)
                    for n in diag:
                        diag[n] += g[n].detach().pow(2).sum(0)
    finally:
        model.train(was_training)
    return {n: d.detach() / x.shape[0] for n, d in diag.items()}


def obd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int = 64,
        generator: torch.Generator | None = None) -> Scores:
    """Optimal Brain Damage, ``½ H_qq w_q²`` (LeCun et al. 1990), with :func:`hessian_diagonal`.

    At a minimum the gradient term vanishes and, ignoring the off-diagonal terms, zeroing
    ``w_q`` raises the loss by this much. Hutchinson's estimate can dip below zero for
    entries near zero; such scores are clipped to 0.
    """
    weights = prunable_parameters(model)
    diag = hessian_diagonal(model, x, y, samples, generator)
    return {n: (0.5 * h.clamp(min=0) * weights[n].detach() ** 2) for n, h in diag.items()}


def obd_ggn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Scores:
    """Optimal Brain Damage with the exact GGN diagonal (:func:`ggn_diagonal`) for ``H_qq``."""
    weights = prunable_parameters(model)
    return {n: 0.5 * h * weights[n].detach() ** 2 for n, h in ggn_diagonal(model, x, y).items()}


def _split_at_linear(model: nn.Sequential, layer: str) -> tuple[nn.Linear, nn.Sequential, nn.Sequential]:
    """The Linear child ``layer`` of ``model``, the layers before it and the layers after it."""
    if not isinstance(model, nn.Sequential) or layer not in dict(model.named_children()):
        raise ValueError(f"layer must name a child of an nn.Sequential model, got {layer!r}")
    index = list(dict(model.named_children())).index(layer)
    module = model[index]
    if not isinstance(module, nn.Linear):
        raise ValueError(f"layer {layer!r} is a {type(module).__name__}; this method works on nn.Linear layers")
    return module, model[:index], model[index + 1:]


@torch.no_grad()
def ablation(model: nn.Sequential, layer: str, x: torch.Tensor, y: torch.Tensor,
             chunk: int = 256) -> torch.Tensor:
    """The exact change of the mean loss on ``(x, y)`` when each weight of one Linear layer is zeroed.

    Zeroing ``W[i, j]`` changes output ``i`` of the layer by ``−W[i, j]·a_j`` for every
    example; the rest of the network then runs on the changed outputs, ``chunk`` weights at
    a time. Cost: one pass of the layers after ``layer`` per weight and example. On 2 CPU
    cores, LeNet-300-100's last layer takes under a second on 1 000 examples and its middle
    layer about 6 s on 500; its first layer (235 000 weights, the rest of the net behind
    each) would take tens of minutes.

    Returns:
        ΔL per weight, of the weight's shape (positive: the loss rises without it).
    """
    _check_batch(x, y)
    _check_count(chunk, "chunk")
    module, head, tail = _split_at_linear(model, layer)
    was_training = model.training
    model.eval()
    try:
        a = head(x).flatten(1)  # (N, in)
        z = module(a)  # (N, out)
        base = F.cross_entropy(tail(z), y)
        w = module.weight
        out_features, in_features = w.shape
        flat = torch.arange(w.numel(), device=w.device)
        deltas = torch.empty(w.numel(), device=w.device)
        for start in range(0, w.numel(), chunk):
            idx = flat[start:start + chunk]
            rows, cols = idx // in_features, idx % in_features
            changed = z.unsqueeze(0).repeat(idx.numel(), 1, 1)  # (c, N, out)
            changed[torch.arange(idx.numel()), :, rows] -= w[rows, cols].unsqueeze(1) * a[:, cols].T
            logits = tail(changed.flatten(0, 1)).view(idx.numel(), x.shape[0], -1)
            losses = F.cross_entropy(logits.flatten(0, 1), y.repeat(idx.numel()),
                                     reduction="none").view(idx.numel(), -1).mean(1)
            deltas[start:start + idx.numel()] = losses - base
    finally:
        model.train(was_training)
    return deltas.view(out_features, in_features)


def layer_hessian(model: nn.Sequential, layer: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The exact Hessian of the mean loss with respect to one Linear layer's weight, flattened row-major.

    ``(out·in) × (out·in)``: meant for small layers (LeNet-300-100's last layer has 1 000
    weights, a 1 000 × 1 000 matrix).
    """
    _check_batch(x, y)
    module, head, tail = _split_at_linear(model, layer)
    with torch.no_grad():
        a = head(x).flatten(1)

    def loss_of(w: torch.Tensor) -> torch.Tensor:
        z = F.linear(a, w.view_as(module.weight), module.bias)
        return F.cross_entropy(tail(z), y)

    was_training = model.training
    model.eval()
    try:
        return torch.autograd.functional.hessian(loss_of, module.weight.detach().flatten())
    finally:
        model.train(was_training)


def obs_steps(hessian: torch.Tensor, w: torch.Tensor) -> Iterator[tuple[int, float, float, torch.Tensor]]:
    """Optimal Brain Surgeon's algebra (Hassibi & Stork 1993) on weights ``w`` with an invertible ``hessian``.

    Each step removes the live weight ``q`` with the least saliency ``w_q² / (2[H⁻¹]_qq)`` and
    moves all the others by ``δw = −(w_q / [H⁻¹]_qq) H⁻¹e_q`` — the update that keeps the
    quadratic model of the loss lowest with ``w_q = 0`` — then drops ``q`` from the inverse
    (``H⁻¹ ← H⁻¹ − H⁻¹e_q e_qᵀH⁻¹ / [H⁻¹]_qq``). On a quadratic loss the saliency is the exact
    increase. With a diagonal Hessian the saliency is OBD's ``½ H_qq w_q²`` and nothing moves.

    Yields ``(q, w_q before its removal, saliency, weights after the step)`` (the weights
    float64 and flat; copy them to keep them past the next step).
    """
    n = w.numel()
    if hessian.shape != (n, n):
        raise ValueError(f"the Hessian of {n} weights must be {n} × {n}, got {tuple(hessian.shape)}")
    inverse = torch.linalg.inv(hessian.double())
    w = w.detach().flatten().double().clone()
    alive = torch.ones(n, dtype=torch.bool, device=w.device)
    for _ in range(n - 1):
        saliency = (w ** 2 / (2 * inverse.diagonal())).masked_fill(~alive, float("inf"))
        q = int(saliency.argmin())
        removed, increase = float(w[q]), float(saliency[q])
        column = inverse[:, q].clone()
        w -= (w[q] / column[q]) * column
        alive[q] = False
        inverse -= torch.outer(column, column) / column[q]
        w[~alive] = 0.0  # exact zeros despite rounding
        yield q, removed, increase, w


def obs_path(model: nn.Sequential, layer: str, x: torch.Tensor, y: torch.Tensor, damping: float = 1e-4
             ) -> Iterator[tuple[dict, torch.Tensor]]:
    """Optimal Brain Surgeon on one Linear layer, one removal per step (:func:`obs_steps`).

    The Hessian is :func:`layer_hessian` of the loss on ``(x, y)`` plus
    ``damping × mean(diag H) × I`` so that it can be inverted. ``model`` is not changed.

    Yields, per step, its row — ``step``, ``row``, ``col``, ``weight`` (its value when
    removed) and ``predicted_increase`` (the saliency: the loss increase the quadratic model
    predicts for that step) — and the layer's weights after it (float64, of the weight's
    shape; copy it to keep it past the next step).
    """
    module, _, _ = _split_at_linear(model, layer)
    if isinstance(damping, bool) or not isinstance(damping, (int, float)) or not damping > 0:
        raise ValueError(f"damping must be positive (the layer Hessian is singular without it), got {damping!r}")
    n = module.weight.numel()
    hessian = layer_hessian(model, layer, x, y).double()
    hessian += damping * hessian.diagonal().mean() * torch.eye(n, dtype=hessian.dtype, device=hessian.device)
    for step, (q, removed, increase, w) in enumerate(obs_steps(hessian, module.weight)):
        row = {"step": step + 1, "row": q // module.in_features, "col": q % module.in_features,
               "weight": removed, "predicted_increase": increase}
        yield row, w.view_as(module.weight)


def obs_prune(model: nn.Sequential, layer: str, x: torch.Tensor, y: torch.Tensor, remove: int,
              damping: float = 1e-4) -> pd.DataFrame:
    """Optimal Brain Surgeon on one Linear layer, in place: the first ``remove`` steps of :func:`obs_path`.

    Returns one row per removed weight (see :func:`obs_path`).
    """
    module, _, _ = _split_at_linear(model, layer)
    n = module.weight.numel()
    _check_count(remove, "remove")
    if not remove < n:
        raise ValueError(f"remove must lie in 1..{n - 1} for layer {layer!r} with {n} weights, got {remove}")
    rows = []
    for row, weights in obs_path(model, layer, x, y, damping):
        rows.append(row)
        if len(rows) == remove:
            with torch.no_grad():
                module.weight.copy_(weights.to(module.weight.dtype))
            break
    return pd.DataFrame(rows)


class Movement:
    """Movement scores ``S = −Σ_t g_t ⊙ w_t`` accumulated after every step (Sanh et al. 2020).

    A :func:`coursekit.core.train.fit` hook: weights that training pushes away from zero (the
    gradient opposes their sign) gain score, whatever their size. ``scores`` holds the
    running sums for the prunable weights.
    """

    def __init__(self, model: nn.Module) -> None:
        self.weights = prunable_parameters(model)
        self.scores: Scores = {n: torch.zeros_like(w, requires_grad=False) for n, w in self.weights.items()}

    def __call__(self, ctx) -> None:
        with torch.no_grad():
            for n, w in self.weights.items():
                if w.grad is not None:
                    self.scores[n] -= w.grad * w


SALIENCIES: dict[str, Callable[..., Scores]] = {
    "magnitude": lambda model, x, y: {n: w.detach().abs() for n, w in prunable_parameters(model).items()},
    "taylor": taylor,
    "obd": obd,
    "obd_ggn": obd_ggn,
    "snip": snip,
}


def score(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Scores:
    """Scores of the data-dependent criterion ``name`` (one of :data:`SALIENCIES`) on ``(x, y)``."""
    if name not in SALIENCIES:
        raise ValueError(f"unknown saliency {name!r}; expected one of {tuple(SALIENCIES)}")
    return SALIENCIES[name](model, x, y)


def rank_correlations(scores: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Spearman rank correlation (ties share their mean rank) between every pair of score tensors.

    ``scores`` maps a method's name to its scores for one set of weights (same shape).
    """
    sizes = {m: s.numel() for m, s in scores.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"every method must score the same weights; sizes per method: {sizes}")
    return pd.DataFrame({m: s.detach().flatten().double().cpu().numpy() for m, s in scores.items()}
                        ).corr(method="spearman")


def accuracy_at_densities(model: nn.Module, data: Dataset, scores: dict[str, Scores],
                          densities: Sequence[float], scope: Scope = "layerwise",
                          finetune: Mapping[str, object] | None = None, seed: int = 0, progress: bool = False
                          ) -> tuple[pd.DataFrame, dict[tuple[str, float], Mask]]:
    """Test accuracy of ``model`` pruned by each method's scores to each density.

    ``scores`` maps a method's name to its scores (:func:`score`, or a :class:`Movement`'s).
    The model is not changed. Returns a table with one row per (method, density) —
    ``method``, ``density``, ``test_loss``, ``test_acc`` (one-shot: no retraining) — and
    the masks by (method, density). With ``finetune`` (arguments of
    :func:`coursekit.core.batched.fit_batched`, e.g. ``{"epochs": 1, "lr": 1e-3,
    "optimizer": "adam"}``) every pruned copy is also trained under its mask, all of them
    together, with minibatch order ``seed``, and ``fine_tuned_acc`` is added.
    """
    if isinstance(densities, (int, float)):
        raise ValueError(f"densities must be a list, e.g. [{densities}], got {densities!r}")
    not_methods = [m for m, s in scores.items() if not isinstance(s, Mapping)]
    if not_methods:
        raise ValueError(f"scores must map each method to its {{parameter: scores}}, e.g. {{'taylor': "
                         f"saliency.taylor(...)}}; {not_methods} map to {type(scores[not_methods[0]]).__name__}")
    rows, masks, pruned = [], {}, []
    for method, method_scores in scores.items():
        for density in densities:
            mask = mask_from_scores(method_scores, density, scope)
            pruned.append(mask.apply(copy.deepcopy(model)))
            result = evaluate(pruned[-1], *data.split("test"))
            rows.append({"method": method, "density": density, "test_loss": result["loss"],
                         "test_acc": result["acc"]})
            masks[method, density] = mask
    table = pd.DataFrame(rows)
    if finetune is not None:
        results = fit_batched(pruned, data, [seed] * len(pruned), masks=list(masks.values()), **finetune,
                              eval_test=True, progress=progress)
        table["fine_tuned_acc"] = [float(r.final["test_acc"]) for r in results]
    return table, masks


@torch.no_grad()
def unit_statistics(model: nn.Sequential, layer: str, x: torch.Tensor) -> pd.DataFrame:
    """Mean and variance over ``x`` of every unit of ``layer``'s output after its activation.

    ``layer`` names a Linear child of the Sequential; its output is read after the unit-wise
    children that follow it (:func:`coursekit.core.models.responses`: what the next layer sees).
    """
    _split_at_linear(model, layer)
    z = models.responses(model, layer, x)
    return pd.DataFrame({"mean": z.mean(0).cpu().numpy(), "variance": z.var(0, unbiased=False).cpu().numpy()})


@torch.no_grad()
def remove_units(model: nn.Sequential, layer: str, units: Sequence[int], x: torch.Tensor | None = None
                 ) -> nn.Sequential:
    """A copy of ``model`` without ``units`` of Linear ``layer``: their weights and biases are zeroed.

    With ``x``, each removed unit's mean output over ``x`` is first folded into the next
    Linear layer's bias (``b ← b + W[:, j]·mean(a_j)``): **mean replacement** (Evci et al.
    2018). A unit that is constant over the data is then removed at no cost at all.
    """
    pruned = copy.deepcopy(model)
    module, _, tail = _split_at_linear(pruned, layer)
    following = next((m for m in tail if isinstance(m, nn.Linear)), None)
    if following is None:
        raise ValueError(f"layer {layer!r} is the last Linear layer: its units are the outputs")
    given = list(units)
    if any(isinstance(u, bool) or not isinstance(u, (int, np.integer)) for u in given) or len(set(given)) != len(given):
        raise ValueError(f"units must be distinct int indices, got {given}")
    units = torch.as_tensor(given, dtype=torch.long, device=module.weight.device)
    if units.numel() and (units.min() < 0 or units.max() >= module.out_features):
        raise ValueError(f"units must lie in 0..{module.out_features - 1}, got {units.tolist()}")
    if x is not None:
        means = torch.tensor(unit_statistics(model, layer, x)["mean"].to_numpy(),
                             dtype=following.weight.dtype, device=following.weight.device)
        following.bias += following.weight[:, units] @ means[units]
    module.weight[units] = 0.0
    if module.bias is not None:
        module.bias[units] = 0.0
    following.weight[:, units] = 0.0
    return pruned
