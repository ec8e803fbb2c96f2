import pytest
import torch

from coursekit import models

SHAPES = {"lenet300_100": (1, 28, 28), "conv2": (1, 28, 28), "conv4": (1, 28, 28),
          "cnn1d": (1, 40), "mlp": (1, 8, 8), "vgg_bn": (1, 28, 28), "blocknet": (1, 16, 16)}


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_model_maps_inputs_to_logits(name):
    model = models.build(name, SHAPES[name], 10, seed=0)
    assert model(torch.zeros(3, *SHAPES[name])).shape == (3, 10)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_seed_fixes_the_weights_and_leaves_global_rng_alone(name):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = models.build(name, SHAPES[name], 10, seed=1)
    assert torch.equal(torch.rand(1), expected_next)
    b = models.build(name, SHAPES[name], 10, seed=1)
    c = models.build(name, SHAPES[name], 10, seed=2)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True))


def test_lenet_has_the_papers_layer_sizes():
    table = models.parameter_table(models.build("lenet300_100", (1, 28, 28), 10))
    assert table["entries"].sum() == 266_610
    assert table.loc["1.weight", "shape"] == (300, 784)
    assert abs(table["share"].sum() - 1) < 1e-3


def test_width_scales_hidden_layers():
    half = models.build("lenet300_100", (1, 28, 28), 10, width=0.5)
    assert models.parameter_table(half).loc["1.weight", "shape"] == (150, 784)


def test_build_moves_to_device():
    model = models.build("mlp", (4,), 3, device="cpu", hidden=(5,), activation="tanh")
    assert next(model.parameters()).device.type == "cpu"
    assert isinstance(model[2], torch.nn.Tanh)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "resnet"}, "unknown model 'resnet'"),
    ({"name": "conv2", "input_shape": (1, 40)}, r"need images of shape \(C, H, W\)"),
    ({"name": "cnn1d", "input_shape": (1, 28, 28)}, r"sequences of shape \(C, L\)"),
    ({"name": "conv4", "input_shape": (1, 3, 3)}, "too small"),
    ({"name": "mlp", "activation": "gelu"}, "unknown activation 'gelu'"),
    ({"name": "lenet300_100", "width": 0}, "width must be a positive"),
    ({"name": "mlp", "num_classes": 1}, "at least 2"),
    ({"name": "vgg_bn", "cfg": (16, "X")}, "cfg must list positive conv widths"),
    ({"name": "vgg_bn", "cfg": ("M",)}, "cfg must list positive conv widths"),
    ({"name": "vgg_bn", "cfg": (8, "M", "M", "M", "M", "M")}, "too small"),
])
def test_bad_model_requests(kwargs, message):
    args = {"input_shape": (1, 28, 28), "num_classes": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        models.build(args.pop("name"), **args)


def test_vgg_bn_puts_batchnorm_after_every_conv():
    model = models.build("vgg_bn", (1, 28, 28), 10, cfg=(4, "M", 8))
    kinds = [type(m).__name__ for m in model]
    assert kinds[:3] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert kinds.count("BatchNorm2d") == 2 and model[-1].in_features == 8


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seed": 1.5}, "seed must be a non-negative int, got 1.5"),
    ({"seed": True}, "seed must be a non-negative int, got True"),
    ({"hidden": (0,)}, r"hidden must be a tuple of positive layer widths, e.g. \(100,\), got \(0,\)"),
    ({"hidden": 100}, "hidden must be a tuple"),
    ({"hidden": (2.5,)}, "hidden must be a tuple"),
    ({"num_classes": 2.5}, "num_classes must be an int of at least 2, got 2.5"),
    ({"input_shape": 784}, "input_shape must be the shape of one example"),
    ({"device": "gpu"}, "unknown device 'gpu'"),
])
def test_build_refuses_what_would_build_another_network(kwargs, message):
    args = {"name": "mlp", "input_shape": (1, 8, 8), "num_classes": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        models.build(**args)
    with pytest.raises(ValueError, match="width must be a positive finite number, got inf"):
        models.build("lenet300_100", (1, 8, 8), 10, width=float("inf"))


def test_responses_are_read_after_every_unit_wise_follower():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    net.eval()
    assert models.unitwise_after(net, "0") == ["1", "2"] and models.output_child(net, "0") == "2"
    assert models.output_child(net, "3") == "3"
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(models.responses(net, "0", x), net[:3](x))
    with pytest.raises(ValueError, match=r"child by child of an nn\.Sequential"):
        models.responses(torch.nn.Linear(3, 4), "0", x)


def test_hand_made_sparse_blocks_count_their_weights_and_macs():
    from coursekit.methods import structured
    dw = models.depthwise_separable(16, 32)
    assert sum(p.numel() for n, p in dw.named_parameters() if n.endswith("weight") and p.ndim == 4) == 9 * 16 + 16 * 32
    fire, bottleneck = models.Fire(16, 32), models.Bottleneck(16, 32)
    x = torch.randn(2, 16, 8, 8)
    assert fire(x).shape == bottleneck(x).shape == (2, 32, 8, 8)
    same = models.Bottleneck(32, 32)
    assert isinstance(same.shortcut, torch.nn.Identity) and (same(fire(x)) >= 0).all()
    counts = {}
    for block in models.BLOCKS:
        net = models.build("blocknet", (1, 28, 28), 10, block=block)
        assert net(torch.randn(3, 1, 28, 28)).shape == (3, 10)
        counts[block] = (sum(p.numel() for p in net.parameters()), structured.count_flops(net, (1, 28, 28)))
    for block in ("bottleneck", "fire", "depthwise"):  # several times cheaper than the dense reference
        assert counts[block][0] < counts["standard"][0] / 4 and counts[block][1] < counts["standard"][1] / 4
    with pytest.raises(ValueError, match="unknown block 'dense'"):
        models.build("blocknet", (1, 28, 28), 10, block="dense")
    with pytest.raises(ValueError, match="needs images"):
        models.build("blocknet", (784,), 10)
