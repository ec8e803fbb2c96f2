import pytest
import torch

from coursekit import claims, models, rewind, supermask
from coursekit.core.masks import Mask, prunable_parameters
from coursekit.core.pruning import mask_from_scores


def test_constant_supermask_keeps_sign_and_rescales():
    net = models.build("mlp", (1, 8, 8), 10, hidden=(32,))
    init = rewind.snapshot(net)
    mask = mask_from_scores({n: p.detach().abs() for n, p in prunable_parameters(net).items()},
                            0.25, "layerwise")
    supermask.constant_supermask(net, mask, init)
    w, keep, w0 = net[1].weight.detach(), mask["1.weight"], init["1.weight"]
    expected = torch.sign(w0) * w0.std() / 0.25**0.5 * keep
    assert torch.allclose(w, expected)
    assert torch.equal(net[1].bias.detach(), init["1.bias"])
    supermask.constant_supermask(net, mask, init, rescale="zhou")  # dynamic weight rescaling: total / kept
    assert torch.allclose(net[1].weight.detach(), torch.sign(w0) * w0.std() / 0.25 * keep)
    with pytest.raises(ValueError, match="unknown rescale 'sqrt'"):
        supermask.constant_supermask(net, mask, init, rescale="sqrt")


@pytest.mark.trained
@pytest.mark.parametrize("seed", claims.seeds(default=(0,)))
def test_learned_supermask_leaves_weights_and_beats_chance(digits, seed):
    net = models.build("mlp", digits.input_shape, 10, hidden=(64,), seed=seed)
    before = rewind.snapshot(net)
    mask, history = supermask.train_supermask(net, digits, density=0.5, epochs=2, seed=seed, progress=False)
    assert isinstance(mask, Mask) and mask.density == pytest.approx(0.5, abs=0.01)
    assert all(torch.equal(p, before[n]) for n, p in net.named_parameters())  # weights untouched
    assert list(history["epoch"]) == [0, 1, 2]
    claims.check("test_supermask", [
        claims.Claim("learned supermask's final test accuracy", history["test_acc"].iloc[-1], ">", 0.5),
        claims.Claim("its accuracy before learning", history["test_acc"].iloc[0], "<", 0.5)])
    with pytest.raises(ValueError, match=r"density must lie in \(0, 1\]"):
        supermask.train_supermask(net, digits, density=0.0)


def test_straight_through_topk():
    scores = torch.tensor([0.1, 0.9, 0.5, 0.3], requires_grad=True)
    out = supermask._TopKStraightThrough.apply(scores, 2)
    assert out.tolist() == [0.0, 1.0, 1.0, 0.0]
    (out * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert scores.grad.tolist() == [1.0, 2.0, 3.0, 4.0]  # the gradient passes straight through


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"epochs": -1}, "epochs must be a positive int, got -1"),
    ({"batch_size": 0}, "batch_size must be a positive int"),
    ({"lr": 0.0}, "lr must be positive"),
])
def test_bad_supermask_training_is_refused(digits, kwargs, message):
    net = models.build("mlp", digits.input_shape, 10, hidden=(8,))
    with pytest.raises(ValueError, match=message):
        supermask.train_supermask(net, digits, density=0.5, progress=False, **kwargs)
