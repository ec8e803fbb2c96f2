"""Sparse training from scratch with a moving topology (slide 11): SET and RigL.

Both start from a random sparse network (:func:`coursekit.methods.budgets.random_mask`
with Erdős–Rényi densities) and keep the number of connections fixed while changing
*which* connections exist:

* **SET** (Mocanu et al. 2018, "Scalable training of artificial neural networks with
  adaptive sparse connectivity inspired by network science"): after every epoch, in each
  layer remove the fraction ζ of the **smallest positive** weights and of the **largest
  negative** ones — the negative weights closest to zero (a popular implementation removes
  the most negative ones instead, the strongest connections) — and regrow as many at
  random among the positions that were not connected, never one removed in the same
  step; new weights are drawn from the layer's initial distribution. A layer with fewer
  free positions than that (a dense one) swaps only as many as it can regrow.
* **RigL** (Evci et al. 2020, "Rigging the Lottery"): every ``ΔT`` steps until ``T_end``,
  drop the fraction ``α/2 (1 + cos(π t / T_end))`` of each layer's connections with the
  smallest magnitude and grow as many where the dense gradient is largest among the
  inactive positions; grown weights start at zero.

Each is a :func:`coursekit.core.train.fit` hook that also keeps pruned weights at zero
after every step (``masks_weights``); regrown positions get fresh optimiser state. The
current topology is ``hook.mask``. :func:`coursekit.core.batched.fit_batched` takes one
per member (``topologies=``): several seeds, ε or ζ trained at once.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from coursekit.core.hooks import StepContext
from coursekit.core.masks import Mask


class _DynamicMask:
    """Shared by SET and RigL: the live mask, re-applied after every optimiser step."""

    masks_weights = True

    def __init__(self, model: nn.Module, mask: Mask) -> None:
        mask.check(model)
        params = dict(model.named_parameters())
        self.params = {n: params[n] for n in mask}
        self.keep = {n: mask[n].to(params[n].device).clone() for n in mask}
        self.history: list[dict] = []
        self._sync()

    @property
    def mask(self) -> Mask:
        """The current topology."""
        return Mask({n: k.clone() for n, k in self.keep.items()})

    @torch.no_grad()
    def _sync(self) -> None:
        """Refresh the multiplicative factors from ``keep`` and zero the pruned weights."""
        self._factors = [self.keep[n].to(p.dtype) for n, p in self.params.items()]
        self._zero()

    @torch.no_grad()
    def _zero(self) -> None:
        torch._foreach_mul_(list(self.params.values()), self._factors)

    @staticmethod
    @torch.no_grad()
    def _fresh_state(optimizer: torch.optim.Optimizer | None, p: torch.Tensor, grown: torch.Tensor) -> None:
        """Zero the optimiser's per-weight state (momentum, Adam moments) at newly grown positions."""
        if optimizer is None:
            return
        for value in optimizer.state.get(p, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == p.shape:
                value[grown] = 0

    def __call__(self, ctx: StepContext) -> None:
        self._zero()
        if self.due(ctx.step, ctx.end_of_epoch):
            self.change({n: p.grad for n, p in self.params.items()}, ctx.optimizer, ctx.step)

    def _record(self, step: int, changed: dict[str, int]) -> None:
        self._sync()  # new factors; zeroes the weights of the connections just dropped
        self.history.append({"step": step, "changed": sum(changed.values()),
                             "connections": int(sum(int(k.sum()) for k in self.keep.values()))})


class SET(_DynamicMask):
    """Sparse Evolutionary Training's prune-and-regrow after every epoch (Mocanu et al. 2018).

    ``zeta`` (ζ) is the fraction of the positive and of the negative weights removed per
    layer; ``generator`` draws the regrown positions and values.
    """

    def __init__(self, model: nn.Module, mask: Mask, zeta: float = 0.3, generator: torch.Generator | None = None):
        if isinstance(zeta, bool) or not isinstance(zeta, int | float) or not 0 < zeta < 1:
            raise ValueError(f"ζ must lie in (0, 1) (the fraction removed per epoch), got {zeta!r}")
        super().__init__(model, mask)
        self.zeta = zeta
        self.generator = generator

    def due(self, step: int, end_of_epoch: bool) -> bool:
        """After every epoch."""
        return end_of_epoch

    def change(self, grads, optimizer: torch.optim.Optimizer | None, step: int) -> dict[str, int]:
        """:meth:`evolve` (SET needs no gradient)."""
        return self.evolve(optimizer, step)

    @torch.no_grad()
    def removal(self, w: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Which live weights SET removes: the ζ smallest positive and the ζ largest (closest to 0) negative."""
        drop = torch.zeros_like(keep)
        flat_w, flat_keep, flat_drop = w.flatten(), keep.flatten(), drop.view(-1)
        for sign in (1, -1):
            idx = (flat_keep & (sign * flat_w > 0)).nonzero().squeeze(1)
            k = round(self.zeta * idx.numel())
            if k:
                closest = torch.sort((sign * flat_w[idx]), stable=True).indices[:k]  # nearest zero first
                flat_drop[idx[closest]] = True
        return drop

    @torch.no_grad()
    def evolve(self, optimizer: torch.optim.Optimizer | None = None, step: int = 0) -> dict[str, int]:
        """One prune-and-regrow step in every layer; returns the connections changed per layer."""
        changed = {}
        for n, p in self.params.items():
            keep = self.keep[n]
            drop = self.removal(p, keep)
            candidates = (~keep).flatten().nonzero().squeeze(1)  # not connected before this step
            if int(drop.sum()) > candidates.numel():  # a (nearly) dense layer: remove only as many as can regrow
                dropped = drop.flatten().nonzero().squeeze(1)
                spare = dropped[torch.sort(p.detach().flatten()[dropped].abs(), stable=True).indices[candidates.numel():]]
                drop.view(-1)[spare] = False
            count = int(drop.sum())
            grown = torch.zeros_like(keep)
            if count:
                chosen = candidates[torch.randperm(candidates.numel(), generator=self.generator)[:count].to(
                    candidates.device)]
                grown.view(-1)[chosen] = True
                bound = 1 / math.sqrt(p[0].numel())  # PyTorch's default init: U(−1/√fan_in, 1/√fan_in)
                values = (torch.rand(count, generator=self.generator) * 2 - 1) * bound
                p.view(-1)[chosen] = values.to(p.device, p.dtype)
            keep &= ~drop
            keep |= grown
            self._fresh_state(optimizer, p, grown)
            changed[n] = count
        self._record(step, changed)
        return changed


class RigL(_DynamicMask):
    """Rigging the Lottery (Evci et al. 2020): drop by magnitude, grow by gradient, every ``every`` steps.

    ``total_steps``: the training's length; updates stop at ``end × total_steps``. The drop
    fraction follows ``alpha / 2 · (1 + cos(π t / T_end))``.
    """

    def __init__(self, model: nn.Module, mask: Mask, total_steps: int, alpha: float = 0.3, every: int = 100,
                 end: float = 0.75):
        for name, value in (("total_steps", total_steps), ("every", every)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0 < alpha < 1 or not 0 < end <= 1:
            raise ValueError(f"alpha must lie in (0, 1) and end in (0, 1], got alpha={alpha!r}, end={end!r}")
        super().__init__(model, mask)
        self.total_steps, self.alpha, self.every, self.end = total_steps, alpha, every, end

    def fraction(self, step: int) -> float:
        """The drop fraction at ``step`` (0 from ``end × total_steps`` on)."""
        t_end = self.end * self.total_steps
        return 0.0 if step >= t_end else self.alpha / 2 * (1 + math.cos(math.pi * step / t_end))

    def due(self, step: int, end_of_epoch: bool) -> bool:
        """Every ``every`` steps while the drop fraction is positive."""
        return step % self.every == 0 and self.fraction(step) > 0

    def change(self, grads, optimizer: torch.optim.Optimizer | None, step: int) -> dict[str, int]:
        """:meth:`update` at this step's drop fraction."""
        return self.update(grads, self.fraction(step), optimizer, step)

    @torch.no_grad()
    def update(self, grads: dict[str, torch.Tensor | None], fraction: float,
               optimizer: torch.optim.Optimizer | None = None, step: int = 0) -> dict[str, int]:
        """Drop ``fraction`` of each layer's connections by magnitude, grow as many by |gradient| (at zero)."""
        changed = {}
        for n, p in self.params.items():
            if grads[n] is None:
                raise ValueError(f"RigL needs the dense gradient of {n!r}; none was computed")
            keep = self.keep[n]
            live = keep.flatten().nonzero().squeeze(1)
            count = round(fraction * live.numel())
            if not count:
                changed[n] = 0
                continue
            weakest = live[torch.topk(p.detach().flatten()[live].abs(), count, largest=False).indices]
            keep.view(-1)[weakest] = False
            inactive = (~keep).flatten().nonzero().squeeze(1)
            strongest = inactive[torch.topk(grads[n].flatten()[inactive].abs(), count).indices]
            grown = torch.zeros_like(keep)
            grown.view(-1)[strongest] = True
            keep |= grown
            p[grown] = 0.0
            self._fresh_state(optimizer, p, grown)
            changed[n] = count
        self._record(step, changed)
        return changed
