"""Small parts of the grader: solution stripping, evidence reading, finding the culprit cell."""

import json
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit.tooling.grading import checks, execute, labfmt


def test_strip_solutions_keeps_indentation_and_the_rest():
    source = "x = 1\ndef f():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION\ny = 3\n"
    assert labfmt.strip_solutions(source) == f"x = 1\ndef f():\n    {labfmt.STUB}\ny = 3\n"
    with pytest.raises(ValueError, match="unbalanced"):
        labfmt.strip_solutions("### BEGIN SOLUTION\nx\n")


CHECK = checks.Check("c1", "q1", 1.0, "evidence = 41 + 1", lambda e, r: (e == r, "m"))


def _display(payload):
    return {"output_type": "display_data", "data": {checks.EVIDENCE_MIME: payload}, "metadata": {}}


def test_evidence_needs_the_runs_nonce_and_must_be_unique():
    good = _display({"check": "c1", "nonce": "n1", "evidence": 42})
    forged = _display({"check": "c1", "nonce": "guess", "evidence": 42})
    assert checks.read_evidence([good], CHECK, "n1") == ("ok", 42)
    assert checks.read_evidence([forged], CHECK, "n1")[0] == "missing"
    assert "more than once" in checks.read_evidence([good, good], CHECK, "n1")[1]
    error = _display({"check": "c1", "nonce": "n1", "error": "NameError: f"})
    assert checks.read_evidence([error], CHECK, "n1") == ("error", "NameError: f")


def test_probe_source_runs_and_reports(tmp_path):
    source = checks.probe_cell_source(CHECK, "n1")
    shown = []
    import IPython.display

    real = IPython.display.display
    IPython.display.display = lambda obj, raw=False: shown.append(obj)
    try:
        exec(compile(source, "probe", "exec"), {})
    finally:
        IPython.display.display = real
    assert shown == [{checks.EVIDENCE_MIME: {"evidence": 42, "check": "c1", "nonce": "n1"}}]


def test_a_judge_that_raises_fails_the_check():
    bad = checks.Check("c2", "q1", 1.0, "", lambda e, r: 1 / 0)
    passed, message = checks.judge(bad, 1, 1)
    assert not passed and "ZeroDivisionError" in message


def test_culprit_skips_the_injected_parameters_cell():
    nb = new_notebook(cells=[new_code_cell("a"), new_code_cell("b"), new_code_cell("c")])
    nb.cells[1].metadata["tags"] = ["injected-parameters"]
    for cell in nb.cells[:3]:
        cell.metadata["papermill"] = {"start_time": "t"}
    assert execute._culprit(nb) == 1  # the third cell, second of the notebook as given
    nb.cells[2].metadata["papermill"] = {"start_time": None}
    assert execute._culprit(nb) == 0


def test_hang_and_crash_cost_one_cell(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("while True: pass"),
                             new_code_cell("import os; os._exit(1)"), new_code_cell("print(x + 1)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "n.ipynb")
    incidents = execute.run(tmp_path / "n.ipynb", tmp_path / "out.ipynb", cell_timeout=3)
    assert [i["cell"] for i in incidents] == [1, 2]
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert out.cells[3].outputs[0]["text"] == "2\n"


def _notebook(tmp_path, *cells):
    nb = new_notebook(cells=[new_code_cell(c) if isinstance(c, str) else c for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "n.ipynb")
    return tmp_path / "n.ipynb"


def _locked(source, timeout):
    cell = new_code_cell(source)
    cell.metadata["coursekit"] = {"id": "setup", "locked": True, "timeout": timeout}
    return cell


def test_a_slow_instructor_cell_is_run_again_with_more_time_not_charged(tmp_path):
    """A locked cell past its limit (a loaded machine) is never replaced: it gets four times the time."""
    path = _notebook(tmp_path, _locked("import time\ntime.sleep(2.5)\nx = 1", timeout=1), "print(x + 1)")
    incidents = execute.run(path, tmp_path / "out.ipynb", cell_timeout=60)
    assert [(i["id"], i.get("environment")) for i in incidents] == [("setup", None)]
    assert "not charged to the student" in incidents[0]["reason"] and "limit of 4s" in incidents[0]["reason"]
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert out.cells[1].outputs[0]["text"] == "2\n"


def test_an_instructor_cell_that_fails_twice_is_the_environment(tmp_path):
    path = _notebook(tmp_path, _locked("import time\ntime.sleep(30)", timeout=1), "print('student')")
    incidents = execute.run(path, tmp_path / "out.ipynb", cell_timeout=60)
    assert [i.get("environment") for i in incidents] == [None, True]
    assert "the grader's environment, not the submission" in incidents[-1]["reason"]


def test_a_cells_limit_is_its_solution_time_scaled_and_capped():
    from coursekit.tooling.grading.grade import Limits

    limits = Limits(cell_timeout=60, floor=30, factor=10)
    assert [limits.cell_limit(t) for t in (None, 0.01, 2.0, 100.0)] == [60, 31, 50, 60]
    cell = new_code_cell("x")
    assert execute._limit(cell, 60) == 60
    cell.metadata["coursekit"] = {"timeout": 7}
    assert execute._limit(cell, 60) == 7


def test_the_cpu_time_limit_stops_a_burning_kernel(tmp_path):
    """The worker's CPU-time limit is inherited by the kernel: a cell that burns CPU past it (here
    within its 60 s wall-clock limit) stops the kernel, and costs that cell only."""
    path = _notebook(tmp_path, "x = 1", "while True: pass", "print(x + 1)")
    job = {"notebook": str(path), "output": str(tmp_path / "out.ipynb"), "incidents": str(tmp_path / "inc.json"),
           "workdir": str(tmp_path), "cell_timeout": 60, "cpu_seconds": 6, "max_attempts": 3}
    (tmp_path / "job.json").write_text(json.dumps(job))
    subprocess.run([sys.executable, "-m", "coursekit.tooling.grading.execute", str(tmp_path / "job.json")], check=True,
                   timeout=300)
    incidents = json.loads((tmp_path / "inc.json").read_text())
    assert [(i["cell"], i["reason"]) for i in incidents] == [
        (1, "stopped the kernel (crash, exit or out of memory)")]
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert out.cells[2].outputs[0]["text"] == "2\n"


def test_close_compares_nested_numbers_within_tolerance():
    from coursekit.tooling.grading.checks import close

    assert close({"a": [1.0, 2.0]}, {"a": [1.0, 2.0 + 1e-12]})
    assert not close({"a": [1.0, 2.1]}, {"a": [1.0, 2.0]})
    assert close([1.001], [1.0], rel=1e-2) and not close([1.001], [1.0])
    assert not close([1.0, 2.0], [1.0]) and not close({"a": 1.0}, {"b": 1.0})
    assert not close(float("nan"), 1.0) and close(True, True) and close("x", "x") and not close("x", "y")
