"""Permutation symmetry of hidden units, and aligning two networks by weight matching (slide 12).

Reordering the units of a hidden layer — the rows of its weight and bias, its BatchNorm
entries, and the matching input columns of the next layer — leaves the function
unchanged: every trained network has ``∏_l n_l!`` equivalent copies (:func:`log10_class_size`).
Two networks trained from different seeds are far apart in weight space partly for this
reason. Git Re-Basin (Ainsworth, Hayase & Srinivasa 2023) permutes one network's units to
match the other's weights — for each hidden layer a linear assignment maximising
``⟨W_a, P W_b⟩`` with its neighbours fixed, repeated until nothing changes
(:func:`match_weights`, with :func:`scipy.optimize.linear_sum_assignment`) — after which
the straight line between the two networks often has a much lower loss barrier
(:func:`loss_barrier`).

Networks: :class:`torch.nn.Sequential` MLPs (Flatten, Linear, activations). :func:`permute`
also handles convolutions with BatchNorm (channels) and the Flatten between a last
convolution and a Linear layer.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from coursekit.core.data import Dataset
from coursekit.core.train import evaluate

Permutations = dict[str, torch.Tensor]


def hidden_layers(model: nn.Sequential) -> list[str]:
    """The names of the Linear and convolution children whose units can be permuted (all but the last)."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"permutations work on an nn.Sequential, got {type(model).__name__}")
    weighted = [n for n, m in model.named_children() if isinstance(m, nn.Linear | nn.Conv2d)]
    if len(weighted) < 2:
        raise ValueError(f"{type(model).__name__} has {len(weighted)} weight layer(s); a hidden layer needs two")
    return weighted[:-1]


def log10_class_size(model: nn.Sequential) -> float:
    """``log10 ∏_l n_l!`` over the hidden layers: how many permuted copies compute the same function."""
    sizes = [_width(dict(model.named_children())[n]) for n in hidden_layers(model)]
    return sum(math.lgamma(n + 1) for n in sizes) / math.log(10)


