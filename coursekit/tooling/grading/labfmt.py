"""The lab format: what each cell of a lab notebook is, and the grader bundle.

A lab's **source** notebook marks its cells in ``metadata["coursekit"]``:

==================================  ===============================================
``{"id": "q1-answer", "question": "q1"}``   a student's answer cell (editable); solution
                                            regions between ``### BEGIN SOLUTION`` and
                                            ``### END SOLUTION`` become a stub on release
``{"id": "q1-tests", "locked": true}``      provided text, code or public tests: restored
                                            from the bundle when grading
==================================  ===============================================

and in the notebook's ``metadata["coursekit"]``: ``{"lab": ..., "questions": {"q1":
{"title": ..., "points": 3}, ...}}``. Hidden checks live in ``hidden_tests.py`` beside it
(:mod:`coursekit.tooling.grading.checks`). The ``parameters`` cell (tags) must be locked too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("your answer here")'
_REGION = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*$",
                     re.S | re.M)


def role(cell: nbformat.NotebookNode) -> dict:
    """The cell's ``coursekit`` metadata (empty for a cell a student added)."""
    meta = cell.get("metadata", {}).get("coursekit", {})
    return meta if isinstance(meta, dict) else {}


def cell_id(cell: nbformat.NotebookNode) -> str | None:
    value = role(cell).get("id")
    return value if isinstance(value, str) else None


def strip_solutions(source: str) -> str:
    """Replace every solution region with an indented stub that raises ``NotImplementedError``.

    >>> strip_solutions("def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION\\n")
    'def f():\\n    raise NotImplementedError("your answer here")\\n'
    """
    if source.count(BEGIN) != source.count(END):
        raise ValueError(f"unbalanced solution markers in cell:\n{source[:200]}")
    return _REGION.sub(lambda m: m.group(1) + STUB, source)


def checksum(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


@dataclass
class Template:
    """The released structure of a lab: cells in order with their roles and locked sources."""

    lab: str
    release_id: str
    questions: dict[str, dict]
    cells: list[dict]  # {"id", "kind": "locked"|"answer"|"parameters", "question", "cell_type", "source"}

    def to_json(self) -> dict:
        return {"lab": self.lab, "release_id": self.release_id, "questions": self.questions,
                "cells": self.cells}

    def imports(self) -> set[str]:
        """The top-level modules the locked code cells import (the grader preloads the array libraries)."""
        import ast

        found = set()
        for cell in self.cells:
            if cell["kind"] == "answer" or cell["cell_type"] != "code":
                continue
            try:
                tree = ast.parse(cell["source"])
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
        return found

    @classmethod
    def from_json(cls, data: dict) -> Template:
        return cls(data["lab"], data["release_id"], data["questions"], data["cells"])


def read_source(path: str | Path) -> tuple[nbformat.NotebookNode, Template]:
    """Read a lab's source notebook and check its markup; return it and its template."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("coursekit")
    if not isinstance(meta, dict) or not meta.get("lab") or not meta.get("questions"):
        raise ValueError(f"{path}: notebook metadata needs coursekit.lab and coursekit.questions")
    cells, seen = [], set()
    for index, cell in enumerate(nb.cells):
        r = role(cell)
        cid = cell_id(cell)
        if cid is None:
            raise ValueError(f"{path}: cell {index} has no coursekit.id (every source cell needs one)")
        if cid in seen:
            raise ValueError(f"{path}: duplicated coursekit.id {cid!r}")
        seen.add(cid)
        is_params = "parameters" in cell.metadata.get("tags", [])
        question = r.get("question")
        if question is not None and question not in meta["questions"]:
            raise ValueError(f"{path}: cell {cid!r} answers unknown question {question!r}")
        kind = "parameters" if is_params else ("answer" if question and not r.get("locked") else "locked")
        if kind == "answer" and cell.cell_type != "code":
            raise ValueError(f"{path}: answer cell {cid!r} must be a code cell")
        cells.append({"id": cid, "kind": kind, "question": question, "cell_type": cell.cell_type,
                      "source": cell.source if kind != "answer" else strip_solutions(cell.source)})
    if not any(c["kind"] == "parameters" for c in cells):
        raise ValueError(f"{path}: no cell tagged 'parameters'")
    release_id = checksum(json.dumps(cells, sort_keys=True))[:12]
    return nb, Template(meta["lab"], release_id, meta["questions"], cells)


def student_notebook(source: nbformat.NotebookNode, template: Template) -> nbformat.NotebookNode:
    """The released notebook: solutions stubbed, outputs cleared, release id recorded."""
    nb = copy.deepcopy(source)
    for cell, spec in zip(nb.cells, template.cells, strict=True):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.source = spec["source"] if spec["kind"] == "answer" else cell.source
        if spec["kind"] != "answer":
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
    nb.metadata["coursekit"] = {**nb.metadata["coursekit"], "release_id": template.release_id}
    return nb
