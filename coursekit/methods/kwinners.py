"""k-winners-take-all layers and sparse weights (slide 12; Ahmad & Scheinkman 2019).

"How Can We Be So Dense?": a layer whose output keeps only its ``k`` largest units per
example (:func:`k_winners`), fed by units that each see only a fraction of their inputs
(:func:`per_unit_mask`), is sparse in both activity and connectivity — and, by the
overlap arithmetic of :mod:`coursekit.methods.overlap`, robust to noise that a dense
network amplifies. :class:`KWinners` adds the paper's **boosting**: each unit's *duty
cycle* (how often it wins, a running average over ``duty_cycle_period`` examples) is
compared with the target density ``k / n``; units that win too rarely are boosted,
``b_i = exp(β (k/n − d_i))``, when the winners are chosen, so every unit gets used. The
boost strength β decays by ``boost_strength_factor`` per :meth:`KWinners.decay_boost`
(e.g. once per epoch, from a :func:`coursekit.core.train.fit` hook), and inference may
use a larger ``k_inference``. :func:`with_noise` replaces a fraction of each input's
pixels by random values, the paper's noise.
"""

from __future__ import annotations

import copy
import math

import pandas as pd
import torch
from torch import nn

from coursekit.core.masks import Mask
from coursekit.core.train import evaluate


def _check_k(k: int, width: int, what: str = "k") -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= width:
        raise ValueError(f"{what} must be an int in 1..{width} (the layer's width), got {k!r}")


def k_winners(x: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest entries of each example (all dimensions after the first), zero the rest.

    Exactly ``k`` survive per example; among tied values the earlier one (in flattened
    order) wins. Gradients flow through the winners only.
    """
    if x.ndim < 2:
        raise ValueError(f"x must be (examples, units, ...), got shape {tuple(x.shape)}")
    flat = x.flatten(1)
    _check_k(k, flat.shape[1])
    return (flat * _top_k_mask(flat.detach(), k)).view_as(x)


def _top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's ``k`` largest entries as a bool mask; among ties with the k-th value the earliest win.

    ``topk`` finds the k-th value; everything above it wins, and the first ``k − (#above)`` entries
    equal to it fill the rest — exact, and several times faster than a stable sort of the row.
    """
    kth = scores.topk(k, dim=1).values[:, -1:]
    above, tied = scores > kth, scores == kth
    room = k - above.sum(1, keepdim=True)
    return above | (tied & (tied.cumsum(1) <= room))


class KWinners(nn.Module):
    """k-winners-take-all over ``units`` with boosting by duty cycles (Ahmad & Scheinkman 2019).

    Inputs are ``(examples, units)``. In training, winners are the ``k`` largest of ``x · b``
    with ``b = exp(β (k/units − d))``; the output is ``x`` at the winners (unboosted). After each
    training batch of ``B`` examples each unit's duty cycle moves toward its win rate:
    ``d ← (d · (T − B) + wins) / T`` with ``T`` the ``duty_cycle_period``, or ``wins / B`` when
    ``B ≥ T``. In eval mode the ``k_inference`` largest of ``x`` win, without boosting.
    """

    def __init__(self, units: int, k: int, k_inference: int | None = None, boost_strength: float = 1.5,
                 boost_strength_factor: float = 0.9, duty_cycle_period: int = 1000):
        super().__init__()
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"units must be a positive int, got {units!r}")
        _check_k(k, units)
        _check_k(k if k_inference is None else k_inference, units, "k_inference")
        if not boost_strength >= 0 or not 0 <= boost_strength_factor <= 1:
            raise ValueError(f"boost_strength must be ≥ 0 and boost_strength_factor in [0, 1], got "
                             f"{boost_strength}, {boost_strength_factor}")
        if isinstance(duty_cycle_period, bool) or not isinstance(duty_cycle_period, int) or duty_cycle_period < 1:
            raise ValueError(f"duty_cycle_period must be a positive int, got {duty_cycle_period!r}")
        self.units, self.k, self.k_inference = units, k, k if k_inference is None else k_inference
        self.boost_strength, self.boost_strength_factor = float(boost_strength), float(boost_strength_factor)
        self.duty_cycle_period = duty_cycle_period
        self.register_buffer("duty_cycle", torch.zeros(units))

    def boost(self) -> torch.Tensor:
        """Each unit's boost factor ``exp(β (k/units − d))``."""
        return torch.exp(self.boost_strength * (self.k / self.units - self.duty_cycle))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.units:
            raise ValueError(f"KWinners takes (examples, {self.units}) inputs, got shape {tuple(x.shape)}")
        if not self.training:
            return k_winners(x, self.k_inference)
        won = _top_k_mask(x.detach() * self.boost(), self.k)  # by position: a 0 can win
        with torch.no_grad():
            batch, wins = x.shape[0], won.float().sum(0)
            if batch >= self.duty_cycle_period:
                self.duty_cycle.copy_(wins / batch)
            else:
                self.duty_cycle.mul_(self.duty_cycle_period - batch).add_(wins).div_(self.duty_cycle_period)
        return x * won

    def decay_boost(self) -> None:
        """Multiply the boost strength by ``boost_strength_factor`` (once per epoch in the paper)."""
        self.boost_strength *= self.boost_strength_factor

    def extra_repr(self) -> str:
        return (f"units={self.units}, k={self.k}, k_inference={self.k_inference}, "
                f"boost_strength={self.boost_strength:g}")


