"""``coursekit grade``: grade a folder of submissions against a grader bundle.

For each submission, in its own process (inside the bubblewrap sandbox of :mod:`.sandbox`,
unless ``--no-sandbox``, which the grade records) and temporary folder: the JSON is validated;
locked cells are restored from the bundle (tampering is reported); answers are matched
to questions by cell id, not position; the hidden checks' probes are appended after each
question; the notebook runs with papermill in a fresh kernel under a per-cell timeout, a
per-notebook timeout and a memory limit, a hang or crash costing only the cell that
caused it (:mod:`.execute`); the probes' evidence is judged in this process
(:mod:`.checks`). Per student: ``grade.json``, ``feedback.md`` and the executed notebook;
for the batch: ``gradebook.csv``. Finished grades are kept: a re-run skips them unless
``force`` (or unless the submission changed), and each grade is written atomically as soon
as it is known, so an interrupted batch loses none.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
from nbformat.v4 import new_code_cell

from coursekit.core import files
from coursekit.tooling.grading import checks as checks_mod
from coursekit.tooling.grading import sandbox
from coursekit.tooling.grading.labfmt import Template, cell_id, checksum

BUNDLE_FILE, HIDDEN_FILE = "bundle.json", "hidden_tests.py"
COULD_NOT_GRADE = "could not grade: the grader's environment: "
NO_SANDBOX = "none: graded with --no-sandbox"


@dataclass
class Bundle:
    """What the grader needs and students never see: template, hidden checks, reference evidence."""

    path: Path
    template: Template
    checks: list[checks_mod.Check]
    reference: dict[str, object]
    cell_seconds: dict[str, float]  # cell id → seconds the solution took at release

    @classmethod
    def load(cls, path: str | Path) -> Bundle:
        path = Path(path)
        if not (path / BUNDLE_FILE).is_file():
            raise FileNotFoundError(f"{path} is not a grader bundle (no {BUNDLE_FILE}); make one with "
                                    "`coursekit release LAB_DIR -o OUT`")
        data = json.loads((path / BUNDLE_FILE).read_text())
        return cls(path, Template.from_json(data["template"]), checks_mod.load(path / HIDDEN_FILE),
                   data["reference"], data.get("cell_seconds", {}))

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)


@dataclass
class Limits:
    """What a submission may use. A cell's time limit is ``floor + factor ×`` the seconds the
    solution's cell took at release, capped at ``cell_timeout`` (the cap alone for cells the
    release did not time, such as cells a student added)."""

    cell_timeout: int = 60
    notebook_timeout: int = 600
    memory_bytes: int = 4 * 2**30
    max_attempts: int = 6
    floor: int = 30
    factor: float = 10.0
    cpu_seconds: int | None = None  # CPU time per process of a submission; None: twice notebook_timeout

    def cpu_limit(self) -> int:
        return self.cpu_seconds or 2 * self.notebook_timeout

    def cell_limit(self, measured: float | None) -> int:
        if measured is None:
            return self.cell_timeout
        return min(self.cell_timeout, math.ceil(self.floor + self.factor * measured))


def _safe_name(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem)[:80] or "submission"


def assemble(template: Template, submission: nbformat.NotebookNode | None, checks: list, nonce: str
             ) -> tuple[nbformat.NotebookNode, list[str]]:
    """The notebook to run: the bundle's locked cells, the student's answers, the probes."""
    notes: list[str] = []
    by_id: dict[str, list] = {}
    extras_after: dict[str | None, list] = {}
    previous = None
    known = {c["id"] for c in template.cells}
    for cell in submission.cells if submission is not None else []:
        cid = cell_id(cell)
        if cid in known:
            by_id.setdefault(cid, []).append(cell)
            previous = cid
        elif cell.get("cell_type") == "code":  # a cell the student added: kept where it was
            extras_after.setdefault(previous, []).append(cell)
    if submission is not None:
        meta = submission.metadata.get("coursekit", {})
        release = meta.get("release_id") if isinstance(meta, dict) else None
        if release != template.release_id:
            notes.append(f"this notebook comes from release {release!r}, the grader's is "
                         f"{template.release_id!r}: answers were matched by cell id")
        kernel = submission.metadata.get("kernelspec", {}).get("name")
        if kernel not in (None, "python3"):
            notes.append(f"the notebook asked for kernel {kernel!r}; it was graded with python3")

    out = nbformat.v4.new_notebook()
    out.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    last_cell_of = {}
    for index, spec in enumerate(template.cells):
        if spec["question"]:
            last_cell_of[spec["question"]] = index
    probes_after: dict[int, list] = {}
    for check in checks:
        probes_after.setdefault(last_cell_of.get(check.question, len(template.cells) - 1), []).append(check)

    for index, spec in enumerate(template.cells):
        copies = by_id.get(spec["id"], [])
        if spec["kind"] == "answer":
            if not copies:
                notes.append(f"{spec['question']}: the answer cell {spec['id']!r} was deleted")
                source = f"# answer cell {spec['id']} missing from the submission\n"
            else:
                if len(copies) > 1:
                    notes.append(f"{spec['question']}: answer cell {spec['id']!r} appears "
                                 f"{len(copies)} times; the last copy was graded")
                source = copies[-1].get("source", "")
            cell = new_code_cell(source if isinstance(source, str) else "".join(source))
        else:
            if submission is not None:
                if not copies:
                    notes.append(f"locked cell {spec['id']!r} was deleted; it was restored")
                elif any(checksum(c.get("source", "") if isinstance(c.get("source", ""), str)
                                  else "".join(c["source"])) != checksum(spec["source"]) for c in copies):
                    notes.append(f"locked cell {spec['id']!r} was changed; the original was restored")
            maker = nbformat.v4.new_markdown_cell if spec["cell_type"] == "markdown" else new_code_cell
            cell = maker(spec["source"])
            if spec["kind"] == "parameters":
                cell.metadata["tags"] = ["parameters"]
        cell.metadata["coursekit"] = {"id": spec["id"]} | ({"locked": True} if spec["kind"] != "answer" else {})
        out.cells.append(cell)
        for extra in extras_after.get(spec["id"], []):
            src = extra.get("source", "")
            out.cells.append(new_code_cell(src if isinstance(src, str) else "".join(src)))
        for check in probes_after.get(index, []):
            probe = new_code_cell(checks_mod.probe_cell_source(check, nonce))
            probe.metadata["coursekit"] = {"id": f"probe:{check.name}"}
            out.cells.append(probe)
    return out, notes


def _read_submission(raw: bytes) -> tuple[nbformat.NotebookNode | None, str | None]:
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no list of cells")
        return nb, None
    except Exception as err:  # any malformed file: the student gets a message, the batch goes on
        return None, f"the file is not a valid notebook ({type(err).__name__}: {str(err)[:200]})"


def _execute(notebook: nbformat.NotebookNode, workdir: Path, limits: Limits, parameters: dict,
             sandboxed: bool) -> tuple[nbformat.NotebookNode | None, list[dict]]:
    """Run the assembled notebook in a worker process (in the sandbox when ``sandboxed``);
    return the executed notebook and incidents."""
    nb_path, out_path, inc_path = workdir / "graded.ipynb", workdir / "executed.ipynb", workdir / "incidents.json"
    nbformat.write(notebook, nb_path)
    job = {"notebook": str(nb_path), "output": str(out_path), "incidents": str(inc_path),
           "workdir": str(workdir), "cell_timeout": limits.cell_timeout, "memory_bytes": limits.memory_bytes,
           "cpu_seconds": limits.cpu_limit(), "max_attempts": limits.max_attempts, "parameters": parameters}
    (workdir / "job.json").write_text(json.dumps(job))
    argv = [sys.executable, "-m", "coursekit.tooling.grading.execute", str(workdir / "job.json")]
    if sandboxed:
        argv = sandbox.command(argv, workdir)
    log = workdir / "worker.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(argv, cwd=workdir, env=sandbox.environment({"MPLBACKEND": "Agg"}),
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    incidents = []
    try:
        proc.wait(timeout=limits.notebook_timeout)
        if proc.returncode != 0:
            tail = log.read_bytes()[-300:].decode(errors="replace")
            incidents.append({"cell": None, "reason": f"the grading worker failed: {tail}", "environment": True})
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        incidents.append({"cell": None, "reason": f"the notebook ran longer than {limits.notebook_timeout}s "
                                                  "and was stopped", "environment": True})
    if inc_path.is_file():
        incidents = json.loads(inc_path.read_text()) + incidents
    try:
        executed = nbformat.read(out_path, as_version=4) if out_path.is_file() else None
    except Exception:
        executed = None
    return executed, incidents


def _judge_all(bundle: Bundle, executed: nbformat.NotebookNode | None, nonce: str) -> list[dict]:
    outputs = {}
    for cell in executed.cells if executed is not None else []:
        cid = cell.get("metadata", {}).get("coursekit", {}).get("id", "")
        if isinstance(cid, str) and cid.startswith("probe:"):
            outputs[cid[len("probe:"):]] = cell.get("outputs", [])
    results = []
    for check in bundle.checks:
        status, value = checks_mod.read_evidence(outputs.get(check.name, []), check, nonce)
        if status == "ok":
            passed, message = checks_mod.judge(check, value, bundle.reference.get(check.name))
        elif status == "error":
            passed, message = False, f"your code raised an error when the check ran it: {value}"
        else:
            passed, message = False, value
        results.append({"check": check.name, "question": check.question, "points": check.points if passed else 0.0,
                        "max": check.points, "passed": passed, "message": message})
    return results


def grade_notebook(bundle: Bundle, raw: bytes, workdir: Path, limits: Limits,
                   parameters: dict | None = None, sandboxed: bool = True
                   ) -> tuple[dict, nbformat.NotebookNode | None]:
    """Grade one submission's bytes; return the grade and the executed notebook.

    ``sandboxed``: run it in the sandbox (:mod:`.sandbox`); ``False`` is recorded in the grade.
    """
    nonce = secrets.token_hex(16)
    submission, problem = _read_submission(raw)
    notes = [problem] if problem else []
    executed, incidents = None, []
    if submission is not None:
        assembled, more = assemble(bundle.template, submission, bundle.checks, nonce)
        notes += more
        for cell in assembled.cells:
            role = cell.metadata["coursekit"] if "coursekit" in cell.metadata else None
            if role is not None and role.get("id") in bundle.cell_seconds:
                role["timeout"] = limits.cell_limit(bundle.cell_seconds[role["id"]])
        executed, incidents = _execute(assembled, workdir, limits, parameters or {"SCALE": "ci"}, sandboxed)
    stuck = [i["reason"] for i in incidents if i.get("environment")]
    results = _judge_all(bundle, executed, nonce)
    questions = {}
    for q, spec in bundle.template.questions.items():
        mine = [r for r in results if r["question"] == q]
        questions[q] = {"title": spec.get("title", q), "points": sum(r["points"] for r in mine),
                        "max": sum(r["max"] for r in mine), "checks": mine}
    grade = {"lab": bundle.template.lab, "release_id": bundle.template.release_id,
             "submission_sha256": hashlib.sha256(raw).hexdigest(),
             "status": COULD_NOT_GRADE + "; ".join(stuck) if stuck else "graded",
             "total": None if stuck else sum(q["points"] for q in questions.values()),
             "max_total": bundle.max_points, "sandbox": sandboxed, "questions": questions, "notes": notes,
             "incidents": incidents}
    return grade, executed


def feedback_markdown(student: str, grade: dict) -> str:
    """What a student reads: points per question, each check passed or failed with its message."""
    header = [f"# {grade['lab']}: feedback for {student}", ""]
    if not grade.get("sandbox"):
        header += ["*Graded without a sandbox (`--no-sandbox`): the notebook ran with the grading "
                   "machine's files and network in reach.*", ""]
    if not graded(grade):
        return "\n".join([
            *header,
            "**Not graded yet.** Your notebook could not be run to the end on the grading machine, for a "
            "reason that is not your work's (" + grade["status"].removeprefix(COULD_NOT_GRADE) + "). "
            "No points were taken; your instructor will grade it again.", ""])
    lines = [*header, f"**Score: {grade['total']:g} / {grade['max_total']:g}**", "",
             "| question | points | |", "|---|---|---|"]
    for q, info in grade["questions"].items():
        ok = "✓" if info["points"] == info["max"] else "✗"
        lines.append(f"| {q}: {info['title']} | {info['points']:g} / {info['max']:g} | {ok} |")
    for q, info in grade["questions"].items():
        lines += ["", f"## {q}: {info['title']}"]
        for r in info["checks"]:
            mark = "passed" if r["passed"] else "failed"
            lines.append(f"- **{mark}** ({r['points']:g}/{r['max']:g}) — {r['message']}")
    if grade["notes"] or grade["incidents"]:
        lines += ["", "## Notes from the grader"]
        lines += [f"- {n}" for n in grade["notes"]]
        lines += [f"- cell {i.get('id') or i.get('cell')}: {i['reason']}" if i.get("cell") is not None
                  else f"- {i['reason']}" for i in grade["incidents"]]
    return "\n".join(lines) + "\n"


def graded(grade: dict) -> bool:
    """Whether a grade holds a score (``False``: the grader's environment stopped it)."""
    return grade.get("status", "graded") == "graded"


def _write_atomic(path: Path, text: str) -> str:
    """Write ``text`` atomically and return its SHA-256 (to notice later tampering)."""
    files.write_text(path, text)
    return hashlib.sha256(text.encode()).hexdigest()


def grade_batch(bundle_dir: str | Path, submissions: str | Path, out: str | Path, jobs: int = 1,
                force: bool = False, limits: Limits | None = None, progress: bool = True,
                sandboxed: bool = True) -> pd.DataFrame:
    """Grade every ``*.ipynb`` in ``submissions`` into ``out``; return (and write) the gradebook.

    Each submission runs in the sandbox (:mod:`.sandbox`); where there is none, this raises
    :class:`~.sandbox.SandboxUnavailable` unless ``sandboxed=False`` (``--no-sandbox``),
    which every feedback file and the gradebook then mention.
    """
    from tqdm.auto import tqdm

    bundle = Bundle.load(bundle_dir)
    if sandboxed:
        sandbox.require()
    limits = limits or Limits()
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise FileNotFoundError(f"no submissions folder {submissions}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    out.mkdir(parents=True, exist_ok=True)
    raws = {_safe_name(p.stem): p.read_bytes() for p in sorted(submissions.glob("*.ipynb"))}
    grades: dict[str, dict] = {}
    todo = []
    for student, raw in raws.items():
        existing = out / student / "grade.json"
        if existing.is_file() and not force:
            try:
                old = json.loads(existing.read_text())
                if (old.get("submission_sha256") == hashlib.sha256(raw).hexdigest()
                        and old.get("release_id") == bundle.template.release_id and graded(old)
                        and (old.get("sandbox", False) or not sandboxed)):
                    grades[student] = old
                    continue
            except (OSError, ValueError):
                pass
        todo.append(student)
    written: dict[Path, str] = {}

    def one(student: str) -> tuple[str, dict, nbformat.NotebookNode | None]:
        with tempfile.TemporaryDirectory(prefix=f"grade-{student}-") as tmp:
            grade, executed = grade_notebook(bundle, raws[student], Path(tmp), limits, sandboxed=sandboxed)
        return student, grade, executed

    def record(student: str, grade: dict, executed) -> None:
        folder = out / student
        folder.mkdir(exist_ok=True)
        if executed is not None:
            written[folder / "executed.ipynb"] = _write_atomic(folder / "executed.ipynb", nbformat.writes(executed))
        written[folder / "feedback.md"] = _write_atomic(folder / "feedback.md", feedback_markdown(student, grade))
        written[folder / "grade.json"] = _write_atomic(folder / "grade.json", json.dumps(grade, indent=1))
        grades[student] = grade
        _gradebook(grades, bundle, out)

    bar = tqdm(total=len(todo), desc="grading", disable=not progress)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in as_completed([pool.submit(one, s) for s in todo]):
            student, grade, executed = future.result()
            record(student, grade, executed)
            _restore_tampered(written, grades, out)
            bar.update()
    bar.close()
    # what the environment stopped (a loaded machine, a slow disk) is tried again, alone
    for student in [s for s in todo if not graded(grades[s])]:
        record(*one(student))
        _restore_tampered(written, grades, out)
    return _gradebook(grades, bundle, out)


def _restore_tampered(written: dict[Path, str], grades: dict[str, dict], out: Path) -> None:
    """A submission may write into the grades folder: put back what the grader wrote."""
    for path, digest in written.items():
        try:
            current = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            current = None
        if current == digest:
            continue
        student = path.parent.name
        if path.name == "grade.json":
            written[path] = _write_atomic(path, json.dumps(grades[student], indent=1))
        elif path.name == "feedback.md":
            written[path] = _write_atomic(path, feedback_markdown(student, grades[student]))


def _gradebook(grades: dict[str, dict], bundle: Bundle, out: Path) -> pd.DataFrame:
    rows = []
    for student, g in sorted(grades.items()):
        row = {"student": student, "status": g.get("status", "graded"),
               "sandbox": "bubblewrap" if g.get("sandbox") else NO_SANDBOX}
        if graded(g):
            row |= {q: info["points"] for q, info in g["questions"].items()}
        row |= {"total": g["total"], "max": g["max_total"], "notes": len(g["notes"]) + len(g["incidents"])}
        rows.append(row)
    table = pd.DataFrame(rows, columns=["student", *bundle.template.questions, "total", "max", "status", "sandbox",
                                        "notes"])
    tmp = out / "gradebook.csv.tmp"
    table.to_csv(tmp, index=False)
    os.replace(tmp, out / "gradebook.csv")
    return table

