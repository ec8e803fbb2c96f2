"""Data sets as normalised tensors on the device, and minibatches by index permutation.

The course's data sets are small enough to live in (GPU) memory whole, so a
minibatch is ``x[perm[i:i + batch_size]]`` on the device: no ``DataLoader``, no
worker processes, no host-to-device copy per step (``benchmarks/data_pipeline.py``
measures the difference).

======================  =====================================================
name                    source
======================  =====================================================
``fashion_mnist``       IDX files: ``$COURSEKIT_DATA``, ``data/``, Debian's
                        ``dataset-fashion-mnist``, or a verified download
``mnist``               IDX files you place in ``data/mnist/``
``mnist1d``             generated locally by the ``mnist1d`` package, cached
``digits``              scikit-learn's 8×8 digits (ships with the package)
======================  =====================================================
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from coursekit.core import debian, idx
from coursekit.core.runtime import check_fields, get_device, preset

DATA_ENV = "COURSEKIT_DATA"
REPO_DATA = Path(__file__).resolve().parents[2] / "data"
DATASETS = ("fashion_mnist", "mnist", "mnist1d", "digits")
SPLITS = ("train", "val", "test")
IDX_PARTS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class IdxSource:
    """Where an IDX data set may be found or fetched, and how to check it.

    ``sha256`` maps each part of :data:`IDX_PARTS` to the SHA-256 of its
    uncompressed payload (see :mod:`coursekit.core.idx`); without it there is no download.
    """

    name: str
    classes: tuple[str, ...]
    system_dir: Path | None = None
    apt_package: str | None = None
    mirrors: tuple[str, ...] = ()
    sha256: dict[str, str] = field(default_factory=dict)


FASHION_MNIST = IdxSource(
    name="fashion_mnist",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    system_dir=Path("/usr/share/datasets/fashion-mnist"),
    apt_package="dataset-fashion-mnist",
    mirrors=("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
             "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    sha256={
        "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
)
MNIST = IdxSource(name="mnist", classes=tuple(str(d) for d in range(10)))
IDX_SOURCES = {s.name: s for s in (FASHION_MNIST, MNIST)}


@dataclass(frozen=True)
class Sizes:
    """Caps on the number of examples per split (``None``: all there are)."""

    train: int | None
    val: int
    test: int | None

    def __post_init__(self) -> None:
        check_fields(self)
        for split in SPLITS:
            value = getattr(self, split)
            if value is not None and value < 1:
                allowed = "a positive int" + (" or None" if split != "val" else "")
                raise ValueError(f"Sizes.{split} must be {allowed}, got {value}")


SIZES = {
    "ci": Sizes(train=2_000, val=500, test=1_000),
    "cpu": Sizes(train=20_000, val=5_000, test=10_000),
    "gpu": Sizes(train=None, val=5_000, test=None),
}


# --------------------------------------------------------------------------- finding files

def cache_dir() -> Path:
    """Where generated or downloaded data is written: ``$COURSEKIT_DATA``, else ``data/``."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    if REPO_DATA.is_dir():
        return REPO_DATA
    return Path.home() / ".cache" / "coursekit"


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of {DATASETS}")


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _candidate_dirs(source: IdxSource) -> list[Path]:
    dirs = []
    if os.environ.get(DATA_ENV):
        dirs.append(Path(os.environ[DATA_ENV]) / source.name)
    dirs.append(REPO_DATA / source.name)
    if source.system_dir is not None:
        dirs.append(source.system_dir)
    return dirs


def locate(name: str) -> Path | None:
    """The folder holding all four IDX files of ``name``, or ``None`` when there is none."""
    _check_name(name)
    if name not in IDX_SOURCES:
        raise ValueError(f"{name!r} is not stored as IDX files; IDX data sets: {tuple(IDX_SOURCES)}")
    for folder in _candidate_dirs(IDX_SOURCES[name]):
        if all(_idx_file(folder, stem) for stem in IDX_PARTS.values()):
            return folder
    return None


