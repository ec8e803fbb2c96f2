"""Hands nbval the expected outputs of ``# NBVAL_CHECK_OUTPUT`` cells.

Notebooks are committed without outputs (DESIGN.md), so those expected outputs
are recorded in ``tests/expected_outputs/`` (``coursekit record-outputs``) and put
back into each checked cell here, before nbval compares.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from coursekit.tooling.notebooks import CHECK_MARK, expected_outputs

MISSING = ("no expected output recorded for this cell: run "
           "`coursekit record-outputs {path}` and commit tests/expected_outputs/")


def pytest_collection_modifyitems(items):
    cache: dict[Path, dict] = {}
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is None or CHECK_MARK not in cell.get("source", ""):
            continue
        path = Path(item.fspath)
        expected = cache.setdefault(path, expected_outputs(path))
        cell.outputs = nbformat.from_dict(expected.get(cell.get("id"), [
            {"output_type": "stream", "name": "stdout", "text": MISSING.format(path=path)}]))
        cell.execution_count = 1  # nbval compares only cells it believes were run
