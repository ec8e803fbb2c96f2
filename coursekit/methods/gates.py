"""Gates on units: hard-concrete L0 gates and straight-through binary gates (slide 9).

A gate multiplies each unit's output by ``z ∈ [0, 1]``; training minimises the loss plus
``λ`` times the expected number of open gates, so the penalty weight trades accuracy for
width.

* **Hard concrete** (Louizos, Welling & Kingma 2018, "Learning Sparse Neural Networks
  through L0 Regularization", ICLR): ``u ~ U(0, 1)``,
  ``s = σ((log u − log(1 − u) + log α) / β)``, stretched to ``(γ, ζ)`` and clipped to
  ``[0, 1]``, with ``β = 2/3, γ = −0.1, ζ = 1.1``. The gate is exactly 0 or 1 with
  positive probability, and ``P(z ≠ 0) = σ(log α − β log(−γ/ζ))`` is differentiable, so
  the expected L0 norm is a penalty gradient descent can use. At test time
  ``z = min(1, max(0, σ(log α)(ζ − γ) + γ))``.
* **Straight-through** binary gates: ``z = 1[s > 0]`` forward, the gradient of ``σ(s)``
  backward (Bengio et al. 2013's estimator); the penalty is ``Σ σ(s)``.

:func:`gate_units` inserts gates after chosen Linear layers of a Sequential network,
:func:`l0_penalty` gives ``fit(penalty=)`` its term, and :func:`remove_closed` removes
the units whose test-time gate is 0 by filter surgery (:mod:`coursekit.methods.structured`)
after folding the open gates into the next layer, so the smaller network computes exactly
what the gated one did at test time.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import nn

from coursekit.core import models
from coursekit.methods import structured

BETA, GAMMA, ZETA = 2 / 3, -0.1, 1.1
KINDS = ("hard_concrete", "straight_through")


def _logits(units: int, open_probability: float) -> torch.Tensor:
    """``units`` copies of ``log(p / (1 − p))``, after checking both arguments."""
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ValueError(f"units must be a positive int, got {units!r}")
    if not 0 < open_probability < 1:
        raise ValueError(f"open_probability must lie in (0, 1), got {open_probability!r}")
    return torch.full((units,), math.log(open_probability / (1 - open_probability)))


class _UnitGate(nn.Module):
    """A gate per unit; each kind defines ``prob_open()`` (P(z ≠ 0) per unit) and ``test_gate()``."""

    def expected_l0(self) -> torch.Tensor:
        """The expected number of open gates, ``Σ P(z ≠ 0)``: the L0 penalty's term."""
        return self.prob_open().sum()


