"""Hidden checks: evidence gathered in the student's kernel, judged in the grader's process.

A check is a *probe* — code the grader appends after the student's cells, which must set
a JSON-serialisable ``evidence`` from the student's functions — and a *judge* — a
function ``(evidence, reference) -> (passed, message)`` that runs in the grader's own
process, never in the student's kernel. ``reference`` is the evidence the lab's solution
produced at release. So printing a fake score, or redefining checking functions inside the
notebook, changes nothing: the verdict is not made there. A submission can only make its
evidence look right by computing it right.

``hidden_tests.py`` of a lab::

    from coursekit.tooling.grading.checks import check

    @check("q1", points=2, probe='''
    evidence = global_magnitude_mask({"w": W}, 0.5)["w"].tolist()
    ''')
    def q1_keeps_the_largest(evidence, reference):
        return evidence == reference, "keep the largest |w| (see the public test)"
"""

from __future__ import annotations

import importlib.util
import json
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EVIDENCE_MIME = "application/vnd.coursekit.evidence+json"
Judge = Callable[[object, object], tuple[bool, str]]


@dataclass(frozen=True)
class Check:
    name: str
    question: str
    points: float
    probe: str
    judge: Judge


_REGISTRY: list[Check] = []


def check(question: str, points: float, probe: str) -> Callable[[Judge], Judge]:
    """Register the decorated judge, with its probe, as a hidden check worth ``points``."""
    def add(judge: Judge) -> Judge:
        _REGISTRY.append(Check(judge.__name__, question, float(points), textwrap.dedent(probe), judge))
        return judge
    return add


# Source text for a probe (paste it into the probe, which also imports math): ``safe(f, *args)`` is the call's
# value as a float, or the error it raised as text — JSON either way (a non-finite float as its text).
SAFE_CALL = """
def safe(f, *args):
    try:
        value = float(f(*args))
    except Exception as err:
        return f"{type(err).__name__}: {err}"[:200]
    return value if math.isfinite(value) else str(value)
"""


def error_name(value: object) -> str | None:
    """The exception's name in a :data:`SAFE_CALL` result (``"ValueError"``), or None for a value."""
    return value.split(":")[0] if isinstance(value, str) else None


def rebuild(recipe: str) -> dict:
    """The names a probe's recipe defines, built again in the grader (same seeds, same numbers on CPU).

    Only for the lab's own recipe text, never for anything the student wrote.
    """
    import torch  # the recipes build tensors; imported here so the grader's other paths need no torch

    scope = {"torch": torch}
    exec(recipe, scope)
    return scope


def close(evidence: object, reference: object, rel: float = 1e-6, abs_: float = 1e-9) -> bool:
    """Whether ``evidence`` equals ``reference`` within ``abs_ + rel·|reference|`` number by number,
    through nested dicts and lists of the same keys and lengths; a non-finite number never matches.
    Anything else must be equal. For judges comparing floats a student's code computed."""
    if isinstance(evidence, dict) and isinstance(reference, dict):
        return sorted(evidence) == sorted(reference) and all(close(evidence[k], reference[k], rel, abs_)
                                                             for k in reference)
    if isinstance(evidence, list) and isinstance(reference, list):
        return len(evidence) == len(reference) and all(close(e, r, rel, abs_)
                                                       for e, r in zip(evidence, reference, strict=True))
    numbers = (int, float)
    if isinstance(evidence, numbers) and isinstance(reference, numbers) and not isinstance(evidence, bool):
        return math.isfinite(evidence) and abs(evidence - reference) <= abs_ + rel * abs(reference)
    return evidence == reference


def load(path: str | Path) -> list[Check]:
    """The checks defined by a ``hidden_tests.py`` file, in definition order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no hidden tests at {path}")
    _REGISTRY.clear()
    spec = importlib.util.spec_from_file_location(f"coursekit_hidden_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = list(_REGISTRY)
    _REGISTRY.clear()
    names = [c.name for c in found]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: check names must be unique, got {names}")
    return found


def probe_cell_source(check: Check, nonce: str) -> str:
    """The code the grader runs in the kernel: the probe, its evidence sent as one display."""
    payload = {"check": check.name, "nonce": nonce}
    return (
        "def __coursekit_probe():\n"
        + textwrap.indent(check.probe.strip() + "\nreturn evidence\n", "    ")
        + "try:\n"
        + "    __coursekit_payload = {'evidence': __coursekit_probe()}\n"
        + "except BaseException as __coursekit_error:  # noqa: BLE001\n"
        + "    __coursekit_payload = {'error': f'{type(__coursekit_error).__name__}: "
          "{__coursekit_error}'[:500]}\n"
        + f"__coursekit_payload.update({json.dumps(payload)})\n"
        + "import IPython.display as __coursekit_display\n"
        + f"__coursekit_display.display({{{EVIDENCE_MIME!r}: __coursekit_payload}}, raw=True)\n"
    )


def read_evidence(outputs: list[dict], check: Check, nonce: str) -> tuple[str, object]:
    """From a probe cell's outputs: ``("ok", evidence)``, ``("error", message)`` or ``("missing", why)``."""
    found = [o["data"][EVIDENCE_MIME] for o in outputs
             if isinstance(o.get("data"), dict) and EVIDENCE_MIME in o["data"]]
    found = [p for p in found if isinstance(p, dict) and p.get("check") == check.name
             and p.get("nonce") == nonce]
    if not found:
        return "missing", "the check did not run to the end (the kernel stopped, or the cell timed out)"
    if len(found) > 1:
        return "missing", "the check's evidence was sent more than once (output tampering?)"
    payload = found[0]
    if "error" in payload:
        return "error", payload["error"]
    return "ok", payload.get("evidence")


def judge(check: Check, evidence: object, reference: object) -> tuple[bool, str]:
    """Run a judge safely: a judge that raises counts as a failed check with its message."""
    try:
        passed, message = check.judge(evidence, reference)
        return bool(passed), str(message)
    except Exception as err:  # a malformed piece of evidence must not stop the batch
        return False, f"could not judge the evidence ({type(err).__name__}: {err})"
