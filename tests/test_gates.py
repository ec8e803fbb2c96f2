"""Hard-concrete and straight-through gates: the closed form, the penalty, surgery that changes nothing."""

import math

import pytest
import torch
from torch import nn

from coursekit import gates, models


def test_hard_concrete_open_probability_matches_the_closed_form():
    """Louizos et al. 2018: at log α = 0, P(z ≠ 0) = σ(−β log(−γ/ζ)) ≈ 0.8318; Monte Carlo within ±0.005."""
    gate = gates.HardConcreteGate(1)
    with torch.no_grad():
        gate.log_alpha.zero_()
    closed = float(gate.prob_open().detach())
    assert closed == pytest.approx(1 / (1 + math.exp(2 / 3 * math.log(0.1 / 1.1))), abs=1e-6)
    assert closed == pytest.approx(0.8318, abs=1e-4)
    z = gate.sample(400_000, generator=torch.Generator().manual_seed(0))
    assert float((z > 0).float().mean()) == pytest.approx(closed, abs=0.005)  # sd of the estimate: 0.0006
    assert float((z == 1).float().mean()) > 0.1 and float((z == 0).float().mean()) > 0.1  # exact 0s and 1s


def test_gates_start_open_as_asked_and_the_penalty_pulls_them_shut():
    for kind in gates.KINDS:
        net = gates.gate_units(models.build("mlp", (8,), 3, seed=0, hidden=(16, 16)), ["1", "3"], kind=kind,
                               open_probability=0.7)
        assert list(gates.gates(net)) == ["gate1", "gate3"]
        assert [type(m).__name__ for m in net][:4] == ["Flatten", "Linear", "ReLU", type(gates.gates(net)["gate1"]).__name__]
        table = gates.gate_table(net)
        assert table["expected_l0"].tolist() == pytest.approx([0.7 * 16, 0.7 * 16])
        opt = torch.optim.SGD(net.parameters(), lr=1.0)
        for _ in range(20):
            opt.zero_grad()
            gates.l0_penalty(0.1)(net).backward()
            opt.step()
        assert gates.gate_table(net)["expected_l0"].sum() < table["expected_l0"].sum()


@pytest.mark.parametrize("kind", gates.KINDS)
def test_removing_closed_units_leaves_the_test_time_output_unchanged(kind):
    net = gates.gate_units(models.build("mlp", (8,), 3, seed=0, hidden=(16, 12)), ["1", "3"], kind=kind)
    with torch.no_grad():
        for g in gates.gates(net).values():
            p = g.log_alpha if kind == "hard_concrete" else g.scores
            p.copy_(torch.linspace(-6, 6, p.numel())[torch.randperm(p.numel(), generator=torch.Generator().manual_seed(1))])
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(2))
    small = gates.remove_closed(net.eval())
    assert not gates.gates(small)
    assert torch.allclose(small(x), net(x), atol=1e-6)
    widths = [m.out_features for m in small if isinstance(m, nn.Linear)]
    assert widths == [int((g.test_gate() > 0).sum()) for g in gates.gates(net).values()] + [3]
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for n, p in net.named_parameters()
                                                            if "gate" not in n)


def test_straight_through_gate_is_binary_forward_and_smooth_backward():
    gate = gates.StraightThroughGate(4)
    with torch.no_grad():
        gate.scores.copy_(torch.tensor([-2.0, -0.1, 0.1, 2.0]))
    x = torch.ones(3, 4, requires_grad=True)
    out = gate(x)
    assert out.detach().tolist() == [[0.0, 0.0, 1.0, 1.0]] * 3
    out.sum().backward()
    s = torch.sigmoid(gate.scores.detach())
    assert torch.allclose(gate.scores.grad, 3 * s * (1 - s))


@pytest.mark.parametrize(("call", "message"), [
    (lambda net: gates.gate_units(net, ["2"]), r"Linear layers other than the last .*\['1', '3'\]; got \['2'\]"),
    (lambda net: gates.gate_units(net, ["5"]), "other than the last"),
    (lambda net: gates.gate_units(net, ["1"], kind="sigmoid"), "unknown gate kind 'sigmoid'"),
    (lambda net: gates.gate_units(net, ["1"], open_probability=1.0), r"open_probability must lie in \(0, 1\)"),
    (lambda net: gates.l0_penalty(-0.1), "λ must be a number ≥ 0"),
    (lambda net: gates.l0_penalty(0.1)(net), "has no gates"),
])
def test_bad_input_says_what_is_accepted(call, message):
    net = models.build("mlp", (8,), 3, seed=0, hidden=(16, 12))
    with pytest.raises(ValueError, match=message):
        call(net)
