"""Weight protocols: what values the surviving weights of a pruned network start from.

After pruning, a lottery ticket resets its survivors to their *initial* values
(Frankle & Carbin 2019). Zhou et al. 2019 ("Deconstructing Lottery Tickets") asked
which property of those values matters; the protocols below are their controls
plus Frankle et al. 2020's late rewinding:

==================  =========================================================
protocol            survivors start from
==================  =========================================================
``init``            their original initial values (the lottery ticket)
``rewind``          their values at training iteration k (late rewinding)
``random_reinit``   a fresh draw from the initial distribution
``reshuffle``       the layer's initial values of the survivors, permuted
``constant``        ±σ with the sign of the initial value, σ = the layer's init std
``sign_flip``       the initial magnitude with a random sign
==================  =========================================================

Pruned weights are zero; parameters the mask does not cover (biases) start from
the same source as the survivors (init, rewind point or fresh draw).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from coursekit.core.masks import Mask

Transform = Callable[[torch.Tensor, torch.Tensor, torch.Generator | None], torch.Tensor]


def _identity(w: torch.Tensor, keep: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return w * keep


def _reshuffle(w: torch.Tensor, keep: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """The survivors' initial values, randomly permuted among the survivors of the layer."""
    out = torch.zeros_like(w)
    values = w[keep]
    perm = torch.randperm(values.numel(), generator=generator, device="cpu").to(w.device)
    out[keep] = values[perm]
    return out


def _constant(w: torch.Tensor, keep: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """sign(w_init) · σ, with σ the standard deviation of the layer's initial weights."""
    if w.numel() < 2:
        raise ValueError(f"the 'constant' protocol needs the spread of a layer's weights, but a layer has only "
                         f"{w.numel()} (shape {tuple(w.shape)})")
    return torch.sign(w) * w.std() * keep


def _sign_flip(w: torch.Tensor, keep: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """|w_init| with a random sign."""
    signs = torch.randint(0, 2, w.shape, generator=generator, device="cpu").to(w.device) * 2 - 1
    return w.abs() * signs * keep


@dataclass(frozen=True)
class Protocol:
    """Where the survivors' values come from (``init``, ``rewind`` or ``fresh``) and what is done to them."""

    source: str
    transform: Transform


PROTOCOLS: dict[str, Protocol] = {
    "init": Protocol("init", _identity),
    "rewind": Protocol("rewind", _identity),
    "random_reinit": Protocol("fresh", _identity),
    "reshuffle": Protocol("init", _reshuffle),
    "constant": Protocol("init", _constant),
    "sign_flip": Protocol("init", _sign_flip),
}


def get(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"no such protocol {name!r}; known protocols: {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]


@torch.no_grad()
def reset(model: nn.Module, mask: Mask, protocol: str, init: Mapping[str, torch.Tensor], *,
          rewind: Mapping[str, torch.Tensor] | None = None,
          fresh: Mapping[str, torch.Tensor] | None = None,
          generator: torch.Generator | None = None) -> nn.Module:
    """Set ``model``'s parameters for the next round of training, following ``protocol``.

    Args:
        init: the parameters at initialisation (name → tensor, e.g. a ``state_dict`` copy).
        rewind: the parameters saved at the rewind iteration (protocol ``rewind``).
        fresh: parameters of a freshly initialised network (protocol ``random_reinit``).
        generator: randomness for ``reshuffle`` and ``sign_flip`` (a CPU generator).
    """
    spec = get(protocol)
    sources = {"init": init, "rewind": rewind, "fresh": fresh}
    source = sources[spec.source]
    if source is None:
        what = {"rewind": "weights saved at the rewind iteration (rewind=...); that iteration "
                          "was not saved", "fresh": "a freshly initialised network (fresh=...)"}
        raise ValueError(f"protocol {protocol!r} needs {what[spec.source]}")
    mask.check(model)
    for name, param in model.named_parameters():
        if name not in source:
            raise ValueError(f"parameter {name!r} is missing from the {spec.source} weights")
        if source[name].shape != param.shape:
            raise ValueError(f"the {spec.source} weights of {name!r} have shape {tuple(source[name].shape)} but the "
                             f"model's parameter {tuple(param.shape)} (weights of another architecture?)")
        w = source[name].to(param.device, param.dtype)
        if name in mask:
            param.copy_(spec.transform(w, mask[name].to(param.device), generator))
        else:
            param.copy_(w)
    return model


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's parameters (name → tensor), for ``init`` / ``rewind``."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}
