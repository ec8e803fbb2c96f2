"""Lab 02 (saliency): its release check, and the points that common mistakes lose.

Q1 Taylor score (4 points: 3 + 1), Q2 OBD saliency (2: 1 + 1), Q3 mean replacement (4: 2 + 2).
"""

from __future__ import annotations

import copy
import json

import nbformat
import pytest

from coursekit import cli
from coursekit.tooling.course import LABS
from coursekit.tooling.grading import labfmt
from coursekit.tooling.grading.grade import Bundle, Limits, grade_batch

LAB = LABS / "lab02_saliency"
pytestmark = pytest.mark.slow

SUM_LOSS_Q1 = '''def taylor_scores(model, x, y):
    model.eval()
    weights = {n: p for n, p in model.named_parameters() if n.endswith("weight")}
    loss = F.cross_entropy(model(x), y, reduction="sum")  # the sum, not the mean the question asks for
    grads = torch.autograd.grad(loss, list(weights.values()))
    return {n: (g * w).abs().detach() for (n, w), g in zip(weights.items(), grads, strict=True)}
'''
UNCLIPPED_Q2 = '''def obd_saliency(weights, hessian_diag):
    return {n: 0.5 * hessian_diag[n] * weights[n].detach() ** 2 for n in weights}
'''
IN_PLACE_Q3 = '''def mean_replace(model, layer, units, x):
    with torch.no_grad():  # edits the model it was given, and takes the mean before the ReLU
        means = model[:layer + 1](x).mean(0)
        model[layer + 2].bias += model[layer + 2].weight[:, units] @ means[units]
        model[layer].weight[units] = 0.0
        model[layer].bias[units] = 0.0
        model[layer + 2].weight[:, units] = 0.0
    return model
'''
EXPECTED = {"solution": (10, {}), "blank": (0, {}),
            "sum_not_mean_in_q1": (7, {"q1": "not the sum"}),
            "negative_hessian_kept_in_q2": (9, {"q2": "h = [-0.3, 2, -5, 1]"}),
            "in_place_and_before_relu_in_q3": (6, {"q3": "the next layer's mean pre-activation"})}


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release02")
    assert cli.main(["release", str(LAB), "-o", str(out), "--cell-timeout", "60"]) == 0
    return out / "lab02_saliency" / "lab02_saliency.ipynb", out / "lab02_saliency-grader"


def test_release_passes_its_check_and_hides_the_solutions(released):
    student, bundle = released
    text = student.read_text()
    assert "BEGIN SOLUTION" not in text and "clamp(min=0)" not in text and "evidence" not in text
    code = [c.source for c in nbformat.read(student, as_version=4).cells if c.cell_type == "code"]
    assert sum("raise NotImplementedError" in c for c in code) == 3
    assert Bundle.load(bundle).max_points == 10


def _with(student_nb, cid: str, source: str):
    nb = copy.deepcopy(student_nb)
    (cell,) = [c for c in nb.cells if labfmt.cell_id(c) == cid]
    cell.source = source
    return nb


@pytest.fixture(scope="module")
def graded(released, tmp_path_factory, sandboxed):
    student, bundle = released
    source = nbformat.read(LAB / "lab02_saliency.ipynb", as_version=4)
    answers = {labfmt.cell_id(c): c.source for c in source.cells
               if labfmt.role(c).get("question") and not labfmt.role(c).get("locked")}
    blank = nbformat.read(student, as_version=4)
    solved = blank
    for cid, text in answers.items():
        solved = _with(solved, cid, text)
    subs = {"solution": solved, "blank": blank,
            "sum_not_mean_in_q1": _with(solved, "q1-answer", SUM_LOSS_Q1),
            "negative_hessian_kept_in_q2": _with(solved, "q2-answer", UNCLIPPED_Q2),
            "in_place_and_before_relu_in_q3": _with(solved, "q3-answer", IN_PLACE_Q3)}
    root = tmp_path_factory.mktemp("grading02")
    (root / "subs").mkdir()
    for name, nb in subs.items():
        nbformat.write(nb, root / "subs" / f"{name}.ipynb")
    book = grade_batch(bundle, root / "subs", root / "grades", jobs=2, progress=False, sandboxed=sandboxed,
                       limits=Limits(cell_timeout=60, notebook_timeout=300))
    return book.set_index("student"), root / "grades"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_mistake_loses_the_points_its_message_names(graded, name):
    book, grades = graded
    total, said = EXPECTED[name]
    grade = json.loads((grades / name / "grade.json").read_text())
    assert book.loc[name, "total"] == total, json.dumps(grade, indent=1)[:3000]
    for question, phrase in said.items():
        messages = " ".join(c["message"] for c in grade["questions"][question]["checks"])
        assert phrase in messages, messages
