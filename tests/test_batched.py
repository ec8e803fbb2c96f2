"""Batched training equals training each member alone (to float tolerance)."""

import pandas as pd
import pytest
import torch

from coursekit import batched, models, train
from coursekit.core.masks import prunable_parameters
from coursekit.core.pruning import mask_from_scores

SEEDS = [0, 1, 2]


def _build(ds, seed):
    return models.build("mlp", ds.input_shape, ds.num_classes, seed=seed, hidden=(32,))


def _mask(ds, seed):
    gen = torch.Generator().manual_seed(100 + seed)
    scores = {n: torch.rand(p.shape, generator=gen) for n, p in prunable_parameters(_build(ds, seed)).items()}
    return mask_from_scores(scores, 0.3)


@pytest.mark.parametrize(("optimizer", "kwargs"), [("sgd", {"lr": 0.05, "momentum": 0.9}),
                                                   ("adam", {"lr": 1e-2, "weight_decay": 1e-4})])
def test_batched_equals_one_at_a_time_with_masks(digits, optimizer, kwargs):
    masks = [_mask(digits, s) for s in SEEDS]
    alone, alone_models = [], []
    for s, mask in zip(SEEDS, masks, strict=True):
        model = _build(digits, s)
        alone.append(train.fit(model, digits, epochs=3, batch_size=64, optimizer=optimizer, seed=s,
                               eval_test=True, progress=False, hooks=[mask.hook(model)], **kwargs))
        alone_models.append(model)
    together = [_build(digits, s) for s in SEEDS]
    results = batched.fit_batched(together, digits, SEEDS, masks=masks, epochs=3, batch_size=64,
                                  optimizer=optimizer, eval_test=True, progress=False, **kwargs)
    for a, b, ma, mb, mask in zip(alone, results, alone_models, together, masks, strict=True):
        pd.testing.assert_frame_equal(a.history, b.history, check_exact=False, atol=1e-4, rtol=1e-4)
        for (name, pa), pb in zip(ma.named_parameters(), mb.parameters(), strict=True):
            torch.testing.assert_close(pa, pb, atol=1e-5, rtol=1e-4)
            if name in mask:
                assert torch.count_nonzero(pb[~mask[name]]) == 0  # masks stay exact zeros


def test_convnets_train_batched_as_they_train_alone(digits):
    """The general (vmap) path, used for convnets, also equals training each member alone."""
    def build(seed):
        return models.build("conv2", digits.input_shape, digits.num_classes, seed=seed, width=0.1)

    alone = [build(s) for s in SEEDS[:2]]
    histories = [train.fit(m, digits, epochs=1, batch_size=128, lr=0.05, momentum=0.9, seed=s,
                           progress=False).history for m, s in zip(alone, SEEDS[:2], strict=True)]
    together = [build(s) for s in SEEDS[:2]]
    results = batched.fit_batched(together, digits, SEEDS[:2], epochs=1, batch_size=128, lr=0.05,
                                  momentum=0.9, progress=False)
    for history, result, a, b in zip(histories, results, alone, together, strict=True):
        pd.testing.assert_frame_equal(history, result.history, check_exact=False, atol=1e-4, rtol=1e-4)
        for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
            torch.testing.assert_close(pa, pb, atol=1e-5, rtol=1e-4)


def test_shared_order_and_dropping_members(digits):
    together = [_build(digits, s) for s in SEEDS]
    results = batched.fit_batched(together, digits, SEEDS, epochs=6, batch_size=64, lr=1e-9,
                                  patience=1, progress=False)
    assert all(r.stopped_early for r in results)  # nothing improves at lr 1e-9: all dropped
    shared = batched.fit_batched([_build(digits, 0), _build(digits, 0)], digits, [0, 7],
                                 shared_order=True, epochs=1, progress=False)
    pd.testing.assert_frame_equal(shared[0].history, shared[1].history)


def test_dropping_keeps_the_others_training(digits):
    models_ = [_build(digits, s) for s in SEEDS]
    bm = batched.BatchedModels(models_)
    opt = train.make_optimizer("adam", bm.params.values(), 1e-2)
    x = digits.x_train[:16].unsqueeze(0).expand(3, 16, 1, 8, 8)
    bm(x).sum().backward()
    opt.step()
    before = {n: p.detach()[[0, 2]].clone() for n, p in bm.params.items()}
    bm.keep([0, 2], opt)
    assert bm.size == 2 and all(torch.equal(bm.params[n], before[n]) for n in before)
    bm(x[:2]).sum().backward()
    opt.step()  # the sliced optimiser state still lines up with the parameters


@pytest.mark.parametrize(("name", "kwargs"), [("mlp", {"hidden": (16, 8), "activation": "tanh"}),
                                               ("lenet300_100", {"width": 0.1}),
                                               ("conv2", {"width": 0.1})])
def test_forward_and_members_match_the_models(name, kwargs):
    """The MLP path (transposed weights, baddbmm) and the vmap path (convnets) agree with each model."""
    nets = [models.build(name, (1, 8, 8), 10, seed=s, **kwargs) for s in SEEDS]
    bm = batched.BatchedModels(nets)
    assert (bm._layers is not None) == (name != "conv2")
    x = torch.randn(3, 5, 1, 8, 8)
    torch.testing.assert_close(bm(x), torch.stack([net(xk) for net, xk in zip(nets, x, strict=True)]))
    copy = bm.member(2, models.build(name, (1, 8, 8), 10, seed=9, **kwargs))
    for a, b in zip(copy.parameters(), nets[2].parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_hooked_mlp_takes_the_general_path():
    """A forward hook could change what a layer computes: the fast MLP path must not skip it."""
    nets = [models.build("mlp", (1, 8, 8), 10, seed=s, hidden=(8,)) for s in SEEDS]
    for net in nets:
        net[2].register_forward_hook(lambda module, inputs, output: output * 0.5)
    bm = batched.BatchedModels(nets)
    assert bm._layers is None
    x = torch.randn(3, 4, 1, 8, 8)
    torch.testing.assert_close(bm(x), torch.stack([net(xk) for net, xk in zip(nets, x, strict=True)]))


def test_bad_requests(digits):
    with pytest.raises(ValueError, match="same architecture"):
        batched.BatchedModels([_build(digits, 0), models.build("mlp", (1, 8, 8), 10, hidden=(8,))])
    with pytest.raises(ValueError, match="one seed per model"):
        batched.fit_batched([_build(digits, 0)], digits, [0, 1], progress=False)


def test_batched_training_refuses_what_fit_refuses(digits):
    """fit_batched shares fit's checks: arguments, model-data fit, and a loss that diverges."""
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        batched.fit_batched([_build(digits, 0)], digits, [0], epochs=0, progress=False)
    with pytest.raises(ValueError, match="eval_every must be a positive int or None, got -1"):
        batched.fit_batched([_build(digits, 0)], digits, [0], eval_every=-1, progress=False)
    with pytest.raises(ValueError, match="need at least one model and one seed per model"):
        batched.fit_batched([_build(digits, 0)], digits, 0, progress=False)
    with pytest.raises(ValueError, match="outputs shape \\(5,\\) per example but 'digits' has 10 classes"):
        batched.fit_batched([models.build("mlp", digits.input_shape, 5, hidden=(8,))], digits, [0], progress=False)
    with pytest.raises(FloatingPointError, match=r"the training loss of model \d became (nan|inf)"):
        batched.fit_batched([_build(digits, 0), _build(digits, 1)], digits, [0, 1], lr=1e12, epochs=2,
                            progress=False)
