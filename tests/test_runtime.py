import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from coursekit import runtime


def test_device_automatic_and_explicit():
    assert runtime.get_device("cpu") == torch.device("cpu")
    auto = runtime.get_device()
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)


@pytest.mark.parametrize("bad", ["tpu", "gpu", 3, "cuda:x"])
def test_unknown_device_is_refused(bad):
    with pytest.raises(ValueError, match="expected one of"):
        runtime.get_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_named():
    with pytest.raises(ValueError, match="'cuda' is not available"):
        runtime.get_device("cuda")


def test_scale_from_argument_then_environment_then_hardware(monkeypatch):
    monkeypatch.setenv(runtime.SCALE_ENV, "cpu")
    assert runtime.resolve_scale("gpu") == "gpu"
    assert runtime.resolve_scale() == "cpu"
    monkeypatch.delenv(runtime.SCALE_ENV)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.resolve_scale() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.resolve_scale() == "gpu"


def test_bad_scale_names_its_source(monkeypatch):
    with pytest.raises(ValueError, match=r"'huge' \(from argument\).*'ci', 'cpu', 'gpu'"):
        runtime.resolve_scale("huge")
    monkeypatch.setenv(runtime.SCALE_ENV, "tiny")
    with pytest.raises(ValueError, match=r"COURSEKIT_SCALE"):
        runtime.resolve_scale()


def test_preset_needs_every_scale():
    assert runtime.preset({"ci": 1, "cpu": 2, "gpu": 3}, "cpu") == 2
    with pytest.raises(ValueError, match="lacks scales"):
        runtime.preset({"ci": 1}, "ci")


@dataclass(frozen=True)
class _Knobs:
    epochs: int
    lr: float = 0.1


def test_settings_for_applies_only_given_overrides():
    table = {"ci": _Knobs(1), "cpu": _Knobs(5), "gpu": _Knobs(50)}
    assert runtime.settings_for(table, "cpu", epochs=None, lr=0.5) == _Knobs(5, 0.5)
    with pytest.raises(ValueError, match="unknown settings"):
        runtime.settings_for(table, "ci", epoch=3)


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()  # noqa: NPY002

    runtime.seed_everything(7)
    first = draw()
    runtime.seed_everything(7)
    assert draw() == first
    with pytest.raises(ValueError, match="non-negative int"):
        runtime.seed_everything(-1)


def test_setup_prints_one_line(capsys):
    rt = runtime.setup("ci", seed=3, device="cpu")
    line = capsys.readouterr().out.strip()
    assert rt.scale == "ci" and rt.seed == 3
    assert "\n" not in line and "scale ci" in line and f"torch {torch.__version__}" in line


def test_run_dir_per_experiment_and_scale(monkeypatch, tmp_path):
    monkeypatch.setenv(runtime.RUNS_ENV, str(tmp_path))
    assert runtime.run_dir("02_lottery", "ci") == tmp_path / "02_lottery" / "ci"
    with pytest.raises(ValueError, match="unknown scale"):
        runtime.run_dir("x", "big")


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with runtime.one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@dataclass(frozen=True)
class _Knobs:
    epochs: int = 2
    lr: float = 0.1
    names: tuple[str, ...] = ("a",)
    seeds: tuple[int, ...] = (0, 1)
    rate: float | None = None

    def __post_init__(self):
        runtime.check_fields(self)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"epochs": 2.5}, "_Knobs.epochs must be int, got 2.5"),
    ({"epochs": True}, "_Knobs.epochs must be int, got True"),
    ({"lr": float("inf")}, "_Knobs.lr must be float, got inf"),
    ({"lr": "0.1"}, "_Knobs.lr must be float, got '0.1'"),
    ({"names": "a"}, r"_Knobs.names must be tuple\[str, \.\.\.\] \(e.g. \('a',\)\), got 'a'"),
    ({"seeds": (0, 1.5)}, r"_Knobs.seeds must be tuple\[int, \.\.\.\], got \(0, 1.5\)"),
    ({"rate": "x"}, r"_Knobs.rate must be float \| None, got 'x'"),
])
def test_settings_fields_are_checked_against_their_types(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _Knobs(**kwargs)


def test_checked_fields_keep_lists_as_tuples_and_numpy_ints_as_ints():
    knobs = _Knobs(names=["a", "b"], seeds=[np.int64(3)], epochs=np.int64(4), rate=1)
    assert knobs.names == ("a", "b") and knobs.seeds == (3,) and type(knobs.epochs) is int and knobs.rate == 1
    assert type(knobs.seeds[0]) is int  # so a run folder can record it as JSON


def test_seeds_from_counts_the_presets_seeds_from_the_first():
    table = {"ci": _Knobs(seeds=(0,)), "cpu": _Knobs(seeds=(0, 1)), "gpu": _Knobs(seeds=(0, 1, 2, 3))}
    assert runtime.seeds_from(5, table, "ci") == (5,) and runtime.seeds_from(2, table, "gpu") == (2, 3, 4, 5)