class HardConcreteGate(_UnitGate):
    """One hard-concrete gate per unit; ``log_alpha`` starts where ``P(z ≠ 0) = open_probability``."""

    def __init__(self, units: int, open_probability: float = 0.9):
        super().__init__()
        self.log_alpha = nn.Parameter(_logits(units, open_probability) + BETA * math.log(-GAMMA / ZETA))

    def sample(self, n: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws of every gate, shape ``(n, units)``."""
        u = torch.rand((n, self.log_alpha.numel()), generator=generator, device=self.log_alpha.device)
        u = u.clamp(1e-6, 1 - 1e-6)
        s = torch.sigmoid((u.log() - (-u).log1p() + self.log_alpha) / BETA)
        return (s * (ZETA - GAMMA) + GAMMA).clamp(0, 1)

    def test_gate(self) -> torch.Tensor:
        """The deterministic gate used at test time (and by :func:`remove_closed`)."""
        return (torch.sigmoid(self.log_alpha) * (ZETA - GAMMA) + GAMMA).clamp(0, 1)

    def prob_open(self) -> torch.Tensor:
        """``P(z ≠ 0)`` of each gate, in closed form."""
        return torch.sigmoid(self.log_alpha - BETA * math.log(-GAMMA / ZETA))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.sample(x.shape[0]) if self.training else self.test_gate().expand(x.shape[0], -1)
        return x * z.reshape(x.shape[0], -1, *([1] * (x.ndim - 2)))


class StraightThroughGate(_UnitGate):
    """One binary gate per unit: ``1[s > 0]`` forward, ``σ(s)``'s gradient backward."""

    def __init__(self, units: int, open_probability: float = 0.9):
        super().__init__()
        self.scores = nn.Parameter(_logits(units, open_probability))

    def test_gate(self) -> torch.Tensor:
        return (self.scores > 0).to(self.scores.dtype)

    def prob_open(self) -> torch.Tensor:
        return torch.sigmoid(self.scores)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        soft = torch.sigmoid(self.scores)
        z = self.test_gate() + (soft - soft.detach())  # exactly 0 or 1 forward, σ'(s) backward
        return x * z.reshape(1, -1, *([1] * (x.ndim - 2)))


def _linear_names(model: nn.Sequential) -> list[str]:
    return [name for name, m in model.named_children() if isinstance(m, nn.Linear)]


def gate_units(model: nn.Sequential, layers: Sequence[str], kind: str = "hard_concrete",
               open_probability: float = 0.9) -> nn.Sequential:
    """A copy of ``model`` with a gate on every unit of each Linear layer in ``layers``.

    The gate goes after the unit-wise children that follow the layer (activation,
    BatchNorm; so a closed gate silences the unit whatever its bias), and is named ``gate<layer>``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown gate kind {kind!r}; expected one of {KINDS}")
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"gates go into an nn.Sequential, got {type(model).__name__}")
    linear = _linear_names(model)
    layers = [layers] if isinstance(layers, str) else list(layers)
    wrong = [name for name in layers if name not in linear[:-1]]
    if wrong or not layers or len(set(layers)) != len(layers):
        raise ValueError(f"layers must be distinct names of Linear layers other than the last (whose units are "
                         f"the outputs): {linear[:-1]}; got {layers}")
    make = HardConcreteGate if kind == "hard_concrete" else StraightThroughGate
    gated = copy.deepcopy(model)
    before = {models.output_child(gated, layer): layer for layer in layers}
    out: OrderedDict[str, nn.Module] = OrderedDict()
    for name, module in gated.named_children():
        out[name] = module
        if name in before:
            out[f"gate{before[name]}"] = make(dict(gated.named_children())[before[name]].out_features,
                                              open_probability)
    return nn.Sequential(out)


def gates(model: nn.Module) -> dict[str, _UnitGate]:
    """The gates of ``model`` by child name."""
    return {name: m for name, m in model.named_children() if isinstance(m, _UnitGate)}


def l0_penalty(strength: float) -> Callable[[nn.Module], torch.Tensor]:
    """``model ↦ strength · Σ E[number of open gates]``, for ``fit(penalty=)``."""
    if isinstance(strength, bool) or not isinstance(strength, int | float) or not strength >= 0:
        raise ValueError(f"the L0 penalty weight λ must be a number ≥ 0, got {strength!r}")

    def penalty(model: nn.Module) -> torch.Tensor:
        found = gates(model)
        if not found:
            raise ValueError("the model has no gates: add them with gate_units(model, layers)")
        return strength * sum(g.expected_l0() for g in found.values())

    return penalty


def gate_table(model: nn.Module) -> pd.DataFrame:
    """Per gated layer: its units, how many test-time gates are open, and the expected L0."""
    rows = [{"gate": name, "units": g.test_gate().numel(), "open": int((g.test_gate() > 0).sum()),
             "expected_l0": float(g.expected_l0().detach())} for name, g in gates(model).items()]
    return pd.DataFrame(rows, columns=["gate", "units", "open", "expected_l0"])


@torch.no_grad()
def remove_closed(model: nn.Sequential) -> nn.Sequential:
    """The gated ``model`` made smaller: open gates folded into the next Linear layer's columns,
    the gates dropped, and the units with a closed test-time gate removed by filter surgery
    (:func:`coursekit.methods.structured.remove_filters`). Equal to ``model.eval()``'s output."""
    children = dict(model.named_children())
    plain: OrderedDict[str, nn.Module] = OrderedDict()
    kept: dict[str, torch.Tensor] = {}
    carry: torch.Tensor | None = None  # the gate waiting to be folded into the next Linear layer
    for name, module in children.items():
        if isinstance(module, _UnitGate):
            z = module.test_gate().detach()
            layer = next(n for n in reversed(plain) if isinstance(plain[n], nn.Linear))
            open_ = (z > 0).nonzero().squeeze(1).cpu()
            kept[layer] = open_ if open_.numel() else z.argmax().reshape(1).cpu()  # one unit stays, weighted 0
            carry = z
            continue
        module = copy.deepcopy(module)
        if isinstance(module, nn.Linear) and carry is not None:
            module.weight.mul_(carry)
            carry = None
        plain[name] = module
    return structured.remove_filters(nn.Sequential(plain), kept)
