"""``coursekit release``: a lab's source notebook → a student notebook and a grader bundle.

Before anything is written the release is tested, as otter-grader does: the source
notebook (with solutions) must earn full marks from its own hidden checks and run its
public tests without error, and the blank student notebook must earn no points. The
evidence the solution produces is stored in the bundle as the reference the checks
compare against, and the seconds each of its cells took, which set the grader's per-cell
time limits. Students get ``OUT/<lab>/<lab>.ipynb``; instructors keep
``OUT/<lab>-grader/`` (bundle.json and hidden_tests.py) away from them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import nbformat

from coursekit.tooling.grading import checks as checks_mod
from coursekit.tooling.grading import sandbox
from coursekit.tooling.grading.grade import (
    BUNDLE_FILE,
    HIDDEN_FILE,
    Bundle,
    Limits,
    grade_notebook,
    graded,
    probe_outputs,
)
from coursekit.tooling.grading.labfmt import cell_id, read_source, role, student_notebook


def _public_test_errors(executed: nbformat.NotebookNode | None) -> list[str]:
    errors = []
    for cell in executed.cells if executed is not None else []:
        cid = cell.get("metadata", {}).get("coursekit", {}).get("id", "")
        if cid.startswith("probe:"):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"cell {cid!r}: {out.get('ename')}: {out.get('evalue', '')[:200]}")
    return errors


def release(lab_dir: str | Path, out: str | Path, limits: Limits | None = None) -> tuple[Path, Path]:
    """Test and release the lab in ``lab_dir``; return (student notebook, grader bundle folder)."""
    lab_dir, out = Path(lab_dir), Path(out)
    source_path = lab_dir / f"{lab_dir.name}.ipynb"
    if not source_path.is_file():
        raise FileNotFoundError(f"no source notebook {source_path} (a lab folder holds <folder name>.ipynb)")
    source, template = read_source(source_path)
    checks = checks_mod.load(lab_dir / HIDDEN_FILE)
    for q, spec in template.questions.items():
        points = sum(c.points for c in checks if c.question == q)
        if points != spec.get("points"):
            raise ValueError(f"question {q}: notebook metadata gives {spec.get('points')} points but "
                             f"its hidden checks add up to {points}")
    unknown = {c.question for c in checks} - set(template.questions)
    if unknown:
        raise ValueError(f"hidden checks for unknown questions {sorted(unknown)}")
    limits = limits or Limits()
    sandboxed = sandbox.problem() is None  # run as the grader will, where the sandbox works
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        tmp = Path(tmp)
        staging = tmp / "bundle"
        staging.mkdir()
        shutil.copy(lab_dir / HIDDEN_FILE, staging / HIDDEN_FILE)
        # 1. the solution: its evidence becomes the reference, then it must earn full marks
        (staging / BUNDLE_FILE).write_text(json.dumps({"template": template.to_json(), "reference": {}}))
        work = tmp / "solution"
        work.mkdir()
        unjudged = Bundle.load(staging)
        grade, executed = grade_notebook(unjudged, nbformat.writes(source).encode(), work, limits,
                                         sandboxed=sandboxed)
        reference, first_seconds = _evidence(unjudged, executed), _cell_seconds(executed)
        (staging / BUNDLE_FILE).write_text(json.dumps({"template": template.to_json(),
                                                       "reference": reference}, indent=1))
        bundle = Bundle.load(staging)
        work = tmp / "solution-judged"
        work.mkdir()
        grade, executed = grade_notebook(bundle, nbformat.writes(source).encode(), work, limits,
                                         sandboxed=sandboxed)
        problems = [f"{c['check']}: {c['message']}" for q in grade["questions"].values()
                    for c in q["checks"] if not c["passed"]]
        problems += _public_test_errors(executed)
        problems += [i["reason"] for i in grade["incidents"]]
        seconds = {cid: max(t, first_seconds.get(cid, 0.0)) for cid, t in _cell_seconds(executed).items()}
        (staging / BUNDLE_FILE).write_text(json.dumps({"template": template.to_json(), "reference": reference,
                                                       "cell_seconds": seconds}, indent=1))
        if problems:
            raise ValueError("refusing to release: the solution does not earn full marks:\n  "
                             + "\n  ".join(problems))
        # 2. the blank release must earn nothing
        student = student_notebook(source, template)
        work = tmp / "blank"
        work.mkdir()
        blank, _ = grade_notebook(bundle, nbformat.writes(student).encode(), work, limits, sandboxed=sandboxed)
        if not graded(blank):
            raise ValueError(f"refusing to release: the blank notebook could not be run ({blank['status']})")
        if blank["total"] > 0:
            earned = [c["check"] for q in blank["questions"].values() for c in q["checks"] if c["passed"]]
            raise ValueError(f"refusing to release: the blank notebook passes checks {earned}; "
                             "they test nothing the student writes")
        # 3. write both, replacing an earlier release of this lab
        student_dir, bundle_dir = out / template.lab, out / f"{template.lab}-grader"
        for folder in (student_dir, bundle_dir):
            if folder.exists():
                shutil.rmtree(folder)
        student_dir.mkdir(parents=True)
        nbformat.write(student, student_dir / f"{template.lab}.ipynb")
        shutil.copytree(staging, bundle_dir)
    return student_dir / f"{template.lab}.ipynb", bundle_dir


def _cell_seconds(executed: nbformat.NotebookNode | None) -> dict[str, float]:
    """Cell id → seconds the solution's cell ran (the driver's record); the grader's limits scale with them.

    The release runs the solution twice and keeps the longer time of each cell.
    """
    seconds = {}
    for cell in executed.cells if executed is not None else []:
        cid, duration = cell_id(cell), role(cell).get("seconds")
        if cid and isinstance(duration, (int, float)):
            seconds[cid] = round(float(duration), 3)
    return seconds


def _evidence(bundle: Bundle, executed: nbformat.NotebookNode | None) -> dict[str, object]:
    """Check name → the evidence the solution's probe sent (parsed as the grader parses it)."""
    outputs = probe_outputs(executed)
    found = {}
    for check in bundle.checks:
        status, value = checks_mod.read_evidence(outputs.get(check.name, []), check, None)
        if status == "ok":
            found[check.name] = value
    return found
