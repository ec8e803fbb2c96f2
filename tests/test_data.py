import dataclasses
from dataclasses import replace

import numpy as np
import pytest
import torch

from coursekit import data, idx


def test_digits_are_normalised_tensors(digits):
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.long
    assert abs(digits.x_train.mean().item()) < 1e-4
    assert abs(digits.x_train.std().item() - 1) < 1e-3
    total = sum(len(digits.split(s)[1]) for s in data.SPLITS)
    assert total == 1797
    assert list(digits.summary().index) == list(data.SPLITS)


def test_load_is_deterministic_and_sized_by_scale():
    a = data.load("digits", sizes=data.Sizes(train=100, val=50, test=30))
    b = data.load("digits", sizes=data.Sizes(train=100, val=50, test=30))
    assert [len(a.split(s)[1]) for s in data.SPLITS] == [100, 50, 30]
    for s in data.SPLITS:
        assert torch.equal(a.split(s)[0], b.split(s)[0])


def test_validation_is_drawn_from_training_set_without_overlap():
    ds = data.load("digits", sizes=data.Sizes(train=None, val=200, test=None))
    train = {tuple(r) for r in ds.x_train.flatten(1).tolist()}
    val = {tuple(r) for r in ds.x_val.flatten(1).tolist()}
    assert len(train & val) <= 5  # digits holds a few exact duplicate images, nothing more


def test_unknown_names_are_refused(digits):
    with pytest.raises(ValueError, match=r"unknown data set 'cifar'.*fashion_mnist"):
        data.load("cifar")
    with pytest.raises(ValueError, match="unknown split"):
        digits.split("dev")


