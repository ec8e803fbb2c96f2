"""Release → grade round trip of lab 01, and the cheats aimed at its checks.

Each submission below is named by what it does; its expected score is in EXPECTED.
Lab 01's points: q1 3, q2 2, q3 3 (uses q1 and q2), q4 2. The generic broken and hostile
submissions (crashes, hangs, the sandbox's cases, other students' files, a killed grader)
are graded against a tiny lab in tests/test_grading_hostile.py.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from labkit import Lab, answer, with_cell

from coursekit import cli
from coursekit.tooling.course import LABS
from coursekit.tooling.grading import labfmt, sandbox
from coursekit.tooling.grading.grade import Bundle, Limits, assemble, grade_batch

LAB = Lab(LABS / "lab01_lottery")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    return LAB.release(tmp_path_factory.mktemp("release"))


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


# Rewrites every probe cell, before it runs, into one that sends made-up statistics (what the
# probes used to compute in the kernel: counts, a spread, "gradients on") with the probe's nonce.
REWRITES_THE_PROBES = """import json, re
MADE_UP = {
    "q1_types_shapes_and_count": {"dtypes": ["torch.bool"], "shapes": {"p": [7, 9], "q": [13]}, "kept": 4},
    "q2_zero_through_momentum_training": {"pruned_nonzero": 0, "kept_moved": 1.0, "grad_enabled": True},
    "q4_random_reinit": {"pruned_nonzero": 0, "out_of_bounds": 0, "std_over_uniform_std": 1.0, "same_as_init": 0.0},
}
def forge(lines):
    found = re.search(r"probe\\('([a-z0-9_]+)', '([0-9a-f]+)'", "".join(lines))
    if not found:
        return lines
    name, nonce = found.groups()
    payload = {"check": name, "nonce": nonce, "json": json.dumps(MADE_UP.get(name, {})),
               "evidence": MADE_UP.get(name, {})}
    return ["from IPython.display import display\\n",
            f"display({{'application/vnd.coursekit.evidence+json': {payload!r}}}, raw=True)\\n"]
get_ipython().input_transformers_cleanup.append(forge)
"""

# Answers that do nothing, and the builtins and modules the probes used rebound so that the
# statistics the probes used to compute in the kernel come out right.
SHADOWS_BUILTINS = """def global_magnitude_mask(weights, density):
    return {n: torch.zeros(w.shape, dtype=torch.bool) for n, w in weights.items()}
def zero_pruned_(model, mask): pass
def imp_round(model, init_state, mask, prune_fraction): return mask
def random_reinit_(model, mask, generator): pass
int = lambda *a, **k: 0
float = lambda *a, **k: 1.0
bool = lambda *a, **k: True
sorted = lambda x, **k: ["torch.bool"]
class _Torch:
    def __getattr__(self, name):
        import torch as real
        return getattr(real, name)
    def is_grad_enabled(self): return True
torch = _Torch()
"""

# Tensors of a subclass whose every operation answers with a value that agrees with anything.
TENSOR_LOOKALIKES = """class Agrees(list):
    def __eq__(self, other): return True
