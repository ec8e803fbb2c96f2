"""Atomic writes: a file is either its old self or completely new, never half written.

Checkpoints, masks, run settings and grades are written to a temporary name in the
same folder and moved into place with ``os.replace``, so an interrupted run (Ctrl-C, a
killed kernel, a full disk) never leaves a truncated file that a resumed run would trust.
A file broken some other way is named when it is read (:func:`load_torch`), and a run
folder's record of what made it is checked before it is resumed (:func:`ensure_record`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def save_torch(obj: object, path: str | Path) -> Path:
    """``torch.save(obj, path)``, atomically."""
    path = Path(path)
    torch.save(obj, _tmp(path))
    os.replace(_tmp(path), path)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path``, atomically."""
    path = Path(path)
    _tmp(path).write_text(text, encoding="utf-8")
    os.replace(_tmp(path), path)
    return path


def load_torch(path: str | Path, map_location: str | torch.device = "cpu", weights_only: bool = False) -> object:
    """``torch.load(path)`` of a checkpoint the course wrote; a broken file is named in the error.

    ``weights_only=True`` reads tensors and plain containers only (masks); checkpoints
    hold the course's own objects (masks, settings) and need ``False``.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as err:  # truncated zip, garbage bytes, a pickle of something else
        raise ValueError(f"checkpoint {path} cannot be read ({type(err).__name__}: {str(err)[:200]}); it is "
                         "truncated or corrupted: delete it to compute it again") from err


def differences(found: object, wanted: object, prefix: str = "") -> dict[str, tuple]:
    """Dotted key → (found, wanted) for every leaf of two nested dicts that differs."""
    if isinstance(found, dict) and isinstance(wanted, dict):
        out = {}
        for key in sorted(set(found) | set(wanted), key=str):
            out |= differences(found.get(key), wanted.get(key), f"{prefix}{key}.")
        return out
    return {} if found == wanted else {prefix.rstrip("."): (found, wanted)}


def ensure_record(path: str | Path, wanted: dict) -> None:
    """Write ``wanted`` (JSON) to ``path``, or check that the record already there is the same.

    A run folder records what determines its results (settings, data, library version);
    resuming with anything else would mix results of two experiments.

    Raises:
        ValueError: naming the record and every difference as (in the folder, now).
    """
    path = Path(path)
    wanted = json.loads(json.dumps(wanted))  # tuples → lists, as they will be read back
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(wanted, indent=1))
        return
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete the run folder to start over") from err
    diff = differences(found, wanted)
    if diff:
        raise ValueError(f"run folder {path.parent} was made with other settings or data; {path.name} "
                         f"differs (in the folder, now): {diff}; use another folder, or delete this one "
                         "to start over. Nothing was changed.")
