"""Every weight protocol on a hand-made 2-layer network whose answer is known."""

import pytest
import torch
from torch import nn

from coursekit import rewind
from coursekit.core.masks import Mask


def _net():
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    init = {
        "0.weight": torch.tensor([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]),
        "0.bias": torch.tensor([0.5, -0.5]),
        "2.weight": torch.tensor([[7.0, -8.0]]),
        "2.bias": torch.tensor([0.25]),
    }
    mask = Mask({"0.weight": torch.tensor([[True, False, True], [False, True, True]]),
                 "2.weight": torch.tensor([[True, False]])}, net)
    return net, init, mask


def _params(net):
    return {n: p.detach() for n, p in net.named_parameters()}


def test_init_resets_survivors_and_zeroes_the_rest():
    net, init, mask = _net()
    p = _params(rewind.reset(net, mask, "init", init))
    assert torch.equal(p["0.weight"], torch.tensor([[1.0, 0, 3.0], [0, 5.0, -6.0]]))
    assert torch.equal(p["2.weight"], torch.tensor([[7.0, 0]]))
    assert torch.equal(p["0.bias"], init["0.bias"])


def test_rewind_uses_the_saved_iteration_and_needs_it():
    net, init, mask = _net()
    at_k = {n: t + 100 for n, t in init.items()}
    p = _params(rewind.reset(net, mask, "rewind", init, rewind=at_k))
    assert torch.equal(p["2.weight"], torch.tensor([[107.0, 0]]))
    assert torch.equal(p["2.bias"], torch.tensor([100.25]))
    with pytest.raises(ValueError, match="that iteration was not saved"):
        rewind.reset(net, mask, "rewind", init)


def test_random_reinit_takes_the_fresh_weights():
    net, init, mask = _net()
    fresh = {n: torch.full_like(t, 0.5) for n, t in init.items()}
    p = _params(rewind.reset(net, mask, "random_reinit", init, fresh=fresh))
    assert torch.equal(p["0.weight"], torch.tensor([[0.5, 0, 0.5], [0, 0.5, 0.5]]))
    with pytest.raises(ValueError, match="freshly initialised"):
        rewind.reset(net, mask, "random_reinit", init)


def test_reshuffle_permutes_survivor_values_within_the_layer():
    net, init, mask = _net()
    p = _params(rewind.reset(net, mask, "reshuffle", init, generator=torch.Generator().manual_seed(0)))
    w = p["0.weight"]
    assert torch.equal(w[~mask["0.weight"]], torch.zeros(2))
    assert sorted(w[mask["0.weight"]].tolist()) == [-6.0, 1.0, 3.0, 5.0]


def test_constant_is_sign_times_layer_std():
    net, init, mask = _net()
    p = _params(rewind.reset(net, mask, "constant", init))
    sigma = init["0.weight"].std()
    expected = torch.tensor([[1, 0, 1], [0, 1, -1]]) * sigma
    assert torch.allclose(p["0.weight"], expected)


def test_sign_flip_keeps_magnitudes():
    net, init, mask = _net()
    p = _params(rewind.reset(net, mask, "sign_flip", init, generator=torch.Generator().manual_seed(3)))
    w, keep = p["0.weight"], mask["0.weight"]
    assert torch.equal(w.abs(), (init["0.weight"] * keep).abs())
    signs = set()
    for seed in range(8):
        rewind.reset(net, mask, "sign_flip", init, generator=torch.Generator().manual_seed(seed))
        signs.add(tuple(torch.sign(net[0].weight.detach()[keep]).tolist()))
    assert len(signs) > 1  # the signs really are random


def test_unknown_protocol_and_snapshot():
    net, init, mask = _net()
    with pytest.raises(ValueError, match=r"no such protocol 'shuffle'; known protocols: \['constant'"):
        rewind.reset(net, mask, "shuffle", init)
    snap = rewind.snapshot(net)
    with torch.no_grad():
        net[0].weight.add_(1)
    assert not torch.equal(snap["0.weight"], net[0].weight)


def test_weights_of_another_shape_and_a_one_weight_constant_layer_are_refused():
    net, init, mask = _net()
    init["0.bias"] = init["0.bias"][:1]  # would broadcast into both biases
    with pytest.raises(ValueError, match=r"init weights of '0.bias' have shape \(1,\) but the model's parameter \(2,\)"):
        rewind.reset(net, mask, "init", init)
    tiny = nn.Sequential(nn.Linear(1, 1))
    with pytest.raises(ValueError, match="the 'constant' protocol needs the spread of a layer's weights"):
        rewind.reset(tiny, Mask.ones_like(tiny), "constant", rewind.snapshot(tiny))
