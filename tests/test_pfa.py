"""Principal Filter Analysis: widths from spectra of known rank, both rules, the layer's responses."""


import pytest
import torch
from torch import nn

from coursekit import models, pfa


def _rank_r(n_units=20, rank=5, examples=2_000, noise=1e-3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(examples, rank, generator=g) @ torch.randn(rank, n_units, generator=g) \
        + noise * torch.randn(examples, n_units, generator=g)


def test_energy_rule_finds_the_rank_of_the_responses():
    e = pfa.spectrum(_rank_r())
    share = (e.cumsum(0) / e.sum()).tolist()
    assert share[3] < 0.97 and share[4] > 0.9999  # five directions, none negligible: τ = 0.99 is no boundary
    assert pfa.energy_width(e, 0.99) == 5
    assert pfa.energy_width(e, 1.0) == 20 and pfa.energy_width(e, 1e-9) == 1


def test_kl_rule_runs_from_all_units_to_one():
    assert pfa.kl_width(torch.ones(16)) == 16  # uniform spectrum: every direction used
    assert pfa.kl_width(torch.tensor([1.0] + [0.0] * 15)) == 1  # one direction
    half = torch.tensor([1.0] * 8 + [0.0] * 8)  # D = log 2: keep n (1 − log 2 / log 16) = 12
    assert pfa.kl_width(half) == 12
    assert 5 <= pfa.kl_width(pfa.spectrum(_rank_r())) < 20


def test_widths_reads_each_layer_after_its_activation():
    net = models.build("mlp", (8,), 3, seed=0, hidden=(16, 12))
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(1))
    r = models.responses(net, "1", x)
    assert r.shape == (300, 16) and bool((r >= 0).all())  # after the ReLU
    table = pfa.widths(net, ["1", "3"], x, tau=0.9)
    assert table["units"].tolist() == [16, 12]
    assert ((1 <= table["energy"]) & (table["energy"] <= table["units"])).all()
    conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    assert models.responses(conv, "0", torch.randn(10, 1, 8, 8)).shape == (10, 4)  # channel means


@pytest.mark.parametrize(("call", "message"), [
    (lambda: pfa.energy_width(torch.ones(3), 0.0), r"τ must lie in \(0, 1\]"),
    (lambda: pfa.energy_width(torch.ones(3), 1.5), r"τ must lie in \(0, 1\]"),
    (lambda: pfa.kl_width(torch.zeros(3)), "all eigenvalues are 0"),
    (lambda: pfa.kl_width(torch.tensor([1.0, -1.0])), "finite values ≥ 0"),
    (lambda: pfa.spectrum(torch.ones(1, 3)), r"examples ≥ 2"),
    (lambda: models.responses(models.build("mlp", (8,), 3, seed=0, hidden=(4,)), "2", torch.ones(4, 8)),
     r"Linear or Conv2d child of the model: \['1', '3'\]; got '2'"),
    (lambda: models.responses(models.build("mlp", (8,), 3, seed=0, hidden=(4,)), "1", torch.ones(0, 8)),
     "at least 2 examples"),
])
def test_bad_input_says_what_is_accepted(call, message):
    with pytest.raises(ValueError, match=message):
        call()