def download_idx(source: IdxSource, dest: Path, mirrors: tuple[str, ...] | None = None) -> Path:
    """Download the four IDX files of ``source`` into ``dest``, each checked by SHA-256."""
    if not source.sha256:
        raise FileNotFoundError(f"no checksums known for {source.name!r}, so it cannot be downloaded "
                                f"safely; put its four IDX files ({', '.join(IDX_PARTS.values())}) "
                                f"in {REPO_DATA / source.name} or ${DATA_ENV}/{source.name}")
    errors = []
    for part, stem in IDX_PARTS.items():
        if _idx_file(dest, stem):
            continue
        for base in mirrors or source.mirrors:
            try:
                idx.download(base + stem + ".gz", dest / f"{stem}.gz", source.sha256[part])
                break
            except idx.ChecksumError:
                raise
            except OSError as err:
                errors.append(f"{base}: {err}")
        else:
            raise FileNotFoundError(f"could not download {stem}.gz for {source.name!r}: "
                                    + "; ".join(errors))
    return dest


def ensure(name: str, allow_apt: bool = True, allow_download: bool = True) -> Path:
    """Make sure ``name`` is on this machine; return where it is.

    IDX data sets: found where :func:`locate` looks, else installed from the Debian
    package (as root with apt), else downloaded and verified. ``mnist1d``: generated
    and cached. ``digits``: ships with scikit-learn; its split is cached (:func:`_digits_cache`).
    """
    _check_name(name)
    if name == "digits":
        return _digits_cache()
    if name == "mnist1d":
        return _mnist1d_cache()
    source = IDX_SOURCES[name]
    found = locate(name)
    if found is not None:
        return found
    if allow_apt and source.apt_package and debian.apt_install(source.apt_package):
        found = locate(name)
        if found is not None:
            return found
    if allow_download and source.sha256:
        return download_idx(source, cache_dir() / name)
    tried = ", ".join(str(d) for d in _candidate_dirs(source))
    how = (f"run `coursekit data fetch {name}`, or place" if source.sha256 and not allow_download
           else "place")
    raise FileNotFoundError(f"data set {name!r} not found (looked in {tried}); {how} its four "
                            f"IDX files ({', '.join(IDX_PARTS.values())}, optionally .gz) "
                            f"in {REPO_DATA / name} or ${DATA_ENV}/{name}")


# --------------------------------------------------------------------------- raw arrays

MNIST1D_SAMPLES = 5_000  # the size of the original MNIST-1D data set (4000 train / 1000 test)


def _mnist1d_cache(num_samples: int = MNIST1D_SAMPLES, seed: int = 42) -> Path:
    """Generate MNIST-1D (Greydanus 2020) with the ``mnist1d`` package and cache it as .npz."""
    path = cache_dir() / "mnist1d" / f"mnist1d_n{num_samples}_seed{seed}.npz"
    if path.is_file():
        return path
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    state = np.random.get_state()  # noqa: NPY002 -- make_dataset reseeds the global generator
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, x=d["x"], y=d["y"], x_test=d["x_test"], y_test=d["y_test"])
    os.replace(tmp, path)
    return path


def _digits_cache() -> Path:
    """scikit-learn's digits, split 75/25 (stratified, ``random_state=0``), cached as .npz.

    The split is made once, by scikit-learn (``coursekit data fetch`` does it in ``make setup``); a
    kernel that loads the digits then reads 300 kB instead of importing scikit-learn (about a second,
    paid by every graded submission of a lab on the digits).
    """
    path = cache_dir() / "digits" / "digits_split.npz"
    if not path.is_file():
        arrays = _split_digits()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    return path


def _split_digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(digits.images[:, None], digits.target, test_size=0.25,
                                              random_state=0, stratify=digits.target)
    return {"x": x_tr, "y": y_tr, "x_test": x_te, "y_test": y_te}


