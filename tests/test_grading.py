"""Release → grade round trip, and the grader against broken and hostile submissions.

Each submission below is named by what it does; its expected score is in EXPECTED.
Lab 01's points: q1 3, q2 2, q3 3 (uses q1 and q2), q4 2.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell

from coursekit import cli
from coursekit.course import LABS
from coursekit.grading import grade as grade_module
from coursekit.grading import labfmt
from coursekit.grading.grade import Bundle, Limits, assemble, grade_batch

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


def _make_submissions(student_nb, folder, grades_dir):
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
        "import coursekit.grading.checks as c\n"
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

    for name, nb in subs.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / "malformed_json.ipynb").write_text('{"cells": [ this is not json')
    return subs


EXPECTED = {
    "passes_all": 10, "blank": 0, "partial_q1_q2": 5, "fails_q1_layerwise_threshold": 5,
    "infinite_loop_in_q1": 4, "kernel_exit_in_q2": 5, "segfault_in_q4": 8, "memory_bomb_in_q2": 5,
    "sys_exit_in_q4": 8, "tampered_locked_cells": 10, "deleted_q2_answer": 5, "duplicated_q4_answer": 10,
    "forges_score_and_evidence": 0, "monkeypatches_checks": 0, "malformed_json": 0,
    "asks_for_another_kernel": 10, "huge_output": 10, "writes_into_grades_and_other_submission": 10,
    "from_an_older_release": 10,
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
def graded(released, tmp_path_factory):
    student, bundle = released
    root = tmp_path_factory.mktemp("grading")
    subs, grades = root / "submissions", root / "grades"
    subs.mkdir()
    _make_submissions(nbformat.read(student, as_version=4), subs, grades)
    limits = Limits(cell_timeout=10, notebook_timeout=240, memory_bytes=3 * 2**30)
    book = grade_batch(bundle, subs, grades, jobs=2, limits=limits, progress=False)
    return book, grades, subs, bundle, limits


def test_release_hides_solutions_and_tests(released):
    student, bundle = released
    text = student.read_text()
    assert "BEGIN SOLUTION" not in text and "keep[flat.topk(k).indices] = True" not in text
    assert "q1_global_mask_on_new_tensors" not in text and "evidence" not in text  # no hidden checks
    nb = nbformat.read(student, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert sorted(p.name for p in bundle.iterdir()) == ["bundle.json", "hidden_tests.py"]
    assert Bundle.load(bundle).max_points == 10


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_submission_gets_its_expected_score(graded, name):
    book, grades, *_ = graded
    row = book.set_index("student").loc[name]
    grade = json.loads((grades / name / "grade.json").read_text())
    assert row["total"] == EXPECTED[name], json.dumps(grade, indent=1)[:3000]
    if name in NOTES:
        said = " ".join(grade["notes"] + [i["reason"] for i in grade["incidents"]])
        assert NOTES[name] in said, said
    feedback = (grades / name / "feedback.md").read_text()
    assert f"Score: {EXPECTED[name]:g} / 10" in feedback


def test_partial_credit_is_per_question(graded):
    book, *_ = graded
    row = book.set_index("student").loc["partial_q1_q2"]
    assert (row["q1"], row["q2"], row["q3"], row["q4"]) == (3, 2, 0, 0)
    wrong = book.set_index("student").loc["fails_q1_layerwise_threshold"]
    assert wrong["q1"] == 1  # the count check passes, the global-threshold one does not


def test_feedback_says_what_to_fix(graded):
    _, grades, *_ = graded
    feedback = (grades / "fails_q1_layerwise_threshold" / "feedback.md").read_text()
    assert "rank all tensors together" in feedback
    blank = (grades / "blank" / "feedback.md").read_text()
    assert "NotImplementedError" in blank


def test_outputs_are_kept_and_truncated(graded):
    _, grades, *_ = graded
    executed = nbformat.read(grades / "huge_output" / "executed.ipynb", as_version=4)
    longest = max(len(o.get("text", "")) for c in executed.cells for o in c.get("outputs", []))
    assert longest < 100_000


def test_gradebook_and_rerun_skips_graded(graded):
    book, grades, subs, bundle, limits = graded
    on_disk = pd.read_csv(grades / "gradebook.csv")
    assert sorted(on_disk["student"]) == sorted(EXPECTED)
    stamp = (grades / "passes_all" / "grade.json").stat().st_mtime_ns
    again = grade_batch(bundle, subs, grades, jobs=1, limits=limits, progress=False).set_index("student")
    assert (grades / "passes_all" / "grade.json").stat().st_mtime_ns == stamp  # not graded again
    # blank.ipynb was overwritten by a hostile submission after it was read: only it is re-graded
    same = [s for s in EXPECTED if s != "blank"]
    assert again.loc[same, "total"].equals(book.set_index("student").loc[same, "total"])
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
        from coursekit.grading.release import release
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


def test_a_loaded_machine_costs_an_honest_student_nothing(released, tmp_path, cpu_hogs):
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
    book = grade_batch(bundle, subs, grades, jobs=2, limits=limits, progress=False).set_index("student")
    assert book["total"].to_dict() == {name: EXPECTED[name] for name in sorted(picked)}
    assert (book["status"] == "graded").all()


@pytest.mark.parametrize("failures", [1, 2])
def test_an_environment_failure_is_tried_again_alone_and_never_scored_zero(released, tmp_path, monkeypatch,
                                                                            failures):
    """The first ``failures`` runs of the submission stop in an instructor's cell: once, the batch's
    retry (alone, at the end) grades it; twice, it is reported as not gradable, with no score."""
    student, bundle = released
    subs, grades = tmp_path / "submissions", tmp_path / "grades"
    subs.mkdir()
    nbformat.write(_solved(nbformat.read(student, as_version=4)), subs / "honest.ipynb")
    real, calls = grade_module._execute, []

    def stuck_at_first(notebook, workdir, limits, parameters):
        calls.append(workdir)
        if len(calls) <= failures:
            return None, [{"cell": 2, "id": "setup", "reason": "the instructor's cell ran longer than its limit "
                                                                "of 40s twice", "environment": True}]
        return real(notebook, workdir, limits, parameters)

    monkeypatch.setattr(grade_module, "_execute", stuck_at_first)
    book = grade_batch(bundle, subs, grades, progress=False).set_index("student")
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
    again = grade_batch(bundle, subs, grades, progress=False).set_index("student")  # not skipped as graded
    assert again.loc["honest", "total"] == 10
