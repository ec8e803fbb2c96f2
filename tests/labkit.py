"""Helpers of the grading tests: release a lab, and write submissions from its solutions."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from coursekit import cli
from coursekit.tooling.grading import labfmt


class Lab:
    """A lab folder (``<name>/<name>.ipynb`` with solutions, ``hidden_tests.py``)."""

    def __init__(self, folder: Path):
        self.folder, self.name = folder, folder.name

    def release(self, out: Path) -> tuple[Path, Path]:
        """Release into ``out``: (student notebook, grader bundle)."""
        assert cli.main(["release", str(self.folder), "-o", str(out), "--cell-timeout", "60"]) == 0
        return out / self.name / f"{self.name}.ipynb", out / f"{self.name}-grader"

    def solutions(self) -> dict[str, str]:
        """Answer cell id → the solution's source."""
        source = nbformat.read(self.folder / f"{self.name}.ipynb", as_version=4)
        return {labfmt.cell_id(c): c.source for c in source.cells if labfmt.role(c).get("question")
                and not labfmt.role(c).get("locked")}

    def solved(self, student_nb, answers=("q1", "q2", "q3", "q4")):
        """A copy of the student notebook with the solution's answers to ``answers``."""
        nb = copy.deepcopy(student_nb)
        for cid, source in self.solutions().items():
            if cid.split("-")[0] in answers:
                answer(nb, cid, source)
        return nb

    def broken(self, student_nb, cid: str, prefix: str):
        """The solved notebook with ``prefix`` run first in answer cell ``cid``."""
        nb = self.solved(student_nb)
        answer(nb, cid, prefix + self.solutions()[cid])
        return nb


def with_cell(nb, source: str, at: int | None = None):
    """A copy of ``nb`` with a code cell of ``source`` inserted at ``at`` (default: the end)."""
    nb = copy.deepcopy(nb)
    nb.cells.insert(len(nb.cells) if at is None else at, new_code_cell(source))
    return nb


def answer(nb, cid: str, source: str) -> None:
    """Set the source of the cell with id ``cid``."""
    (cell,) = [c for c in nb.cells if labfmt.cell_id(c) == cid]
    cell.source = source