class KWinnersAll(nn.Module):
    """k-winners over all features of each example — every channel and position of a conv layer's output — keeping
    the fraction ``k_fraction`` of them (no boosting); ``k_inference_fraction`` (default the same) in eval mode."""

    def __init__(self, k_fraction: float, k_inference_fraction: float | None = None):
        super().__init__()
        inference = k_fraction if k_inference_fraction is None else k_inference_fraction
        if not 0 < k_fraction <= 1 or not 0 < inference <= 1:
            raise ValueError(f"k_fraction and k_inference_fraction must lie in (0, 1], got {k_fraction}, "
                             f"{k_inference_fraction}")
        self.k_fraction, self.k_inference_fraction = float(k_fraction), float(inference)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fraction = self.k_fraction if self.training else self.k_inference_fraction
        return k_winners(x, max(1, round(fraction * x[0].numel())))

    def extra_repr(self) -> str:
        return f"k_fraction={self.k_fraction:g}, k_inference_fraction={self.k_inference_fraction:g}"


def per_unit_mask(model: nn.Module, density: float, generator: torch.Generator | None = None,
                  layers: list[str] | None = None) -> Mask:
    """A fixed mask in which every unit of each Linear layer keeps ``round(density · fan_in)`` random inputs
    (at least 1): sparse weights *per unit*, as in Ahmad & Scheinkman's sparse networks."""
    if not 0 < density <= 1:
        raise ValueError(f"density must lie in (0, 1], got {density!r}")
    linear = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    chosen = list(linear) if layers is None else layers
    unknown = set(chosen) - set(linear)
    if unknown or not chosen:
        raise ValueError(f"layers must be Linear layers of the model: {sorted(linear)}; got {sorted(unknown) or chosen}")
    tensors = {}
    for name in chosen:
        out, fan_in = linear[name].weight.shape
        keep_per_unit = max(1, round(density * fan_in))
        scores = torch.rand(out, fan_in, generator=generator)
        keep = torch.zeros(out, fan_in, dtype=torch.bool)
        keep.scatter_(1, scores.argsort(dim=1)[:, :keep_per_unit], True)
        tensors[f"{name}.weight"] = keep
    return Mask(tensors)


