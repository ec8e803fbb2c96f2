"""Small parts of the grader: solution stripping, evidence in and out of the kernel, the driver's limits."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit.tooling.grading import checks, execute, kernel, labfmt


def test_strip_solutions_keeps_indentation_and_the_rest():
    source = "x = 1\ndef f():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION\ny = 3\n"
    assert labfmt.strip_solutions(source) == f"x = 1\ndef f():\n    {labfmt.STUB}\ny = 3\n"
    with pytest.raises(ValueError, match="unbalanced"):
        labfmt.strip_solutions("### BEGIN SOLUTION\nx\n")


CHECK = checks.Check("c1", "q1", 1.0, "evidence = 41 + 1", lambda e, r: (e == r, "m"))


def _display(payload):
    return {"output_type": "display_data", "data": {checks.EVIDENCE_MIME: payload}, "metadata": {}}


def test_evidence_needs_the_runs_nonce_and_must_be_unique():
    good = _display({"check": "c1", "nonce": "n1", "json": "42"})
    forged = _display({"check": "c1", "nonce": "guess", "json": "42"})
    assert checks.read_evidence([good], CHECK, "n1") == ("ok", 42)
    assert checks.read_evidence([forged], CHECK, "n1")[0] == "missing"
    assert "more than once" in checks.read_evidence([good, good], CHECK, "n1")[1]
    error = _display({"check": "c1", "nonce": "n1", "error": "NameError: f"})
    assert checks.read_evidence([error], CHECK, "n1") == ("error", "NameError: f")


@pytest.mark.parametrize("sent", [{"evidence": 42}, {"json": 42}, {"json": "NaN"}, {"json": "[1, Infinity]"},
                                  {"json": "{"}, {"json": " " * (checks.MAX_EVIDENCE_CHARS + 1)}])
def test_evidence_must_arrive_as_plain_json_text(sent):
    """Objects, numbers outside JSON and broken text are refused before any judge sees them."""
    status, why = checks.read_evidence([_display({"check": "c1", "nonce": "n1"} | sent)], CHECK, "n1")
    assert status == "missing" and "not plain data" in why


def test_plain_accepts_data_and_the_array_types_themselves():
    torch = pytest.importorskip("torch")
    np = pytest.importorskip("numpy")
    kernel._preload(("torch", "numpy"))
    value = {"t": torch.tensor([[True, False]]), "a": np.arange(3), "s": np.float32(0.5), "n": float("nan"),
             "x": (1, "y", None)}
    assert kernel.plain(value) == {"t": [[True, False]], "a": [0, 1, 2], "s": 0.5, "n": "nan", "x": [1, "y", None]}


@pytest.mark.parametrize("make", ["list_subclass", "float_subclass", "int_key", "tensor_subclass", "parameter",
                                  "object"])
def test_plain_refuses_lookalikes(make):
    """Subclasses (whatever their ``__eq__`` or ``__torch_function__``) and other objects are refused."""
    torch = pytest.importorskip("torch")
    kernel._preload(("torch",))

    class Agrees(list):
        def __eq__(self, other):
            return True

    class Close(float):
        pass

    class Lookalike(torch.Tensor):
        pass

    value = {"list_subclass": Agrees([1]), "float_subclass": [Close(1.0)], "int_key": {1: 2},
             "tensor_subclass": torch.ones(2).as_subclass(Lookalike),
             "parameter": torch.nn.Parameter(torch.ones(2)), "object": object()}[make]
    with pytest.raises(kernel.EvidenceError):
        kernel.plain(value)


def test_a_probe_runs_with_the_original_builtins_beside_the_students_names(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    student = {"kernel": kernel, "sorted": lambda *a: "forged", "len": lambda *a: 99, "double": lambda x: 2 * x}
    source = checks.probe_cell_source(checks.Check("c", "q1", 1, "evidence = [sorted([2, 1]), len('ab'), double(3)]",
                                                   lambda e, r: (True, "")), "n1")
    exec(compile(source.replace("import coursekit.tooling.grading.kernel as __coursekit_kernel\n", "")
                 .replace("__coursekit_kernel", "kernel"), "probe", "exec"), student)
    (payload,) = [s[checks.EVIDENCE_MIME] for s in shown]
    assert payload["nonce"] == "n1" and json.loads(payload["json"]) == [[1, 2], 2, 6]


def test_flatten_and_shape_read_tensors_sent_as_nested_lists():
    assert checks.flatten([[1, 2], [3, [4]]]) == [1, 2, 3, 4] and checks.flatten(5) == [5]
    assert checks.shape([[True, False, True], [False, False, True]]) == [2, 3]
    assert checks.shape(2.5) == [] and checks.shape([]) == [0]


def test_a_judge_that_raises_fails_the_check():
    bad = checks.Check("c2", "q1", 1.0, "", lambda e, r: 1 / 0)
    passed, message = checks.judge(bad, 1, 1)
    assert not passed and "ZeroDivisionError" in message


def _run(tmp_path, *cells, **limits):
    """Run ``cells`` as the grader does (without the sandbox: faster, and the same driver)."""
    from coursekit.tooling.grading.grade import Limits, _execute

    nb = new_notebook(cells=[new_code_cell(c) if isinstance(c, str) else c for c in cells])
    return _execute(nb, tmp_path, Limits(**({"cell_timeout": 60} | limits)), {}, False, [])


def _locked(source, timeout):
    cell = new_code_cell(source)
    cell.metadata["coursekit"] = {"id": "setup", "locked": True, "timeout": timeout}
    return cell


def test_hang_crash_and_a_killed_driver_cost_one_cell_each(tmp_path):
    executed, incidents = _run(tmp_path, "x = 1", "while True: pass", "import os; os._exit(1)",
                               "import os, signal; os.kill(os.getppid(), signal.SIGKILL)", "print(x + 1)",
                               cell_timeout=3)
    assert [(i["cell"], i["reason"]) for i in incidents] == [
        (1, "ran longer than its limit of 3s"), (2, "stopped the kernel (crash, exit or out of memory)"),
        (3, "stopped the grading process (killed it, or ran out of memory)")]
    assert executed.cells[4].outputs[0]["text"] == "2\n"
    assert executed.cells[1].source.startswith("# removed by the grader")


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_an_orphan_kernel_dies_at_once_not_after_a_while():
    """``die_with_parent``: a child asking it is killed with its parent (a kernel with its driver).

    Without it an orphan kernel lives on (IPython notices its parent is gone a second later),
    still writing into the folder the grader is removing for the next attempt."""
    child = ("from coursekit.tooling.grading.kernel import die_with_parent; die_with_parent(); "
             "import time; print(flush=True); time.sleep(60)")
    parent = (f"import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', {child!r}], "
              "stdout=subprocess.PIPE, stderr=subprocess.DEVNULL); c.stdout.readline(); print(c.pid)")
    pid = int(subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True).stdout)
    deadline = time.monotonic() + 30  # the signal is immediate; half the child's minute is a wide margin
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid)


def test_a_slow_instructor_cell_is_run_again_with_more_time_not_charged(tmp_path):
    """A locked cell past its limit (a loaded machine) is never replaced: it gets four times the time."""
    executed, incidents = _run(tmp_path, _locked("import time\ntime.sleep(2.5)\nx = 1", timeout=1), "print(x + 1)")
    assert [(i["id"], i.get("environment")) for i in incidents] == [("setup", None)]
    assert "not charged to the student" in incidents[0]["reason"] and "limit of 4s" in incidents[0]["reason"]
    assert executed.cells[1].outputs[0]["text"] == "2\n"


def test_an_instructor_cell_that_fails_twice_is_the_environment(tmp_path):
    _, incidents = _run(tmp_path, _locked("import time\ntime.sleep(30)", timeout=1), "print('student')")
    assert [i.get("environment") for i in incidents] == [None, True]
    assert "the grader's environment, not the submission" in incidents[-1]["reason"]


def test_a_cells_limit_is_its_solution_time_scaled_and_capped():
    from coursekit.tooling.grading.grade import Limits

    limits = Limits(cell_timeout=60, floor=30, factor=10)
    assert [limits.cell_limit(t) for t in (None, 0.01, 2.0, 100.0)] == [60, 31, 50, 60]
    cell = new_code_cell("x")
    assert execute.limit(cell, 60) == 60
    cell.metadata["coursekit"] = {"timeout": 7}
    assert execute.limit(cell, 60) == 7


def test_the_cpu_time_limit_stops_a_burning_kernel(tmp_path):
    """The kernel's CPU-time limit: a cell that burns CPU past it (here within its 60 s wall-clock
    limit) stops the kernel, and costs that cell only."""
    executed, incidents = _run(tmp_path, "x = 1", "while True: pass", "print(x + 1)", cpu_seconds=6)
    assert [(i["cell"], i["reason"]) for i in incidents] == [(1, "stopped the kernel (crash, exit or out of memory)")]
    assert executed.cells[2].outputs[0]["text"] == "2\n"


def test_the_preloaded_modules_are_those_the_locked_cells_import():
    template = labfmt.Template("lab", "r", {}, [
        {"id": "a", "kind": "locked", "question": None, "cell_type": "code", "source": "import torch.nn\nimport os"},
        {"id": "b", "kind": "answer", "question": "q1", "cell_type": "code", "source": "import numpy"},
        {"id": "c", "kind": "locked", "question": None, "cell_type": "code", "source": "from math import pi\n("}])
    assert template.imports() == {"torch", "os"}


def test_close_compares_nested_numbers_within_tolerance():
    from coursekit.tooling.grading.checks import close

    assert close({"a": [1.0, 2.0]}, {"a": [1.0, 2.0 + 1e-12]})
    assert not close({"a": [1.0, 2.1]}, {"a": [1.0, 2.0]})
    assert close([1.001], [1.0], rel=1e-2) and not close([1.001], [1.0])
    assert not close([1.0, 2.0], [1.0]) and not close({"a": 1.0}, {"b": 1.0})
    assert not close(float("nan"), 1.0) and close(True, True) and close("x", "x") and not close("x", "y")
