"""``coursekit grade``: grade a folder of submissions against a grader bundle.

For each submission, in its own temporary folder: the JSON is validated; locked cells are
restored from the bundle (tampering is reported); answers are matched to questions by cell
id, not position; the hidden checks' probes are appended after each question; the notebook
runs cell by cell in a fresh kernel (inside the bubblewrap sandbox of :mod:`.sandbox`, unless
``--no-sandbox``, which the grade records), driven from outside by :mod:`.execute`, under a
per-cell timeout, a per-notebook timeout and a memory limit, a hang or crash costing only
the cell that caused it (:func:`_execute`); the probes' evidence is judged in this process
(:mod:`.checks`). Per student: ``grade.json``, ``feedback.md`` and the executed notebook;
for the batch: ``gradebook.csv`` and ``report.md`` (:mod:`.integrity`). Finished grades are
kept: a re-run skips them unless ``force`` (or unless the submission changed), and each grade
is written atomically as soon as it is known, so an interrupted batch loses none.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
from nbformat.v4 import new_code_cell

from coursekit.tooling.grading import checks as checks_mod
from coursekit.tooling.grading import execute as _execute_mod
from coursekit.tooling.grading import integrity, sandbox
from coursekit.tooling.grading import kernel as kernel_mod
from coursekit.tooling.grading.labfmt import Template, cell_id, checksum

BUNDLE_FILE, HIDDEN_FILE = "bundle.json", "hidden_tests.py"
COULD_NOT_GRADE = "could not grade: "
ENVIRONMENT = "the grader's environment: "
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


def _source(cell: dict) -> str:
    """A submitted cell's source as one string (the file may hold it as a list of lines)."""
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


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
                source = _source(copies[-1])
            cell = new_code_cell(source)
        else:
            if submission is not None:
                if not copies:
                    notes.append(f"locked cell {spec['id']!r} was deleted; it was restored")
                elif any(checksum(_source(c)) != checksum(spec["source"]) for c in copies):
                    notes.append(f"locked cell {spec['id']!r} was changed; the original was restored")
            maker = nbformat.v4.new_markdown_cell if spec["cell_type"] == "markdown" else new_code_cell
            cell = maker(spec["source"])
            if spec["kind"] == "parameters":
                cell.metadata["tags"] = ["parameters"]
        cell.metadata["coursekit"] = {"id": spec["id"]} | ({"locked": True} if spec["kind"] != "answer" else {})
        out.cells.append(cell)
        for extra in extras_after.get(spec["id"], []):
            out.cells.append(new_code_cell(_source(extra)))
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


