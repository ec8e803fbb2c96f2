import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from coursekit import models, train
from coursekit.core.masks import Mask, nonzero_density, prunable_parameters
from coursekit.core.pruning import mask_from_scores


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


def _half_mask(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    scores = {n: torch.rand(p.shape, generator=gen) for n, p in prunable_parameters(model).items()}
    return mask_from_scores(scores, 0.2, "layerwise")


def test_prunable_parameters_are_linear_and_conv_weights():
    net = models.build("conv2", (1, 8, 8), 10)
    names = list(prunable_parameters(net))
    assert names == ["0.weight", "2.weight", "6.weight", "8.weight", "10.weight"]
    assert all(not n.endswith("bias") for n in names)


@pytest.mark.parametrize(("tensors", "message"), [
    ({"1.weight": torch.ones(16, 64)}, "must be a bool tensor, got torch.float32"),
    ({"9.weight": torch.ones(3, dtype=torch.bool)}, r"not parameters of this model \(a mask for another"),
    ({"1.weight": torch.ones(64, 16, dtype=torch.bool)}, r"shapes differ .*\(64, 16\), \(16, 64\)"),
    ({}, "at least one"),
])
def test_mask_is_validated_on_creation(tensors, message):
    with pytest.raises(ValueError, match=message):
        Mask(tensors, _net())


def test_mask_for_another_architecture_is_refused():
    mask = Mask.ones_like(models.build("lenet300_100", (1, 28, 28), 10))
    with pytest.raises(ValueError, match="another architecture"):
        mask.apply(_net())


def test_density_sparsity_and_table():
    net = _net()
    mask = _half_mask(net)
    assert mask.kept == round(0.2 * 1024) + round(0.2 * 160)
    assert mask.density == pytest.approx(mask.kept / (1024 + 160))
    assert mask.sparsity == pytest.approx(1 - mask.density)
    table = mask.table()
    assert list(table.index) == ["1.weight", "3.weight", "total"]
    assert table.loc["total", "density"] == pytest.approx(mask.density)
    assert table.loc["1.weight", "kept"] == 205


def test_apply_zeroes_exactly_the_pruned_weights():
    net = _net()
    before = net[1].weight.detach().clone()
    mask = _half_mask(net)
    mask.apply(net)
    w = net[1].weight.detach()
    assert torch.equal(w[~mask["1.weight"]], torch.zeros_like(w[~mask["1.weight"]]))
    assert torch.equal(w[mask["1.weight"]], before[mask["1.weight"]])
    assert nonzero_density(net) == pytest.approx(mask.density)


@pytest.mark.parametrize(("optimizer", "kwargs"), [
    ("sgd", {"momentum": 0.9, "lr": 0.05}),
    ("adam", {"lr": 1e-2}),
    ("adamw", {"lr": 1e-2, "weight_decay": 0.1}),
])
def test_pruned_weights_stay_exactly_zero_through_200_steps(digits, optimizer, kwargs):
    """Acceptance: whatever momentum or Adam moments hold, pruned entries are 0 at every forward."""
    net = models.build("mlp", digits.input_shape, 10, hidden=(32,))
    mask = Mask.ones_like(net)
    # prune by magnitude after a few dense steps, so the optimiser state is non-zero there
    train.fit(net, digits, epochs=1, batch_size=64, optimizer=optimizer, progress=False, **kwargs)
    mask = mask_from_scores({n: p.detach().abs() for n, p in prunable_parameters(net).items()}, 0.3)
    pruned = {n: ~m for n, m in mask.items()}
    params = dict(net.named_parameters())
    seen_nonzero = []

    def watch(module, inputs):  # runs before every forward pass
        seen_nonzero.append(sum(int(params[n][pruned[n]].count_nonzero()) for n in pruned))

    handle = net.register_forward_pre_hook(watch)
    result = train.fit(net, digits, epochs=13, batch_size=64, optimizer=optimizer, progress=False,
                       hooks=[mask.hook(net)], **kwargs)
    handle.remove()
    assert result.history["step"].iloc[-1] >= 200
    assert set(seen_nonzero) == {0}
    assert nonzero_density(net) == pytest.approx(mask.density)


def test_save_and_load(tmp_path):
    net = _net()
    mask = _half_mask(net)
    path = mask.save(tmp_path / "mask.pt")
    assert Mask.load(path, net) == mask
    with pytest.raises(ValueError, match="another architecture"):
        Mask.load(path, models.build("lenet300_100", (1, 28, 28), 10))


def test_round_trip_with_torch_prune():
    net = _net()
    torch_prune.global_unstructured([(net[1], "weight"), (net[3], "weight")],
                                    pruning_method=torch_prune.L1Unstructured, amount=0.7)
    mask = Mask.from_torch_prune(net)
    assert sorted(mask) == ["1.weight", "3.weight"]
    assert mask.density == pytest.approx(0.3, abs=1e-3)
    expected = net[1].weight.detach().clone()  # torch's masked weight

    fresh = _net()
    mask.to_torch_prune(fresh)  # installed as torch's weight_mask buffers
    assert torch.equal(fresh[1].weight_mask.bool(), mask["1.weight"])
    assert torch.equal(fresh[1].weight, expected)
    assert Mask.from_torch_prune(fresh) == mask
    with pytest.raises(ValueError, match=r"no torch\.nn\.utils\.prune masks"):
        Mask.from_torch_prune(_net())


def test_intersection_and_repr():
    net = _net()
    a, b = _half_mask(net, 0), _half_mask(net, 1)
    both = a & b
    assert both.kept <= min(a.kept, b.kept)
    assert "density" in repr(both)


def test_density_of_a_model_without_prunable_layers_says_so():
    with pytest.raises(ValueError, match=r"no prunable layer \(Linear, Conv1d, Conv2d, Conv3d\)"):
        nonzero_density(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)))
    assert nonzero_density(nn.Sequential(nn.BatchNorm1d(4)), names=["0.weight"]) == 1.0
    with pytest.raises(ValueError, match=r"unknown parameters \['x'\]"):
        nonzero_density(_net(), names=["x"])


