"""Grading throughput of lab 01 with ``-j 2``, in the sandbox and without it, side by side.

Lab 01 is released once; the submissions are the solution with one answer removed in turn
(so they differ and each runs every check). They are graded in rounds of ``BATCH``, each
round once in the bubblewrap sandbox and once with ``--no-sandbox``, alternating which
goes first, so both see the same machine. Last line (JSON): seconds per submission for
each and their ratio ``sandbox_over_none`` (release time not included).
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from pathlib import Path

import nbformat

from coursekit.tooling.course import LABS
from coursekit.tooling.grading import labfmt
from coursekit.tooling.grading.grade import grade_batch
from coursekit.tooling.grading.release import release

ROUNDS, BATCH, JOBS = 4, 4, 2


def main() -> None:
    lab = LABS / "lab01_lottery"
    source = nbformat.read(lab / "lab01_lottery.ipynb", as_version=4)
    answers = {labfmt.cell_id(c): c.source for c in source.cells
               if labfmt.role(c).get("question") and not labfmt.role(c).get("locked")}
    seconds = {True: 0.0, False: 0.0}
    totals = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        student_path, bundle = release(lab, tmp / "release")
        student = nbformat.read(student_path, as_version=4)
        for r in range(ROUNDS):
            subs = tmp / f"round{r}"
            subs.mkdir()
            for i in range(BATCH):
                nb = copy.deepcopy(student)
                skip = sorted(answers)[(r * BATCH + i) % len(answers)]
                for cell in nb.cells:
                    cid = labfmt.cell_id(cell)
                    if cid in answers and cid != skip:
                        cell.source = answers[cid]
                nbformat.write(nb, subs / f"student{i:02d}.ipynb")
            for sandboxed in (True, False) if r % 2 == 0 else (False, True):
                start = time.perf_counter()
                book = grade_batch(bundle, subs, tmp / f"grades{r}-{sandboxed}", jobs=JOBS,
                                   progress=False, sandboxed=sandboxed)
                seconds[sandboxed] += time.perf_counter() - start
                totals[sandboxed] += book["total"].tolist()
    assert totals[True] == totals[False], "the sandbox changed a score"
    n = ROUNDS * BATCH
    print(f"{n} submissions each way, -j {JOBS}: sandbox {seconds[True]:.1f} s, none {seconds[False]:.1f} s")
    print(json.dumps({"seconds_per_submission_sandbox": round(seconds[True] / n, 2),
                      "seconds_per_submission_none": round(seconds[False] / n, 2),
                      "sandbox_over_none": round(seconds[True] / seconds[False], 3),
                      "jobs": JOBS, "submissions": n}))


if __name__ == "__main__":
    main()
