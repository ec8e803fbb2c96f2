"""Grading throughput: lab 01 released once, 20 submissions graded with ``-j 2``.

The submissions are the solution with one answer removed in turn (so they differ and
each runs every check). Last line: ``{"seconds_per_submission": x}`` (wall time of the
whole batch over 20; release time not included).
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from pathlib import Path

import nbformat

from coursekit.course import LABS
from coursekit.grading import labfmt
from coursekit.grading.grade import grade_batch
from coursekit.grading.release import release

N, JOBS = 20, 2


def main() -> None:
    lab = LABS / "lab01_lottery"
    source = nbformat.read(lab / "lab01_lottery.ipynb", as_version=4)
    answers = {labfmt.cell_id(c): c.source for c in source.cells
               if labfmt.role(c).get("question") and not labfmt.role(c).get("locked")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        student_path, bundle = release(lab, tmp / "release")
        student = nbformat.read(student_path, as_version=4)
        subs = tmp / "submissions"
        subs.mkdir()
        for i in range(N):
            nb = copy.deepcopy(student)
            skip = sorted(answers)[i % len(answers)]
            for cell in nb.cells:
                cid = labfmt.cell_id(cell)
                if cid in answers and cid != skip:
                    cell.source = answers[cid]
            nbformat.write(nb, subs / f"student{i:02d}.ipynb")
        start = time.perf_counter()
        book = grade_batch(bundle, subs, tmp / "grades", jobs=JOBS, progress=True)
        seconds = time.perf_counter() - start
    print(book[["student", "total"]].to_string(index=False))
    print(f"{N} submissions, -j {JOBS}: {seconds:.1f} s")
    print(json.dumps({"seconds_per_submission": round(seconds / N, 2), "jobs": JOBS,
                      "submissions": N}))


if __name__ == "__main__":
    main()
