"""Where and at what size the course runs: device, seeding and the scale presets.

Every notebook starts with ``rt = setup(SCALE, SEED)``, which resolves the scale,
seeds every generator, picks the device and prints one line saying so.

Scales (see ``docs/architecture.md``):

* ``ci``  -- tests on 2 CPU cores, seconds per notebook;
* ``cpu`` -- a student's laptop, minutes per notebook;
* ``gpu`` -- one GPU, the paper-sized experiment.
"""

from __future__ import annotations

import math
import numbers
import os
import random
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch

import coursekit

SCALES = ("ci", "cpu", "gpu")
DEVICES = ("cuda", "mps", "cpu")
SCALE_ENV = "COURSEKIT_SCALE"
RUNS_ENV = "COURSEKIT_RUNS"

T = TypeVar("T")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def get_device(name: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``name`` if given, else cuda → mps → cpu.

    >>> get_device("cpu")
    device(type='cpu')
    """
    if name is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICES:
        raise ValueError(f"unknown device {name!r}; expected one of {DEVICES} or None (automatic)")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": _mps_available(),
    }
    if not available.get(device.type, False):
        raise ValueError(f"device {device.type!r} is not available on this machine; "
                         f"available: {[d for d in DEVICES if available[d]]}")
    return device


def resolve_scale(scale: str | None = None) -> str:
    """The scale to run at: ``scale`` if given, else ``$COURSEKIT_SCALE``, else the hardware.

    The hardware default is ``gpu`` when CUDA is available, otherwise ``cpu``.
    """
    source = "argument"
    if scale is None:
        scale, source = os.environ.get(SCALE_ENV) or None, f"${SCALE_ENV}"
    if scale is None:
        return "gpu" if torch.cuda.is_available() else "cpu"
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r} (from {source}); expected one of {SCALES}")
    return scale


def preset(table: Mapping[str, T], scale: str | None = None) -> T:
    """Pick the entry of ``table`` (scale name → settings) for ``scale`` (resolved as above).

    >>> preset({"ci": 1, "cpu": 10, "gpu": 100}, "ci")
    1
    """
    missing = [s for s in SCALES if s not in table]
    if missing:
        raise ValueError(f"preset table lacks scales {missing}; every table needs {SCALES}")
    return table[resolve_scale(scale)]


def settings_for(table: Mapping[str, T], scale: str | None = None, **overrides) -> T:
    """The scale's preset settings (a frozen dataclass) with the non-``None`` overrides applied.

    Notebook parameters default to ``None`` ("take the scale's value"), so
    ``settings_for(PRESETS, SCALE, epochs=EPOCHS)`` gives the preset unless the
    notebook (or papermill) set ``EPOCHS``.
    """
    base = preset(table, scale)
    if not is_dataclass(base):
        raise ValueError(f"preset entries must be dataclasses, got {type(base).__name__}")
    known = {f.name for f in fields(base)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown settings {unknown}; {type(base).__name__} has {sorted(known)}")
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def seeds_from(first: int, table: Mapping[str, Any], scale: str | None = None) -> tuple[int, ...]:
    """As many seeds as the scale's preset runs, counted from ``first``.

    A notebook whose experiment runs several seeds passes ``SEEDS`` if set, else
    ``seeds_from(SEED, PRESETS, scale)``, so that ``SEED`` moves every run.
    """
    return tuple(range(first, first + len(preset(table, scale).seeds)))


def _conforms(value: Any, kind: Any) -> tuple[bool, Any]:
    """Whether ``value`` is of the annotated ``kind`` (and the value to keep: lists become tuples)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            ok, kept = _conforms(value, option)
            if ok:
                return True, kept
        return False, value
    if kind is type(None):
        return value is None, value
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
        return ok, int(value) if ok else value
    if kind is float:
        return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
                and math.isfinite(value)), value
    if kind is str:
        return isinstance(value, str), value
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False, value
        kinds = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(kinds) != len(value):
            return False, value
        checked = [_conforms(v, k) for v, k in zip(value, kinds, strict=True)]
        return all(ok for ok, _ in checked), tuple(kept for _, kept in checked)
    return True, value  # other kinds (mappings, classes) are the class's own business


def check_fields(settings: Any) -> None:
    """Check every field of a settings dataclass against its type annotation.

    A string where a tuple of names belongs, a float where an int belongs, ``True``
    for a number, NaN or infinity: each raises a ``ValueError`` naming the field, what
    it got and what it takes, before anything trains. Lists given for tuples are kept
    as tuples. Settings classes call it first in ``__post_init__``.
    """
    hints = typing.get_type_hints(type(settings))
    for f in fields(settings):
        value = getattr(settings, f.name)
        ok, kept = _conforms(value, hints[f.name])
        if not ok:
            kind = hints[f.name]
            wanted = kind.__name__ if isinstance(kind, type) else str(kind).replace("typing.", "")
            hint = f" (e.g. ({value!r},))" if isinstance(value, str) and "tuple" in wanted else ""
            raise ValueError(f"{type(settings).__name__}.{f.name} must be {wanted}{hint}, got {value!r}")
        object.__setattr__(settings, f.name, kept)


def run_dir(experiment: str, scale: str) -> Path:
    """Where an experiment keeps its checkpoints: ``$COURSEKIT_RUNS`` or ``runs/`` in the repository.

    One folder per experiment and scale, so a notebook re-run at the same scale resumes
    (or reuses) its finished rounds instead of training them again.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")
    root = Path(os.environ.get(RUNS_ENV) or Path(__file__).resolve().parents[2] / "runs")
    return root / experiment / scale


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (all devices)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- seeding the global generator is the point
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Runtime:
    """What a notebook runs on: the device, the scale and the seed."""

    device: torch.device
    scale: str
    seed: int

    def describe(self) -> str:
        threads = f", {torch.get_num_threads()} threads" if self.device.type == "cpu" else ""
        gpu = f" ({torch.cuda.get_device_name(self.device)})" if self.device.type == "cuda" else ""
        return (f"coursekit {coursekit.__version__} | torch {torch.__version__} | "
                f"device {self.device.type}{gpu}{threads} | scale {self.scale} | seed {self.seed}")


def setup(scale: str | None = None, seed: int = 0, device: str | None = None,
          verbose: bool = True) -> Runtime:
    """Resolve scale and device, seed everything, and print one line saying so.

    Also lets pandas show table cells whole (titles, paper lists).

    The first code cell of every notebook calls this with its ``SCALE`` and ``SEED``
    parameters.
    """
    rt = Runtime(device=get_device(device), scale=resolve_scale(scale), seed=seed)
    seed_everything(seed)
    pd.set_option("display.max_colwidth", 120)  # titles and paper lists are read whole
    if verbose:
        print(rt.describe())
    return rt


@contextmanager
def one_thread(device: str | torch.device | None = None) -> Iterator[None]:
    """Run torch on one CPU thread inside the block, then restore the thread count.

    Tiny models and small LAPACK calls gain nothing from a second thread and, on a busy
    2-core machine, lose a lot to waiting for it (a 64×288 SVD: 1.3 s on two threads,
    2 ms on one; the 12-bit network of lecture 04 runs several times faster; lecture 04's
    critical-period sweep took over 120 s instead of 20 with two threads per test worker).
    With a ``device`` other than the CPU, nothing changes.
    """
    if device is not None and torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
