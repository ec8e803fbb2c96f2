import pytest
import torch
import torch.nn.functional as F

from coursekit import models, spectra


def _reference_trace(model, x, y):
    """The slow definition: one backward pass per example, squared gradient summed per layer."""
    totals, modules = {}, dict(model.named_modules())
    for xi, yi in zip(x, y, strict=True):
        model.zero_grad()
        (-F.cross_entropy(model(xi[None]), yi[None])).backward()
        for name, p in model.named_parameters():
            owner = name.rpartition(".")[0]
            layer = f"{owner} {type(modules[owner]).__name__}"
            totals[layer] = totals.get(layer, 0.0) + p.grad.pow(2).sum().item()
    return {k: v / len(x) for k, v in totals.items()}


@pytest.mark.parametrize("name", ["mlp", "vgg_bn"])
def test_vectorised_trace_equals_a_loop_over_examples(name):
    shape = (1, 8, 8)
    kwargs = {"hidden": (6,), "activation": "tanh"} if name == "mlp" else {"cfg": (3, "M", 4)}
    model = models.build(name, shape, 3, seed=0, **kwargs)
    model.eval()  # BatchNorm with running statistics: each example's gradient is its own
    x, y = torch.randn(11, *shape, generator=torch.Generator().manual_seed(1)), torch.arange(11) % 3
    fast = spectra.fisher_trace(model, x, y, kind="empirical", chunk=4)
    slow = _reference_trace(model, x, y)
    assert set(fast.index) == set(slow)
    for layer, value in slow.items():
        assert fast[layer] == pytest.approx(value, rel=1e-4)


def test_the_chunk_left_to_the_library_fits_the_budget_and_changes_nothing(monkeypatch):
    model = models.build("mlp", (4,), 3, seed=0, hidden=(5,))  # 43 weights
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    whole = spectra.fisher_trace(model, x, kind="true", generator=gen())
    assert spectra._chunk_size(model, 50, None) == 50
    monkeypatch.setattr(spectra, "GRADIENT_BUDGET", 43 * 8)  # 8 examples' gradients at a time
    assert spectra._chunk_size(model, 50, None) == 8 and spectra._chunk_size(model, 50, 3) == 3
    parts = spectra.fisher_trace(model, x, kind="true", generator=gen())
    assert parts.to_numpy() == pytest.approx(whole.to_numpy(), rel=1e-5)  # the same sampled labels
    with pytest.raises(ValueError, match="chunk ≥ 1"):
        spectra.fisher_trace(model, x, kind="true", chunk=0)


def test_true_fisher_samples_labels_from_the_model():
    model = models.build("mlp", (4,), 3, seed=0, hidden=(5,))
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    a = spectra.fisher_trace(model, x, kind="true", generator=gen())
    assert a.equals(spectra.fisher_trace(model, x, kind="true", generator=gen()))
    # a near-deterministic model samples its argmax and its gradient vanishes: true Fisher ≈ 0
    with torch.no_grad():
        model[-1].weight.mul_(1e4)
    confident = spectra.fisher_trace(model, x, kind="true", generator=gen())
    assert confident.sum() < 0.01 * a.sum()


def test_trace_hook_records_every_epoch(digits):
    from coursekit.core.train import fit
    model = models.build("mlp", digits.input_shape, 10, seed=0, hidden=(8,))
    hook = spectra.FisherTrace(digits.x_val[:64], digits.y_val[:64])
    hook.record(model, 0)
    fit(model, digits, epochs=2, lr=0.1, progress=False, hooks=[hook])
    table = hook.table()
    assert sorted(table["epoch"].unique()) == [0, 1, 2]
    assert set(table["kind"]) == {"true", "empirical"} and set(table["layer"]) == {"1 Linear", "3 Linear"}
    assert (table["trace"] > 0).all()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "diagonal"}, "unknown Fisher kind 'diagonal'"),
    ({"kind": "empirical"}, "needs one label per input"),
    ({"chunk": 0}, "chunk ≥ 1"),
])
def test_bad_fisher_requests(kwargs, message):
    model = models.build("mlp", (4,), 3, seed=0, hidden=(5,))
    with pytest.raises(ValueError, match=message):
        spectra.fisher_trace(model, torch.zeros(2, 4), **kwargs)


def test_fisher_kinds_and_labels_are_checked():
    x = torch.randn(10, 4)
    with pytest.raises(ValueError, match=r"kinds must be a tuple of Fisher kinds from \('true', 'empirical'\), got 'true'"):
        spectra.FisherTrace(x, torch.zeros(10, dtype=torch.long), kinds="true")
    with pytest.raises(ValueError, match="kinds must be a tuple"):
        spectra.FisherTrace(x, torch.zeros(10, dtype=torch.long), kinds=("tru",))
    model = models.build("mlp", (4,), 3, hidden=(5,))
    with pytest.raises(ValueError, match="labels must be non-negative int64 class indices"):
        spectra.fisher_trace(model, x, torch.zeros(10), kind="empirical")
