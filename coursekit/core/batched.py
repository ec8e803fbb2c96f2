"""Many small networks of one architecture trained as one batched model.

The lecture's experiments train many copies of LeNet-300-100 (seeds × protocols ×
rounds). One at a time, each step is a few small matrix products: a GPU waits on
kernel launches and a CPU on Python. Here the K members' parameters are stacked
along a new first dimension (``torch.func.stack_module_state``) and one call of
``vmap(functional_call)`` runs all K forward and backward passes as batched
products. A plain MLP (Flatten, Linear and element-wise activations) takes a faster
path: its weights are kept as contiguous (K, in, out) tensors and each layer is one
``baddbmm``, so neither vmap nor the fused optimiser copies a transposed weight (on 2
CPU cores a K = 32 LeNet-300-100 step takes ~20 ms instead of ~30 ms, the loop ~48 ms;
``docs/performance.md``). The loss is the sum of the members' mean losses, so each
member gets exactly its own gradient; SGD, momentum, Adam and weight decay act element-wise, so
one optimiser over the stacked tensors is K independent optimisers. Masks are
stacked too and re-applied after every step.

:func:`fit_batched` gives each member the results :func:`coursekit.core.train.fit` would
give it alone (same minibatch order for the same seed; equal to float tolerance,
tested), and drops members whose validation accuracy stops improving (``patience``)
without restarting the others.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from coursekit.core.data import Dataset, batches
from coursekit.core.hooks import Topology
from coursekit.core.masks import Mask
from coursekit.core.models import ACTIVATION_LAYERS
from coursekit.core.progress import tqdm
from coursekit.core.train import (
    FitResult,
    _epoch_generator,
    check_compatible,
    check_training,
    make_optimizer,
)


def _mlp_layers(model: nn.Module) -> list[nn.Module] | None:
    """The layers of ``model`` if it is a hook-free Sequential of Flatten, Linear and activations
    (:data:`~coursekit.core.models.ACTIVATION_LAYERS`, applied to (K, B, features) as they are)."""
    if type(model) is not nn.Sequential or any(True for _ in model.buffers()):
        return None
    layers = list(model)
    if any(m._forward_hooks or m._forward_pre_hooks for m in [model, *layers]):
        return None
    for i, layer in enumerate(layers):
        flatten = (isinstance(layer, nn.Flatten) and i == 0
                   and layer.start_dim == 1 and layer.end_dim == -1)
        if not (flatten or type(layer) is nn.Linear or type(layer) in ACTIVATION_LAYERS):
            return None
    return layers


class BatchedModels:
    """K models of one architecture as stacked parameters.

    ``params`` maps each parameter name to the stacked tensor the optimiser steps (the
    MLP path stores a Linear weight transposed, as (K, in, out)); :meth:`stacked` gives
    every parameter in the module's own layout, (K, *shape).
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        if not models:
            raise ValueError("need at least one model")
        shapes = [[(n, tuple(p.shape)) for n, p in m.named_parameters()] for m in models]
        if any(s != shapes[0] for s in shapes):
            raise ValueError("all models must have the same architecture (parameter names and shapes)")
        params, buffers = stack_module_state(list(models))
        self._layers = _mlp_layers(models[0])
        self._transposed = ({f"{i}.weight" for i, layer in enumerate(self._layers)
                             if isinstance(layer, nn.Linear)} if self._layers is not None else set())
        self.params = {n: self.to_storage(n, p.detach()).clone().requires_grad_() for n, p in params.items()}
        self.buffers = buffers
        self.base = copy.deepcopy(models[0]).to("meta")

        def one(params, buffers, x):
            return functional_call(self.base, (params, buffers), (x,))

        self._vmapped = torch.vmap(one, in_dims=(0, 0, 0))

    @property
    def size(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def to_storage(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """A (K, *shape) tensor for parameter ``name`` in the layout ``params`` keeps it in."""
        return tensor.transpose(1, 2).contiguous() if name in self._transposed else tensor

    def stacked(self) -> dict[str, torch.Tensor]:
        """Name → (K, *shape) view of every parameter in the module's layout (shares memory)."""
        return {n: p.transpose(1, 2) if n in self._transposed else p for n, p in self.params.items()}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs of shape (K, B, ...) → logits (K, B, classes), member k on ``x[k]``."""
        if self._layers is None:
            return self._vmapped(self.stacked(), self.buffers, x)
        h = x
        for i, layer in enumerate(self._layers):
            if isinstance(layer, nn.Flatten):
                h = h.flatten(2)
            elif isinstance(layer, nn.Linear):
                weight, bias = self.params[f"{i}.weight"], self.params.get(f"{i}.bias")
                h = torch.bmm(h, weight) if bias is None else torch.baddbmm(bias.unsqueeze(1), h, weight)
            else:
                h = layer(h)
        return h

    def member(self, k: int, model: nn.Module) -> nn.Module:
        """Copy member ``k``'s parameters into ``model`` (same architecture) and return it."""
        stacked = self.stacked()
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(stacked[name][k])
        return model

    @torch.no_grad()
    def set_member(self, k: int, model: nn.Module) -> None:
        """Copy ``model``'s parameters into member ``k`` (the inverse of :meth:`member`)."""
        stacked = self.stacked()
        for name, p in model.named_parameters():
            stacked[name][k].copy_(p)

    def member_grads(self, k: int) -> dict[str, torch.Tensor | None]:
        """Member ``k``'s gradients in the module's layout (``None`` where none was computed)."""
        return {n: (None if p.grad is None else (p.grad[k].T if n in self._transposed else p.grad[k]))
                for n, p in self.params.items()}

    def keep(self, members: Sequence[int], optimizer: torch.optim.Optimizer | None = None) -> None:
        """Keep only ``members`` (indices), slicing parameters, buffers and optimiser state."""
        index = torch.as_tensor(list(members), dtype=torch.long)
        new = {n: p.detach()[index.to(p.device)].clone().requires_grad_() for n, p in self.params.items()}
        if optimizer is not None:
            for group in optimizer.param_groups:
                for i, old in enumerate(group["params"]):
                    name = next(n for n, p in self.params.items() if p is old)
                    state = optimizer.state.pop(old, {})
                    optimizer.state[new[name]] = {
                        k: (v[index.to(v.device)] if torch.is_tensor(v) and v.dim() > 0 else v)
                        for k, v in state.items()}
                    group["params"][i] = new[name]
        self.params = new
        self.buffers = {n: b[index.to(b.device)] for n, b in self.buffers.items()}


@torch.no_grad()
def _change_topologies(bm: BatchedModels, topologies: Sequence[Topology], models: Sequence[nn.Module],
                       stacked_masks: dict[str, torch.Tensor], opt: torch.optim.Optimizer, step: int,
                       end_of_epoch: bool) -> None:
    """Let each due topology change its member: weights out, change, weights, mask and fresh optimiser state back."""
    for k, topology in enumerate(topologies):
        if not topology.due(step, end_of_epoch):
            continue
        before = {n: t.clone() for n, t in topology.keep.items()}
        bm.member(k, models[k])
        topology.change(bm.member_grads(k), None, step)
        bm.set_member(k, models[k])
        for name, keep in topology.keep.items():
            grown = bm.to_storage(name, (keep & ~before[name]).unsqueeze(0))[0]
            stacked_masks[name][k] = bm.to_storage(name, keep.unsqueeze(0).to(stacked_masks[name].dtype))[0]
            for value in opt.state.get(bm.params[name], {}).values():
                if torch.is_tensor(value) and value.shape == bm.params[name].shape:
                    value[k][grown] = 0


def _stack_masks(masks: Sequence[Mask | None], models: Sequence[nn.Module],
                 bm: BatchedModels) -> dict[str, torch.Tensor]:
    """Name → float factors (1 kept, 0 pruned) in ``bm.params``' layout, multiplied in after each step."""
    names = set().union(*(m.keys() for m in masks if m is not None))
    stacked = {}
    for name in sorted(names):
        param = dict(models[0].named_parameters())[name]
        parts = [mask[name] if mask is not None and name in mask else torch.ones(param.shape, dtype=torch.bool)
                 for mask in masks]
        stacked[name] = bm.to_storage(name, torch.stack([p.to(param.device) for p in parts]).to(param.dtype))
    return stacked


@torch.no_grad()
def _evaluate(bm: BatchedModels, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096):
    k = bm.size
    loss = torch.zeros(k, device=x.device)
    correct = torch.zeros(k, device=x.device)
    for xb, yb in batches(x, y, batch_size, shuffle=False):
        logits = bm(xb.unsqueeze(0).expand(k, *xb.shape))
        loss += F.cross_entropy(logits.flatten(0, 1), yb.repeat(k), reduction="none").view(k, -1).sum(1)
        correct += (logits.argmax(-1) == yb).sum(1)
    n = x.shape[0]
    return (loss / n).tolist(), (correct / n).tolist()


def fit_batched(models: Sequence[nn.Module], data: Dataset, seeds: Sequence[int], *,
                masks: Sequence[Mask | None] | None = None, epochs: int = 1, lr: float = 0.1,
                batch_size: int = 60, optimizer: str = "sgd", momentum: float = 0.0,
                weight_decay: float = 0.0, shared_order: bool = False, eval_test: bool = False,
                eval_every: int | None = None, patience: int | None = None,
                topologies: Sequence[Topology] | None = None, progress: bool = True) -> list[FitResult]:
    """Train ``models`` together; member k behaves as ``fit(models[k], data, seed=seeds[k], ...)``.

    Evaluates like :func:`coursekit.core.train.fit`: every ``eval_every`` steps (default once
    per epoch) and at the last step. ``shared_order`` gives every member ``seeds[0]``'s
    minibatch order. With ``patience``, a member is dropped at the end of the epoch in which
    it ran out of patience (``fit`` stops at that very evaluation). The trained weights are
    copied back into ``models``. ``topologies``: one changing mask per member (SET, RigL,
    built on ``models[k]``; instead of ``masks``): each changes its member's weights and
    mask when it is due, and the member's optimiser state is reset where connections grew.
    """
    k_all = len(models)
    if isinstance(seeds, (int, str)) or len(seeds) != k_all or not k_all:
        raise ValueError(f"need at least one model and one seed per model: {k_all} models, seeds {seeds!r}")
    check_training(epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer, momentum=momentum,
                   weight_decay=weight_decay, eval_every=eval_every, patience=patience, seeds=seeds)
    for model in models:
        check_compatible(model, data)
    if topologies is not None:
        if masks is not None or len(topologies) != k_all:
            raise ValueError(f"give one topology per model ({k_all}) instead of masks, got {len(topologies)} "
                             f"topologies{' and masks' if masks is not None else ''}")
        if patience is not None:
            raise ValueError("topologies and patience cannot be combined: a dropped member's topology would stop")
        masks = [Mask(dict(t.keep)) for t in topologies]
    masks = list(masks) if masks is not None else [None] * k_all
    if len(masks) != k_all:
        raise ValueError(f"need one mask (or None) per model: {k_all} models, {len(masks)} masks")
    for mask, model in zip(masks, models, strict=True):
        if mask is not None:
            mask.apply(model)
    bm = BatchedModels(models)
    stacked_masks = _stack_masks(masks, models, bm)
    opt = make_optimizer(optimizer, bm.params.values(), lr, momentum, weight_decay)
    device = data.device
    n = data.x_train.shape[0]
    steps_per_epoch = -(-n // batch_size)
    active = list(range(k_all))
    rows: list[list[dict]] = [[] for _ in range(k_all)]
    stale = [0] * k_all
    stopped = [False] * k_all

    def record(step: int, train_loss: list[float]) -> None:
        bad = [(active[j], loss) for j, loss in enumerate(train_loss) if not math.isfinite(loss) and step > 0]
        if bad:
            raise FloatingPointError(f"the training loss of model {bad[0][0]} became {bad[0][1]} by step {step}; "
                                     "lower the learning rate, or check the data")
        splits = ("val", "test") if eval_test else ("val",)
        metrics = {s: _evaluate(bm, *data.split(s)) for s in splits}
        for j, k in enumerate(active):
            row = {"step": step, "epoch": step / steps_per_epoch, "train_loss": train_loss[j]}
            for s in splits:
                row |= {f"{s}_loss": metrics[s][0][j], f"{s}_acc": metrics[s][1][j]}
            improved = not rows[k] or row["val_acc"] > max(r["val_acc"] for r in rows[k])
            stale[k] = 0 if improved else stale[k] + 1
            rows[k].append(row)

    record(0, [float("nan")] * k_all)
    bar = tqdm(total=epochs * steps_per_epoch, desc=f"{k_all} models", disable=not progress, leave=False)
    step = 0
    running, count = torch.zeros(k_all, device=device), 0
    for epoch in range(epochs):
        order = torch.stack([
            torch.randperm(n, device=device,
                           generator=_epoch_generator(device, seeds[0 if shared_order else k], epoch))
            for k in active])  # (K, N)
        for start in range(0, n, batch_size):
            idx = order[:, start:start + batch_size]
            logits = bm(data.x_train[idx])
            losses = F.cross_entropy(logits.flatten(0, 1), data.y_train[idx].flatten(),
                                     reduction="none").view(idx.shape).mean(1)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            if stacked_masks:
                with torch.no_grad():
                    torch._foreach_mul_([bm.params[nm] for nm in stacked_masks], list(stacked_masks.values()))
            running[: len(active)] += losses.detach()
            count += 1
            step += 1
            if topologies is not None:
                _change_topologies(bm, topologies, models, stacked_masks, opt, step, step % steps_per_epoch == 0)
            bar.update()
            last = step == epochs * steps_per_epoch
            if last or (eval_every and step % eval_every == 0) or (eval_every is None and step % steps_per_epoch == 0):
                record(step, (running[: len(active)] / count).tolist())
                running.zero_()
                count = 0
        if patience is not None:
            done = [k for k in active if stale[k] >= patience]
            for k in done:
                stopped[k] = True
                bm.member(active.index(k), models[k])
            if done:
                keep = [j for j, k in enumerate(active) if k not in done]
                if not keep:
                    active = []
                    break
                bm.keep(keep, opt)
                stacked_masks = {nm: m[torch.as_tensor(keep, device=m.device)] for nm, m in stacked_masks.items()}
                active = [active[j] for j in keep]
    bar.close()
    for j, k in enumerate(active):
        bm.member(j, models[k])
    results = []
    for k in range(k_all):
        history = pd.DataFrame(rows[k])
        best = history.loc[history["val_acc"].idxmax()]
        results.append(FitResult(history=history, best_step=int(best["step"]),
                                 best_val_acc=float(best["val_acc"]), stopped_early=stopped[k]))
    return results
