"""Atomic writes: a file is either its old self or completely new, never half written.

Checkpoints, masks, run settings and grades are written to a temporary name in the
same folder and moved into place with ``os.replace``, so an interrupted run (Ctrl-C, a
killed kernel, a full disk) never leaves a truncated file that a resumed run would trust.
"""

from __future__ import annotations

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