def with_noise(x: torch.Tensor, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` with the fraction ``level`` of each example's entries replaced by uniform values in
    ``[x.min(), x.max()]`` (the noise of Ahmad & Scheinkman's Fig. 5, there on MNIST pixels)."""
    if not 0 <= level <= 1:
        raise ValueError(f"the noise level is a fraction of the pixels, in [0, 1]; got {level!r}")
    flat = x.flatten(1).clone()
    n = flat.shape[1]
    count = math.floor(level * n + 0.5)
    if count == 0:
        return x.clone()
    lo, hi = float(x.min()), float(x.max())
    idx = torch.rand(flat.shape, generator=generator).argsort(dim=1)[:, :count].to(x.device)
    values = (torch.rand(flat.shape[0], count, generator=generator) * (hi - lo) + lo).to(x.device, x.dtype)
    flat.scatter_(1, idx, values)
    return flat.view_as(x)


def kwta_mlp(input_shape: tuple[int, ...], num_classes: int, hidden: tuple[int, ...], k_fraction: float,
             weight_density: float = 1.0, k_inference_fraction: float | None = None, seed: int = 0,
             **boosting) -> tuple[nn.Sequential, Mask | None]:
    """Ahmad & Scheinkman's sparse MLP: Flatten, then per hidden width a Linear layer whose units each see
    ``weight_density`` of their inputs and a :class:`KWinners` keeping ``k_fraction`` of them; a Linear output.

    Returns the network (weights drawn from ``seed``) and the per-unit mask of its hidden Linear layers
    (``None`` when ``weight_density`` is 1); train it with ``mask.hook(net)`` and :func:`decay_boost_hook`.
    ``boosting``: ``boost_strength``, ``boost_strength_factor``, ``duty_cycle_period`` of :class:`KWinners`.
    """
    if not 0 < k_fraction <= 1 or (k_inference_fraction is not None and not 0 < k_inference_fraction <= 1):
        raise ValueError(f"k_fraction and k_inference_fraction must lie in (0, 1], got {k_fraction}, "
                         f"{k_inference_fraction}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(input_shape)
        for width in hidden:
            k = max(1, round(k_fraction * width))
            k_inf = None if k_inference_fraction is None else max(1, round(k_inference_fraction * width))
            layers += [nn.Linear(fan_in, width), KWinners(width, k, k_inf, **boosting)]
            fan_in = width
        layers.append(nn.Linear(fan_in, num_classes))
        net = nn.Sequential(*layers)
    hidden_linear = [str(i) for i, m in enumerate(net) if isinstance(m, nn.Linear)][:-1]
    mask = None if weight_density == 1 else per_unit_mask(net, weight_density, torch.Generator().manual_seed(seed),
                                                          hidden_linear)
    return net, mask


def cnn_pair(input_shape: tuple[int, ...], num_classes: int, channels: int = 32, hidden: int = 300,
             k_fraction: float = 0.1, k_inference_fraction: float = 0.15, weight_density: float = 0.3,
             seed: int = 0, **boosting) -> tuple[nn.Sequential, nn.Sequential, Mask]:
    """Ahmad & Scheinkman's dense and sparse CNN, one architecture: a 5×5 conv with ``channels`` channels and 2×2
    max-pooling, a hidden Linear layer of ``hidden`` units, a Linear output.

    The dense CNN uses ReLUs; the sparse one keeps the ``k_fraction`` largest conv outputs
    (:class:`KWinnersAll`) and hidden units (:class:`KWinners` with boosting), ``k_inference_fraction``
    at evaluation, and its hidden units each see ``weight_density`` of their inputs (the returned
    mask; train with ``mask.hook(sparse)``, which zeroes the rest at once, and :func:`decay_boost_hook`).
    Both start from the same weights (drawn from ``seed``).
    """
    if len(input_shape) != 3:
        raise ValueError(f"cnn_pair takes images (channels, height, width), got input shape {input_shape}")
    c, h, w = input_shape
    if min(h, w) < 6:
        raise ValueError(f"images must be at least 6×6 for a 5×5 conv and 2×2 pooling, got {h}×{w}")
    flat = channels * ((h - 4) // 2) * ((w - 4) // 2)
    k = max(1, round(k_fraction * hidden))
    k_inf = max(1, round(k_inference_fraction * hidden))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dense = nn.Sequential(nn.Conv2d(c, channels, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
                              nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
    sparse = nn.Sequential(dense[0], dense[1], KWinnersAll(k_fraction, k_inference_fraction), nn.Flatten(),
                           dense[4], KWinners(hidden, k, k_inf, **boosting), dense[6])
    sparse = copy.deepcopy(sparse)  # its own parameters, equal to the dense CNN's at the start
    mask = per_unit_mask(sparse, weight_density, torch.Generator().manual_seed(seed), ["4"])
    return dense, sparse, mask


def decay_boost_hook(ctx) -> None:
    """A :func:`coursekit.core.train.fit` hook: :meth:`KWinners.decay_boost` on every k-winners layer after each epoch."""
    if ctx.end_of_epoch:
        for m in ctx.model.modules():
            if isinstance(m, KWinners):
                m.decay_boost()


def noise_table(networks: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor, levels: tuple[float, ...],
                seed: int = 0) -> pd.DataFrame:
    """Test accuracy of each network on ``x`` with each noise level (the same noisy inputs for all).

    Rows ``network``, ``noise``, ``test_acc``.
    """
    rows = []
    for level in levels:
        noisy = with_noise(x, level, torch.Generator().manual_seed(seed))
        rows += [{"network": name, "noise": level, "test_acc": evaluate(net, noisy, y)["acc"]}
                 for name, net in networks.items()]
    return pd.DataFrame(rows)
