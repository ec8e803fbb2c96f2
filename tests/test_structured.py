import copy

import numpy as np
import pytest
import torch
from torch import nn

from coursekit import models, structured


def _with_batchnorm_statistics(model, shape, seed=0):
    """Random γ, β and running statistics, so the BatchNorm entries that surgery keeps matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen))
                m.running_mean.copy_(torch.randn(n, generator=gen))
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
    return model.eval()


def _tiny():
    """conv 1→2 (3×3, pad 1) on 1×4×4, ReLU, 2×2 pool, Flatten (2·2·2 = 8), Linear 8 → 3."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8, 3))


def test_filter_scores_are_l1_norms_of_filters():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 0.0], [-3.0, 1.0]]))
    scores = structured.filter_scores(net)
    assert list(scores) == ["0"]  # the output layer is never pruned
    assert scores["0"].tolist() == [2.0, 0.5, 4.0]
    assert structured.select_filters(net, 0.34)["0"].tolist() == [0, 2]  # round(0.34·3) = 1 removed


def test_select_filters_keeps_the_highest_scores_and_breaks_ties_by_position():
    net = models.build("vgg_bn", (3, 8, 8), 10)
    scores = structured.filter_scores(net)
    kept = structured.select_filters(net, {"4": 0.25})
    assert list(kept) == ["4"] and len(kept["4"]) == 24
    dropped = torch.ones(32, dtype=torch.bool)
    dropped[kept["4"]] = False
    assert scores["4"][kept["4"]].min() > scores["4"][dropped].max()
    tied = structured.select_filters(net, {"0": 0.5}, scores={"0": torch.ones(16)})
    assert tied["0"].tolist() == list(range(8))


@pytest.mark.parametrize("name", ["vgg_bn", "conv2", "conv4", "lenet300_100"])
def test_pruned_model_computes_what_the_masked_model_computes(name):
    """Surgery is exact: removing filters (and BatchNorm entries, next-layer inputs, and the H·W
    inputs per channel of a Linear after Flatten) equals zeroing them in the unpruned model."""
    shape = (1, 28, 28) if name == "lenet300_100" else (3, 16, 16)
    kwargs = {} if name == "vgg_bn" else {"width": 0.25}
    net = _with_batchnorm_statistics(models.build(name, shape, 10, **kwargs), shape)
    before = copy.deepcopy(net.state_dict())
    kept = structured.select_filters(net, 0.5)
    pruned = structured.remove_filters(net, kept)
    masked = structured.channel_mask(net, kept).apply(copy.deepcopy(net))
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), masked(x), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(pruned(x), net(x))  # it is pruning, not a copy
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # original untouched
    assert structured.count_parameters(pruned) < 0.6 * structured.count_parameters(net)
    assert structured.count_flops(pruned, shape) < 0.6 * structured.count_flops(net, shape)


def test_flops_and_parameters_of_a_tiny_model_by_hand():
    """conv: 2 maps × 16 positions × 9 MACs = 288; Linear 8·3 = 24. Keeping 1 filter: 144 + 4·3 = 156."""
    net = _tiny()
    assert structured.count_flops(net, (1, 4, 4)) == 312
    assert structured.count_parameters(net) == 2 * 9 + 2 + 8 * 3 + 3
    pruned = structured.prune_filters(net, 0.5)
    assert pruned[4].in_features == 4  # one channel of 2×2 positions left after Flatten
    assert structured.count_flops(pruned, (1, 4, 4)) == 156
    assert structured.count_parameters(pruned) == 9 + 1 + 4 * 3 + 3
    assert net.training  # counting runs in eval mode and restores the mode


def test_prune_filters_shapes_for_vgg_bn():
    net = models.build("vgg_bn", (3, 16, 16), 10)
    pruned = structured.prune_filters(net, {"0": 0.5, "8": 0.25})
    shapes = [tuple(p.shape) for p in pruned.parameters()]
    assert shapes == [(8, 3, 3, 3), (8,), (8,), (32, 8, 3, 3), (32,), (32,), (48, 32, 3, 3), (48,), (48,),
                      (10, 48), (10,)]
    assert pruned[1].running_mean.shape == (8,) and pruned[1].num_features == 8


@pytest.mark.parametrize(("model", "amount", "message"), [
    (_tiny(), 0.8, r"removes all 2 filters of layer '0'"),
    (_tiny(), 1.0, r"must lie in \[0, 1\)"),
    (_tiny(), {"4": 0.5}, r"no prunable layers named \['4'\].*last layer"),
    (nn.Sequential(nn.Linear(4, 4), nn.Softmax(1), nn.Linear(4, 2)), 0.5, "'1' is a Softmax"),
    (nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Conv2d(4, 2, 1)), 0.5, "grouped conv"),
    (nn.Linear(3, 3), 0.5, "nn.Sequential models, got Linear"),
])
def test_bad_pruning_requests(model, amount, message):
    with pytest.raises(ValueError, match=message):
        structured.prune_filters(model, amount)