def _width(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def random_permutations(model: nn.Sequential, generator: torch.Generator | None = None) -> Permutations:
    """A random permutation of every hidden layer's units."""
    return {n: torch.randperm(_width(dict(model.named_children())[n]), generator=generator)
            for n in hidden_layers(model)}


@torch.no_grad()
def permute(model: nn.Sequential, perms: Mapping[str, torch.Tensor]) -> nn.Sequential:
    """A copy of ``model`` whose hidden layer ``name`` has its units reordered by ``perms[name]``
    (new unit ``i`` is old unit ``perms[name][i]``); the function is unchanged."""
    out = copy.deepcopy(model)
    children = list(out.named_children())
    names = [n for n, _ in children]
    hidden = hidden_layers(model)
    unknown = set(perms) - set(hidden)
    if unknown:
        raise ValueError(f"can only permute the hidden layers {hidden}, got {sorted(unknown)}")
    for name, perm in perms.items():
        layer = dict(children)[name]
        width = _width(layer)
        perm = torch.as_tensor(perm, dtype=torch.long)
        if perm.shape != (width,) or not torch.equal(perm.sort().values, torch.arange(width)):
            raise ValueError(f"perms[{name!r}] must be a permutation of 0..{width - 1}")
        p = perm.to(layer.weight.device)
        layer.weight.copy_(layer.weight[p])
        if layer.bias is not None:
            layer.bias.copy_(layer.bias[p])
        for _, after in children[names.index(name) + 1:]:
            if isinstance(after, nn.modules.batchnorm._BatchNorm):
                for t in (after.weight, after.bias, after.running_mean, after.running_var):
                    if t is not None:
                        t.copy_(t[p])
            elif isinstance(after, nn.Linear | nn.Conv2d):
                fan = after.weight.shape[1]
                if fan == width:
                    after.weight.copy_(after.weight[:, p])
                elif isinstance(after, nn.Linear) and fan % width == 0:  # Flatten after a convolution
                    block = fan // width
                    cols = (p[:, None] * block + torch.arange(block, device=p.device)).flatten()
                    after.weight.copy_(after.weight[:, cols])
                else:
                    raise ValueError(f"layer {name!r} has {width} units but the next weight layer takes {fan} inputs")
                break
    return out


def _linear_weights(model: nn.Sequential) -> list[tuple[str, torch.Tensor, torch.Tensor | None]]:
    layers = [(n, m) for n, m in model.named_children() if isinstance(m, nn.Linear)]
    if len(layers) != len([m for m in model.children() if isinstance(m, nn.Linear | nn.Conv2d)]):
        raise ValueError("weight matching is implemented for MLPs (Linear layers only)")
    return [(n, m.weight.detach().double(), None if m.bias is None else m.bias.detach().double()) for n, m in layers]


def match_weights(a: nn.Sequential, b: nn.Sequential, max_rounds: int = 100,
                  generator: torch.Generator | None = None) -> Permutations:
    """Permutations of ``b``'s hidden units that make its weights most like ``a``'s (Ainsworth et al. 2023).

    For hidden layer ``l`` the similarity of unit ``i`` of ``a`` and unit ``j`` of ``b`` is
    ``W_a^l[i]·W_b^l[j] + b_a^l[i] b_b^l[j] + W_a^{l+1}[:, i]·W_b^{l+1}[:, j]`` with the
    neighbouring layers' current permutations applied; the best assignment is solved layer by
    layer, in random order, until a whole round changes nothing. Apply the result with :func:`permute`.
    """
    wa, wb = _linear_weights(a), _linear_weights(b)
    if [w.shape for _, w, _ in wa] != [w.shape for _, w, _ in wb]:
        raise ValueError("the two networks must have the same architecture")
    names = [n for n, _, _ in wa][:-1]
    perms = {n: torch.arange(w.shape[0]) for n, w, _ in wa[:-1]}
    for _ in range(max_rounds):
        changed = False
        for k in torch.randperm(len(names), generator=generator).tolist():
            _, w_a, b_a = wa[k]
            _, w_b, b_b = wb[k]
            before = perms[names[k - 1]] if k > 0 else None  # inputs of layer k, as permuted in b
            w_b_in = w_b[:, before] if before is not None else w_b
            sim = w_a @ w_b_in.T
            if b_a is not None:
                sim += torch.outer(b_a, b_b)
            _, n_a, _ = wa[k + 1]
            _, n_b, _ = wb[k + 1]
            after = perms.get(names[k + 1]) if k + 1 < len(names) else None
            n_b_out = n_b[after] if after is not None else n_b
            sim += n_a.T @ n_b_out
            _, col = linear_sum_assignment(sim.numpy(), maximize=True)
            new = torch.as_tensor(col, dtype=torch.long)
            if not torch.equal(new, perms[names[k]]):
                perms[names[k]] = new
                changed = True
        if not changed:
            return perms
    return perms


@torch.no_grad()
def interpolate(a: nn.Module, b: nn.Module, alpha: float) -> nn.Module:
    """The network ``(1 − α) θ_a + α θ_b`` (buffers such as BatchNorm statistics too)."""
    out = copy.deepcopy(a)
    sb = b.state_dict()
    for name, t in out.state_dict().items():
        if t.is_floating_point():
            t.copy_((1 - alpha) * t + alpha * sb[name])
    return out


def loss_barrier(a: nn.Module, b: nn.Module, data: Dataset, alphas: Sequence[float] = tuple(np.linspace(0, 1, 11)),
                 split: str = "test") -> pd.DataFrame:
    """Loss and accuracy along the straight line from ``a`` (α = 0) to ``b`` (α = 1).

    Rows ``alpha``, ``loss``, ``acc``, ``barrier`` (the loss minus the straight line between the end
    points' losses; its maximum is the barrier of Frankle et al. 2020 and Ainsworth et al. 2023).
    """
    x, y = data.split(split)
    rows = [{"alpha": float(t), **evaluate(interpolate(a, b, float(t)), x, y)} for t in alphas]
    table = pd.DataFrame(rows)
    ends = table.set_index("alpha")["loss"]
    start, end = ends.iloc[0], ends.iloc[-1]
    table["barrier"] = table["loss"] - ((1 - table["alpha"]) * start + table["alpha"] * end)
    return table