class Lookalike(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return Agrees()
def global_magnitude_mask(weights, density):
    return {n: torch.ones(w.shape, dtype=torch.bool).as_subclass(Lookalike) for n, w in weights.items()}
"""


def _make_submissions(student_nb, folder):
    """Lab 01's own cases (the generic hostile ones: tests/test_grading_hostile.py), written into ``folder``."""
    subs = {"passes_all": LAB.solved(student_nb), "blank": copy.deepcopy(student_nb),
            "partial_q1_q2": LAB.solved(student_nb, ("q1", "q2"))}
    nb = LAB.solved(student_nb)
    answer(nb, "q1-answer", PER_TENSOR_Q1)
    subs["fails_q1_layerwise_threshold"] = nb
    for name, source, at in (("rewrites_the_probes", REWRITES_THE_PROBES, 3), ("shadows_builtins", SHADOWS_BUILTINS, None),
                             ("returns_tensor_lookalikes", TENSOR_LOOKALIKES, None)):
        subs[name] = with_cell(student_nb, source, at)
    for name, nb in subs.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    return subs


# Until issue 21 the probes computed these statistics in the kernel, where a transformer or a
# shadowed builtin could set them (5 of 10 for blank answers); now a probe sends raw results and
# the judge computes every statistic from them.
EXPECTED = {"passes_all": 10, "blank": 0, "partial_q1_q2": 5, "fails_q1_layerwise_threshold": 5,
            "rewrites_the_probes": 0, "shadows_builtins": 0, "returns_tensor_lookalikes": 0}


@dataclass
class Graded:
    book: pd.DataFrame
    grades: Path


@pytest.fixture(scope="module")
def graded(released, tmp_path_factory, sandboxed):
    student, bundle = released
    root = tmp_path_factory.mktemp("grading")
    subs, grades = root / "submissions", root / "grades"
    subs.mkdir()
    _make_submissions(nbformat.read(student, as_version=4), subs)
    limits = Limits(cell_timeout=30, notebook_timeout=240, memory_bytes=3 * 2**30)
    book = grade_batch(bundle, subs, grades, jobs=2, limits=limits, progress=False, sandboxed=sandboxed)
    return Graded(book, grades)


def test_release_hides_solutions_and_tests(released):
    student, bundle = released
    text = student.read_text()
    assert "BEGIN SOLUTION" not in text and "keep[flat.topk(k).indices] = True" not in text
    assert "q1_global_mask_on_new_tensors" not in text and "evidence" not in text  # no hidden checks
    nb = nbformat.read(student, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert sorted(p.name for p in bundle.iterdir()) == ["bundle.json", "hidden_tests.py"]
    assert Bundle.load(bundle).max_points == 10


def test_no_sandbox_here_means_no_grading_unless_told(released, tmp_path, monkeypatch, capsys):
    _, bundle = released
    (tmp_path / "subs").mkdir()
    monkeypatch.setattr(sandbox, "problem", lambda: "bwrap cannot run here (no namespaces)")
    assert cli.main(["grade", str(bundle), str(tmp_path / "subs"), "-o", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "cannot grade in a sandbox: bwrap cannot run here" in err and "--no-sandbox" in err
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_submission_gets_its_expected_score(graded, name):
    row = graded.book.set_index("student").loc[name]
    grade = json.loads((graded.grades / name / "grade.json").read_text())
    assert row["total"] == EXPECTED[name], json.dumps(grade, indent=1)[:3000]
    assert f"Score: {EXPECTED[name]:g} / 10" in (graded.grades / name / "feedback.md").read_text()


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


def test_assemble_matches_answers_by_id_not_position(released):
    student, bundle_dir = released
    bundle = Bundle.load(bundle_dir)
    nb = LAB.solved(nbformat.read(student, as_version=4))
    nb.cells.reverse()  # every cell out of place
    assembled, _notes = assemble(bundle.template, nb, bundle.checks, "n")
    sources = {c.metadata["coursekit"]["id"]: c.source for c in assembled.cells}
    assert sources["q1-answer"] == LAB.solutions()["q1-answer"]
    assert [c.metadata["coursekit"]["id"] for c in assembled.cells][:3] == ["intro", "parameters", "setup"]


def test_release_refuses_a_broken_solution(tmp_path):
    lab = tmp_path / "labx"
    lab.mkdir()
    nb = nbformat.read(LAB.folder / "lab01_lottery.ipynb", as_version=4)
    nb.metadata["coursekit"]["lab"] = "labx"
    for cell in nb.cells:
        if labfmt.cell_id(cell) == "q4-answer":
            cell.source = cell.source.replace("p.copy_(fresh * keep)", "p.copy_(fresh)")
    nbformat.write(nb, lab / "labx.ipynb")
    (lab / "hidden_tests.py").write_text((LAB.folder / "hidden_tests.py").read_text())
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
    subs, grades = tmp_path / "submissions", tmp_path / "grades"
    subs.mkdir()
    student_nb = nbformat.read(student, as_version=4)
    nbformat.write(LAB.solved(student_nb), subs / "passes_all.ipynb")
    nbformat.write(LAB.broken(student_nb, "q2-answer", "import os\nos._exit(3)\n"), subs / "kernel_exit_in_q2.ipynb")
    limits = Limits(cell_timeout=10, notebook_timeout=600, memory_bytes=3 * 2**30)
    book = grade_batch(bundle, subs, grades, jobs=2, limits=limits, progress=False,
                       sandboxed=sandboxed).set_index("student")
    assert book["total"].to_dict() == {"kernel_exit_in_q2": 5, "passes_all": 10}
    assert (book["status"] == "graded").all()