def test_batches_visit_every_example_once():
    x = torch.arange(10).float().unsqueeze(1)
    y = torch.arange(10)
    seen = torch.cat([yb for _, yb in data.batches(x, y, 3, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))
    sizes = [len(yb) for _, yb in data.batches(x, y, 3, drop_last=True)]
    assert sizes == [3, 3, 3]
    for xb, yb in data.batches(x, y, 4):
        assert torch.equal(xb.squeeze(1).long(), yb)  # inputs and targets stay paired


def test_batches_order_follows_the_generator():
    x, y = torch.zeros(50, 1), torch.arange(50)

    def order(seed):
        return torch.cat([yb for _, yb in data.batches(x, y, 7, generator=torch.Generator().manual_seed(seed))])

    assert torch.equal(order(1), order(1)) and not torch.equal(order(1), order(2))
    assert torch.equal(torch.cat([yb for _, yb in data.batches(x, y, 7, shuffle=False)]), y)


def test_batches_bad_input():
    with pytest.raises(ValueError, match="x has 4 examples but y has 3"):
        next(data.batches(torch.zeros(4, 2), torch.zeros(3), 2))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        next(data.batches(torch.zeros(4, 2), torch.zeros(4), 0))


def test_mnist1d_is_generated_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    ds = data.load("mnist1d", scale="ci")
    assert ds.input_shape == (1, 40) and len(ds.y_train) == 2000
    assert (tmp_path / "mnist1d").is_dir() and list((tmp_path / "mnist1d").glob("*.npz"))
    state = np.random.get_state()[1].copy()  # noqa: NPY002 -- must stay untouched
    again = data.load("mnist1d", scale="ci")  # from the cache, same numbers
    assert torch.equal(again.x_train, ds.x_train)
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002


@pytest.mark.skipif(data.locate("fashion_mnist") is None, reason="Fashion-MNIST not on this machine")
def test_fashion_mnist_at_ci_scale():
    ds = data.load("fashion_mnist", scale="ci")
    assert ds.input_shape == (1, 28, 28) and ds.classes[9] == "Ankle boot"
    assert [len(ds.split(s)[1]) for s in data.SPLITS] == [2000, 500, 1000]


def _fake_idx_set(folder, n_train=30, n_test=10):
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    return {part: idx.payload_sha256(idx.write_idx(folder / f"{stem}.gz", arrays[part]))
            for part, stem in data.IDX_PARTS.items()}


@pytest.fixture
def isolated_fashion(tmp_path, monkeypatch):
    """Fashion-MNIST with no copy on the machine: an empty data folder, no Debian package."""
    store = tmp_path / "store"
    monkeypatch.setenv(data.DATA_ENV, str(store))
    monkeypatch.setattr(data, "REPO_DATA", tmp_path / "repo-data")
    source = replace(data.FASHION_MNIST, system_dir=None)
    monkeypatch.setitem(data.IDX_SOURCES, "fashion_mnist", source)
    return store, source


def test_missing_data_names_where_it_looked(isolated_fashion):
    store, _ = isolated_fashion
    assert data.locate("fashion_mnist") is None
    with pytest.raises(FileNotFoundError, match=str(store)):
        data.load("fashion_mnist", scale="ci")
    with pytest.raises(FileNotFoundError, match="coursekit data fetch fashion_mnist"):
        data.ensure("fashion_mnist", allow_apt=False, allow_download=False)


def test_ensure_downloads_verified_files_from_a_mirror(isolated_fashion, http_dir, monkeypatch):
    store, source = isolated_fashion
    served, url = http_dir
    checksums = _fake_idx_set(served)
    monkeypatch.setitem(data.IDX_SOURCES, "fashion_mnist", replace(source, mirrors=(url,), sha256=checksums))
    assert data.ensure("fashion_mnist", allow_apt=False) == store / "fashion_mnist"
    ds = data.load("fashion_mnist", sizes=data.Sizes(train=None, val=5, test=None))
    assert [len(ds.split(s)[1]) for s in data.SPLITS] == [25, 5, 10]


def test_ensure_refuses_a_corrupted_mirror(isolated_fashion, http_dir, monkeypatch):
    store, source = isolated_fashion
    served, url = http_dir
    checksums = _fake_idx_set(served)
    checksums["test_images"] = "f" * 64
    monkeypatch.setitem(data.IDX_SOURCES, "fashion_mnist", replace(source, mirrors=(url,), sha256=checksums))
    with pytest.raises(idx.ChecksumError, match="t10k-images"):
        data.ensure("fashion_mnist", allow_apt=False)
    assert not list((store / "fashion_mnist").glob("t10k-images*"))
    assert data.locate("fashion_mnist") is None


def test_mnist_cannot_be_downloaded_without_checksums(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    monkeypatch.setattr(data, "REPO_DATA", tmp_path / "repo-data")
    with pytest.raises(FileNotFoundError, match="place its four IDX files"):
        data.ensure("mnist")


@pytest.mark.parametrize(("sizes", "message"), [
    (lambda: data.Sizes(train=0, val=50, test=50), "Sizes.train must be a positive int or None, got 0"),
    (lambda: data.Sizes(train=-5, val=50, test=50), "got -5"),
    (lambda: data.Sizes(train=None, val=0, test=None), "Sizes.val must be a positive int, got 0"),
    (lambda: data.Sizes(train=None, val=10.5, test=None), "Sizes.val must be int, got 10.5"),
])
def test_bad_sizes_are_refused(sizes, message):
    with pytest.raises(ValueError, match=message):
        sizes()


def test_load_refuses_other_sizes_and_split_seeds():
    with pytest.raises(ValueError, match=r"sizes must be a data.Sizes\(train=..., val=..., test=...\), got dict"):
        data.load("digits", sizes={"train": 10, "val": 10, "test": 10})
    with pytest.raises(ValueError, match="split_seed must be a non-negative int, got -1"):
        data.load("digits", "ci", split_seed=-1)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: {"y_train": d.y_train.float()}, "train split: labels must be an int64 tensor"),
    (lambda d: {"y_val": d.y_val[:, None]}, r"val split: labels must be an int64 tensor of shape \(\d+,\)"),
    (lambda d: {"y_test": d.y_test + 10}, r"test split: labels must lie in 0..9 \(one per class\), got 10..19"),
    (lambda d: {"x_val": d.x_val[:0], "y_val": d.y_val[:0]}, "val split: inputs must be a non-empty float tensor"),
    (lambda d: {"x_test": d.x_test[..., :4]}, r"shaped like the training split's \(1, 8, 8\)"),
    (lambda d: {"classes": ("0",)}, "classes must be a tuple of at least 2 names"),
])
def test_a_dataset_names_the_split_that_is_wrong(digits, change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(digits, **change(digits))


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.4])
def test_label_noise_corrupts_an_exact_fraction_the_same_way_for_a_seed(digits, fraction):
    noisy = digits.with_label_noise(fraction, seed=3)
    wrong = noisy.y_train != digits.y_train
    assert int(wrong.sum()) == round(fraction * len(digits.y_train))
    assert torch.equal(noisy.y_train, digits.with_label_noise(fraction, seed=3).y_train)
    assert torch.equal(noisy.y_test, digits.y_test) and torch.equal(noisy.y_val, digits.y_val)
    if fraction:
        assert not torch.equal(noisy.y_train, digits.with_label_noise(fraction, seed=4).y_train)
        assert int(noisy.y_train[wrong].min()) >= 0 and int(noisy.y_train.max()) < 10


@pytest.mark.parametrize("fraction", [-0.1, 1.0, True, "0.2"])
def test_label_noise_outside_zero_one_is_refused(digits, fraction):
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\)"):
        digits.with_label_noise(fraction)