def _with_parameters(notebook: nbformat.NotebookNode, parameters: dict) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with a cell setting ``parameters`` after the cell tagged ``parameters``
    (papermill's convention: the notebook's defaults, then the grader's values)."""
    nb = copy.deepcopy(notebook)
    if not parameters:
        return nb
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    cell = new_code_cell("# Parameters set by the grader\n" + "".join(f"{k} = {v!r}\n" for k, v in parameters.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    cell.metadata["coursekit"] = {"id": "injected-parameters", "locked": True}
    nb.cells.insert(tagged[0] + 1 if tagged else 0, cell)
    return nb


@dataclass
class Attempt:
    """What one driver process reported: the cells it finished, and where and why it stopped."""

    cells: dict[int, dict]
    stopped: int | None = None
    reason: str | None = None
    finished: bool = False


def _attempt(notebook: nbformat.NotebookNode, workdir: Path, limits: Limits, sandboxed: bool,
             seconds: float, preload: list[str]) -> Attempt:
    """Run ``notebook`` once in a driver process (:mod:`.execute`) for at most ``seconds``."""
    # fresh folders for every attempt: nothing of an earlier run is seen, or in the way
    here = Path(tempfile.mkdtemp(prefix="attempt-", dir=workdir))
    scratch, private = here / "kernel", here / "driver"
    scratch.mkdir(), private.mkdir()
    # Unix socket paths are short (108 bytes): the channel lives in a short folder of its own
    channel = Path(tempfile.mkdtemp(prefix="ck-"))
    job = {"notebook": notebook, "scratch": str(scratch), "private": str(private), "channel": str(channel),
           "cell_timeout": limits.cell_timeout, "memory_bytes": limits.memory_bytes,
           "cpu_seconds": limits.cpu_limit(), "sandboxed": sandboxed, "preload": preload}
    job["kernel_argv"] = _execute_mod.kernel_argv(job)
    read, write = os.pipe()
    attempt = Attempt({})
    try:
        with open(private / "driver.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "coursekit.tooling.grading.execute"],
                                    stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                    pass_fds=(write,), env=sandbox.environment({"COURSEKIT_RESULT_FD": str(write)}),
                                    cwd=private, start_new_session=True)
        os.close(write)
        reader = threading.Thread(target=_read_events, args=(read, attempt), daemon=True)
        reader.start()
        try:
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
        except OSError:
            pass
        # the driver's last word ends the attempt; a driver that lingers after it is stopped
        reader.join(timeout=max(seconds, 1))
        if reader.is_alive():
            attempt.reason = "timeout"
        try:
            proc.wait(timeout=0 if reader.is_alive() else 10)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=10)
    finally:
        for folder in (channel, here):
            shutil.rmtree(folder, ignore_errors=True)
    return attempt


def _read_events(fd: int, attempt: Attempt) -> None:
    """Collect the driver's events from its pipe into ``attempt`` (a cut last line is ignored)."""
    running = None
    with os.fdopen(fd, "rb") as stream:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if "start" in event:
                running = event["start"]
            elif "done" in event:
                attempt.cells[event["done"]] = event["cell"]
                running = None
            elif "stopped" in event:
                attempt.stopped, attempt.reason = event["stopped"], event["reason"]
                return
            elif event.get("end"):
                attempt.finished = True
                return
    # the pipe closed without a last word: the driver died, or was stopped, while ``running`` ran
    attempt.stopped = running
    if attempt.reason != "timeout":
        attempt.reason = "stopped the grading process (killed it, or ran out of memory)"


LOCKED_RETRY_FACTOR = 4


def _execute(notebook: nbformat.NotebookNode, workdir: Path, limits: Limits, parameters: dict,
             sandboxed: bool, preload: list[str]) -> tuple[nbformat.NotebookNode | None, list[dict]]:
    """Run the assembled notebook so that a hang or a crash costs one cell, not the rest.

    A student's cell that runs past its limit, kills the kernel (``os._exit``, a segfault,
    running out of memory) or kills the driver is replaced by a comment saying so, and
    the notebook runs again from the top in a fresh kernel, up to ``limits.max_attempts``
    times. A locked (instructor's) cell that does so is never charged to the student: it
    runs again once with four times its limit, and if it fails again the submission is
    reported as not gradable here (an incident with ``"environment": true``).
    """
    current = _with_parameters(notebook, parameters)
    incidents: list[dict] = []
    deadline = time.monotonic() + limits.notebook_timeout
    executed = None
    for number in range(1, limits.max_attempts + 1):
        attempt = _attempt(current, workdir, limits, sandboxed, deadline - time.monotonic(), preload)
        executed = copy.deepcopy(current)
        for index, cell in attempt.cells.items():
            executed.cells[index] = nbformat.from_dict(cell)
        if attempt.finished:
            break
        if attempt.reason == "timeout" or time.monotonic() >= deadline:
            incidents.append({"cell": None, "reason": f"the notebook ran longer than {limits.notebook_timeout}s "
                                                      "and was stopped", "environment": True})
            break
        if attempt.stopped is None:
            incidents.append({"cell": None, "reason": f"execution stopped: {attempt.reason}", "environment": True})
            break
        cell = current.cells[attempt.stopped]
        role = cell.metadata.setdefault("coursekit", {})
        incident = {"cell": attempt.stopped, "id": role.get("id"), "reason": attempt.reason, "attempt": number}
        if role.get("locked") and not role.get("retried"):
            role["timeout"], role["retried"] = LOCKED_RETRY_FACTOR * _execute_mod.limit(cell, limits.cell_timeout), True
            incidents.append(incident | {"reason": f"the instructor's cell {attempt.reason}; run again with a "
                                                   f"limit of {role['timeout']}s (not charged to the student)"})
        elif role.get("locked"):
            incidents.append(incident | {"reason": f"the instructor's cell {attempt.reason} twice: the grader's "
                                                   "environment, not the submission", "environment": True})
            break
        else:
            incidents.append(incident)
            cell.source = f"# removed by the grader: this cell {attempt.reason}\n"
    else:
        incidents.append({"cell": None, "reason": f"gave up after {limits.max_attempts} attempts: too many cells "
                                                  "hang or crash"})
    return executed, incidents


def probe_outputs(executed: nbformat.NotebookNode | None) -> dict[str, list]:
    """Check name → the outputs of its probe cell in an executed notebook."""
    outputs = {}
    for cell in executed.cells if executed is not None else []:
        cid = cell_id(cell) or ""
        if cid.startswith("probe:"):
            outputs[cid[len("probe:"):]] = cell.get("outputs", [])
    return outputs


def _judge_all(bundle: Bundle, executed: nbformat.NotebookNode | None, nonce: str) -> list[dict]:
    outputs = probe_outputs(executed)
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
        preload = sorted(bundle.template.imports() & set(kernel_mod.PRELOAD))
        executed, incidents = _execute(assembled, workdir, limits, parameters or {"SCALE": "ci"}, sandboxed, preload)
    stuck = [i["reason"] for i in incidents if i.get("environment")]
    results = _judge_all(bundle, executed, nonce)
    questions = {}
    for q, spec in bundle.template.questions.items():
        mine = [r for r in results if r["question"] == q]
        questions[q] = {"title": spec.get("title", q), "points": sum(r["points"] for r in mine),
                        "max": sum(r["max"] for r in mine), "checks": mine}
    status = COULD_NOT_GRADE + ENVIRONMENT + "; ".join(stuck) if stuck else "graded"
    grade = _grade_record(bundle, raw, sandboxed, status, None if stuck else sum(q["points"] for q in questions.values()))
    return grade | {"questions": questions, "notes": notes, "incidents": incidents}, executed


def feedback_markdown(student: str, grade: dict) -> str:
    """What a student reads: points per question, each check passed or failed with its message."""
    header = [f"# {grade['lab']}: feedback for {student}", ""]
    if not grade.get("sandbox"):
        header += ["*Graded without a sandbox (`--no-sandbox`): the notebook ran with the grading "
                   "machine's files and network in reach.*", ""]
    why = grade.get("status", "graded").removeprefix(COULD_NOT_GRADE)
    if why.startswith(ENVIRONMENT):
        return "\n".join([
            *header,
            "**Not graded yet.** Your notebook could not be run to the end on the grading machine, for a "
            "reason that is not your work's (" + why.removeprefix(ENVIRONMENT) + "). "
            "No points were taken; your instructor will grade it again.", ""])
    if not graded(grade):
        return "\n".join([*header, f"**Not graded.** The grader stopped grading your notebook: {why}. "
                                    "Your instructor will look at it.", ""])
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


def grade_batch(bundle_dir: str | Path, submissions: str | Path, out: str | Path, jobs: int = 1,
                force: bool = False, limits: Limits | None = None, progress: bool = True,
                sandboxed: bool = True) -> pd.DataFrame:
    """Grade every ``*.ipynb`` in ``submissions`` into ``out``; return (and write) the gradebook.

    Each submission's kernel runs in the sandbox (:mod:`.sandbox`); where there is none, this
    raises :class:`~.sandbox.SandboxUnavailable` unless ``sandboxed=False`` (``--no-sandbox``),
    which every feedback file, the gradebook and the report then mention. After every
    submission the grader checks that nothing it does not own changed (:class:`.integrity.Guard`):
    other submissions, the grades folder, the installed package; what changed is restored,
    reported in ``report.md``, and grades made meanwhile are made again.
    """
    from coursekit.core.progress import tqdm

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
    paths = {_safe_name(p.stem): p for p in sorted(submissions.glob("*.ipynb"))}
    raws = {student: p.read_bytes() for student, p in paths.items()}
    guard = integrity.Guard({paths[s]: raw for s, raw in raws.items()})
    journal, report = integrity.Journal(out), integrity.Report(out, bundle.template.lab, sandboxed)
    if force:
        journal.forget()
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

    def one(student: str) -> tuple[str, dict, nbformat.NotebookNode | None]:
        journal.started(student)
        with tempfile.TemporaryDirectory(prefix=f"grade-{student}-") as tmp:
            grade, executed = grade_notebook(bundle, raws[student], Path(tmp), limits, sandboxed=sandboxed)
        return student, grade, executed

    def record(student: str, grade: dict, executed) -> None:
        folder = out / student
        folder.mkdir(exist_ok=True)
        if executed is not None:
            guard.write(folder / "executed.ipynb", nbformat.writes(executed))
        guard.write(folder / "feedback.md", feedback_markdown(student, grade))
        guard.write(folder / "grade.json", json.dumps(grade, indent=1))
        grades[student] = grade
        guard.write(out / "gradebook.csv", _gradebook(grades, bundle).to_csv(index=False))
        journal.finished(student)

    def inspect(after: str, running: set[str]) -> bool:
        """Check and restore after ``after`` was graded; ``True`` when installed files had changed."""
        changes, installed = guard.check()
        if changes:
            report.add(f"while {after} was graded{' (beside ' + ', '.join(sorted(running)) + ')' if running else ''}: "
                       f"{'; '.join(changes)} changed; restored")
        return installed

    # a submission that was being graded when an earlier run of the grader was killed is graded
    # again alone, at the end; one that was twice is not graded again (it may kill the grader)
    killers = [s for s in todo if journal.crashed.get(s, 0) >= 2]
    suspects = [s for s in todo if journal.crashed.get(s, 0) == 1]
    for student in killers:
        record(student, _not_graded(bundle, raws[student], sandboxed, STOPPED_THE_GRADER), None)
        report.add(f"{student}: the grader was stopped twice while grading it; not graded again "
                   "(`--force` tries once more)")
    alone = suspects[:]
    bar = tqdm(total=len(todo) - len(killers), desc="grading", disable=not progress)
    queue = [s for s in todo if s not in killers and s not in suspects]
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            running: dict = {}
            while queue or running:
                # a new kernel starts only after the last finished submission was checked
                while queue and len(running) < jobs:
                    student = queue.pop(0)
                    running[pool.submit(one, student)] = student
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    finished = running.pop(future)
                    if inspect(finished, set(running.values())):  # before its own files are written
                        alone += [finished, *running.values()]  # graded while the package was changed
                    record(*future.result())
                    bar.update()
        # graded alone: suspects, those graded while installed files were changed, and what the
        # environment stopped (a loaded machine, a slow disk)
        stopped = [s for s in todo if s in grades and not graded(grades[s]) and s not in killers]
        again = list(dict.fromkeys(alone + stopped))
        for student in again:
            result = one(student)
            if inspect(student, set()):
                result = (student, _not_graded(bundle, raws[student], sandboxed, CHANGED_INSTALLED), None)
                report.add(f"{student}: graded alone, it changed the installed files again: not graded")
            record(*result)
            if student in suspects:
                bar.update()
    except KeyboardInterrupt:  # not the submissions' doing: none of them becomes a suspect
        journal.interrupted()
        raise
    bar.close()
    book = _gradebook(grades, bundle)
    guard.write(out / "gradebook.csv", book.to_csv(index=False))
    report.save(_summary(book))
    return book


STOPPED_THE_GRADER = ("the grader was stopped twice while grading this submission (it may kill the grading "
                      "process: grade it in the sandbox)")
CHANGED_INSTALLED = ("it changed the grader's installed files (restored; see report.md): grade it in the "
                     "sandbox")


def _grade_record(bundle: Bundle, raw: bytes, sandboxed: bool, status: str, total: float | None) -> dict:
    """A ``grade.json``: which lab and submission, the status and total; no questions, notes or incidents yet."""
    return {"lab": bundle.template.lab, "release_id": bundle.template.release_id,
            "submission_sha256": hashlib.sha256(raw).hexdigest(), "status": status, "total": total,
            "max_total": bundle.max_points, "sandbox": sandboxed, "questions": {}, "notes": [], "incidents": []}


def _not_graded(bundle: Bundle, raw: bytes, sandboxed: bool, why: str) -> dict:
    """The grade of a submission the grader would not run to the end: a status, no total."""
    return _grade_record(bundle, raw, sandboxed, COULD_NOT_GRADE + why, None)


def _summary(book: pd.DataFrame) -> list[str]:
    stuck = book[book["status"] != "graded"]
    lines = [f"{len(book)} submissions: {len(book) - len(stuck)} graded, {len(stuck)} not graded."]
    lines += [f"- {row.student}: {row.status}" for row in stuck.itertuples()]
    return lines


def _gradebook(grades: dict[str, dict], bundle: Bundle) -> pd.DataFrame:
    rows = []
    for student, g in sorted(grades.items()):
        row = {"student": student, "status": g.get("status", "graded"),
               "sandbox": "bubblewrap" if g.get("sandbox") else NO_SANDBOX}
        if graded(g):
            row |= {q: info["points"] for q, info in g["questions"].items()}
        row |= {"total": g["total"], "max": g["max_total"], "notes": len(g["notes"]) + len(g["incidents"])}
        rows.append(row)
    return pd.DataFrame(rows, columns=["student", *bundle.template.questions, "total", "max", "status", "sandbox",
                                       "notes"])