def test_a_mask_on_a_model_pruned_by_torch_names_the_cause():
    net = _net()
    mask = Mask.ones_like(net)
    mask.to_torch_prune(net)
    for use in (mask.apply, mask.hook):
        with pytest.raises(ValueError, match=r"pruned with torch.nn.utils.prune .*1.weight_orig.*"
                                             r"Mask.from_torch_prune"):
            use(net)


def test_fit_runs_the_mask_hook_before_the_others_whatever_their_order(digits):
    """A hook listed before the mask's still sees pruned weights at exactly zero."""
    net = models.build("mlp", digits.input_shape, 10, hidden=(16,))
    mask = mask_from_scores({n: p.detach().abs() for n, p in prunable_parameters(net).items()}, 0.3)
    seen = []

    def looks(ctx):
        seen.append(max(int(p[~mask[n]].count_nonzero()) for n, p in ctx.model.named_parameters() if n in mask))

    train.fit(net, digits, epochs=1, optimizer="adam", lr=1e-2, hooks=[looks, mask.hook(net)], progress=False)
    assert seen and max(seen) == 0


def test_masks_of_other_shapes_names_as_a_string_and_empty_entries_are_refused(tmp_path):
    wide, narrow = Mask({"w": torch.ones(3, 4, dtype=torch.bool)}), Mask({"w": torch.ones(1, 4, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"masks differ in shape \(this, other\): \{'w': \(\(3, 4\), \(1, 4\)\)\}"):
        wide & narrow
    with pytest.raises(TypeError):
        wide & {"w": torch.ones(3, 4, dtype=torch.bool)}
    with pytest.raises(ValueError, match=r"names must be a list of parameter names, e.g. \['1.weight'\]"):
        Mask.ones_like(_net(), names="1.weight")
    with pytest.raises(ValueError, match="names must be a list"):
        nonzero_density(_net(), names="1.weight")
    with pytest.raises(ValueError, match=r"mask entry 'w' is empty \(shape \(0,\)\)"):
        Mask({"w": torch.zeros(0, dtype=torch.bool)})


def test_a_broken_or_foreign_mask_file_is_named(tmp_path):
    broken = tmp_path / "m.pt"
    broken.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"checkpoint .*m\.pt cannot be read"):
        Mask.load(broken)
    torch.save(torch.ones(3), tmp_path / "t.pt")
    with pytest.raises(ValueError, match=r"t\.pt holds a Tensor, not a mask"):
        Mask.load(tmp_path / "t.pt")