def test_nonzero_parameters_and_flops_of_a_masked_model():
    """A mask changes neither the parameter count nor the dense MACs; the nonzero counts see it."""
    net = _tiny()
    with torch.no_grad():
        net[0].weight[1] = 0  # one of the two 3×3 filters: 9 weights, 16 positions × 9 MACs
        net[4].weight[:, :4] = 0  # half of the Linear's 24 weights
    assert structured.count_parameters(net) == 47
    assert structured.count_parameters(net, nonzero=True) == 47 - 9 - 12
    assert structured.count_flops(net, (1, 4, 4)) == 312
    assert structured.count_flops(net, (1, 4, 4), skip_zeros=True) == 144 + 12


@pytest.mark.parametrize(("kept", "message"), [
    ({"0": torch.tensor([], dtype=torch.long)}, r"keeping no filter of layer '0' removes all 2"),
    ({"0": torch.tensor([0, 0])}, r"distinct indices in 0\.\.1"),
    ({"0": torch.tensor([2])}, r"distinct indices in 0\.\.1, got \[2\]"),
])
def test_remove_filters_refuses_empty_or_wrong_indices(kept, message):
    with pytest.raises(ValueError, match=message):
        structured.remove_filters(_tiny(), kept)


def test_latency_is_a_positive_time():
    net = _tiny()
    assert structured.latency(net, torch.randn(2, 1, 4, 4), repeats=3, warmup=1) > 0
    assert net.training


@pytest.mark.parametrize("amount", [0.5, {"0": 0.25, "4": 0.5, "8": 0.75}])
def test_torch_pruning_gives_the_same_layers(amount):
    """Torch-Pruning's L1 filter pruning (MagnitudeImportance p=1) and ours: same shapes, same weights."""
    net = models.build("vgg_bn", (3, 16, 16), 10)
    theirs = structured.torch_pruning_filters(net, torch.randn(1, 3, 16, 16), amount)
    ours = structured.prune_filters(net, amount)
    assert [tuple(p.shape) for p in theirs.parameters()] == [tuple(p.shape) for p in ours.parameters()]
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert next(net.parameters()).shape == (16, 3, 3, 3)  # the original is untouched


def test_scores_must_fit_the_layers():
    net = models.build("vgg_bn", (3, 8, 8), 10)
    with pytest.raises(ValueError, match=r"one entry per filter.*'0': \(8, 16\)"):
        structured.select_filters(net, 0.5, scores={"0": torch.ones(8)})
    with pytest.raises(ValueError, match=r"no prunable layers named \['13'\]"):
        structured.select_filters(net, 0.5, scores={"13": torch.ones(10)})
    with pytest.raises(ValueError, match=r"no scores for layers \['4'\]"):
        structured.select_filters(net, {"4": 0.5}, scores={"0": torch.ones(16)})


@pytest.mark.parametrize(("kept", "message"), [
    ({"0": [-1]}, r"must be distinct indices in 0\.\.3, got \[-1\]"),
    ({"0": []}, "keeping no filter of layer '0' removes all 4"),
    ({"0": [9]}, r"got \[9\]"),
    ({"0": [1.7]}, "must be int indices, got torch.float32"),
    ({"0": [1, 1]}, r"distinct indices in 0\.\.3, got \[1, 1\]"),
])
def test_kept_filters_that_are_not_filters_are_refused_by_mask_and_surgery(kept, message):
    net = models.build("vgg_bn", (1, 8, 8), 3, cfg=(4, "M", 6))
    for call in (structured.channel_mask, structured.remove_filters):
        with pytest.raises(ValueError, match=message):
            call(net, kept)


def test_nan_scores_numpy_amounts_shapes_and_repeats():
    net = models.build("vgg_bn", (1, 8, 8), 3, cfg=(4, "M", 6))
    scores = structured.filter_scores(net)
    scores["0"] = torch.tensor([float("nan"), 1.0, 2.0, 0.5])
    with pytest.raises(ValueError, match=r"scores of layers \['0'\] contain NaN"):
        structured.select_filters(net, 0.5, scores)
    assert [len(v) for v in structured.select_filters(net, np.float32(0.5)).values()] == [2, 3]
    with pytest.raises(ValueError, match="input_shape must be the shape of one example"):
        structured.count_flops(net, 64)
    with pytest.raises(ValueError, match="the model has no parameters"):
        structured.count_flops(nn.Sequential(nn.ReLU()), (4,))
    with pytest.raises(ValueError, match="need repeats >= 1"):
        structured.latency(net, torch.randn(2, 1, 8, 8), repeats=0)
    with pytest.raises(ValueError, match="x holds no example"):
        structured.latency(net, torch.randn(0, 1, 8, 8))