def _raw(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(x_train, y_train, x_test, y_test, classes) as NumPy arrays, x with a channel axis."""
    if name in IDX_SOURCES:
        folder = ensure(name, allow_apt=False, allow_download=False)
        parts = {k: idx.read_idx(_idx_file(folder, stem)) for k, stem in IDX_PARTS.items()}
        return (parts["train_images"][:, None], parts["train_labels"],
                parts["test_images"][:, None], parts["test_labels"], IDX_SOURCES[name].classes)
    if name == "mnist1d":
        d = np.load(_mnist1d_cache())
        return d["x"][:, None], d["y"], d["x_test"][:, None], d["y_test"], tuple(map(str, range(10)))
    try:
        d = np.load(_digits_cache())
    except OSError:  # no cache and nowhere to write one (a read-only sandbox): split again
        d = _split_digits()
    return d["x"], d["y"], d["x_test"], d["y_test"], tuple(map(str, range(10)))


# --------------------------------------------------------------------------- tensors

@dataclass(frozen=True)
class Dataset:
    """A data set as tensors: ``x_*`` float32 of shape (N, C, ...), ``y_*`` int64 of shape (N,)."""

    name: str
    classes: tuple[str, ...]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.classes, tuple) or len(self.classes) < 2:
            raise ValueError(f"data set {self.name!r}: classes must be a tuple of at least 2 names, got {self.classes!r}")
        shape, device = self.x_train.shape[1:], self.x_train.device
        for split in SPLITS:
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            where = f"data set {self.name!r}, {split} split"
            if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
                raise ValueError(f"{where}: inputs and labels must be tensors")
            if not x.is_floating_point() or x.shape[1:] != shape or len(x) == 0 or x.device != device:
                raise ValueError(f"{where}: inputs must be a non-empty float tensor of examples shaped like the "
                                 f"training split's {tuple(shape)} on {device}; got {x.dtype} {tuple(x.shape)} "
                                 f"on {x.device}")
            if y.dtype != torch.long or y.shape != (len(x),) or y.device != device:
                raise ValueError(f"{where}: labels must be an int64 tensor of shape ({len(x)},) on {device}, "
                                 f"one per input; got {y.dtype} {tuple(y.shape)} on {y.device}")
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= len(self.classes):
                raise ValueError(f"{where}: labels must lie in 0..{len(self.classes) - 1} (one per class), "
                                 f"got {low}..{high}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. (1, 28, 28)."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of split ``name`` (train, val or test)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def to(self, device: str | torch.device) -> Dataset:
        device = get_device(device)
        moved = {f"{a}_{s}": getattr(self, f"{a}_{s}").to(device) for a in "xy" for s in SPLITS}
        return replace(self, **moved)

    def with_label_noise(self, fraction: float, seed: int = 0) -> Dataset:
        """A copy whose training labels are wrong for exactly ``round(fraction · N)`` examples (He et al. 2022).

        The examples are drawn from ``seed`` without replacement and each gets a class other than
        its own, uniformly at random: the same seed corrupts the same examples the same way.
        Validation and test labels stay clean.
        """
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
            raise ValueError(f"fraction of noisy labels must lie in [0, 1), got {fraction!r}")
        gen = torch.Generator().manual_seed(seed)
        n = len(self.y_train)
        chosen = torch.randperm(n, generator=gen)[: round(fraction * n)]
        shift = torch.randint(1, self.num_classes, (len(chosen),), generator=gen)  # never 0: always another class
        labels = self.y_train.cpu().clone()
        labels[chosen] = (labels[chosen] + shift) % self.num_classes
        return replace(self, y_train=labels.to(self.device))

    def fingerprint(self) -> dict:
        """What identifies these tensors, for a run folder's record (:func:`coursekit.core.files.ensure_record`).

        The name, and per split the number of examples, a hash of the labels in order
        (which catches another split seed, subset or size) and the mean ``|x|`` to 5
        digits (which catches another preprocessing; float noise between machines does not).
        """
        out: dict = {"name": self.name, "input_shape": list(self.input_shape)}
        for split in SPLITS:
            x, y = self.split(split)
            labels = hashlib.sha256(y.cpu().numpy().astype("<i8").tobytes()).hexdigest()[:16]
            out[split] = {"examples": len(y), "labels_sha256": labels,
                          "mean_abs_x": float(f"{x.double().abs().mean().item():.5g}") if len(y) else 0.0}
        return out

    def summary(self) -> pd.DataFrame:
        """One row per split: examples, input shape, classes present, device."""
        return pd.DataFrame([{"split": s, "examples": len(self.split(s)[1]),
                              "input shape": self.input_shape,
                              "classes present": int(self.split(s)[1].unique().numel()),
                              "device": str(self.device)} for s in SPLITS]).set_index("split")


def load(name: str, scale: str | None = None, device: str | torch.device | None = None,
         sizes: Sizes | None = None, split_seed: int = 0) -> Dataset:
    """Load data set ``name`` as normalised tensors on ``device``, sized by ``scale``.

    The validation set is carved out of the official training set by a permutation
    drawn from ``split_seed`` (fixed by default, so every run validates on the same
    examples); ``sizes`` (default: the scale's :data:`SIZES`) caps each split.
    Inputs are standardised with the training split's mean and standard deviation.

    >>> ds = load("digits", scale="ci")
    >>> ds.input_shape, ds.num_classes
    ((1, 8, 8), 10)
    """
    _check_name(name)
    sizes = sizes or preset(SIZES, scale)
    if not isinstance(sizes, Sizes):
        raise ValueError(f"sizes must be a data.Sizes(train=..., val=..., test=...), got {type(sizes).__name__}")
    if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
        raise ValueError(f"split_seed must be a non-negative int, got {split_seed!r}")
    x_tr, y_tr, x_te, y_te, classes = _raw(name)
    rng = np.random.default_rng(split_seed)
    perm = rng.permutation(len(y_tr))
    n_val = min(sizes.val, len(perm) // 5)
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    train_idx = train_idx[: sizes.train] if sizes.train is not None else train_idx
    test_idx = rng.permutation(len(y_te))[: sizes.test] if sizes.test is not None else np.arange(len(y_te))

    x_train = x_tr[train_idx].astype(np.float32)
    mean, std = float(x_train.mean()), float(x_train.std())

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((x.astype(np.float32) - mean) / std)

    ds = Dataset(name=name, classes=classes,
                 x_train=tensor(x_tr[train_idx]), y_train=torch.as_tensor(y_tr[train_idx], dtype=torch.long),
                 x_val=tensor(x_tr[val_idx]), y_val=torch.as_tensor(y_tr[val_idx], dtype=torch.long),
                 x_test=tensor(x_te[test_idx]), y_test=torch.as_tensor(y_te[test_idx], dtype=torch.long))
    return ds.to(get_device(device))


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = True,
            generator: torch.Generator | None = None,
            drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Minibatches ``(x[i], y[i])`` by a permutation of indices drawn on ``x``'s device.

    Args:
        x: inputs, shape (N, ...); y: targets, shape (N,), same device.
        generator: a ``torch.Generator`` on ``x.device`` (one per epoch makes runs repeatable).
        drop_last: skip the final batch when it is smaller than ``batch_size``.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} examples but y has {y.shape[0]}; they must match")
    if x.device != y.device:
        raise ValueError(f"x is on {x.device} but y on {y.device}; put both on one device")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    n = x.shape[0]
    order = (torch.randperm(n, device=x.device, generator=generator) if shuffle
             else torch.arange(n, device=x.device))
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        i = order[start:start + batch_size]
        yield x[i], y[i]
