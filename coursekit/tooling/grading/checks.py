"""Hidden checks: evidence gathered in the student's kernel, judged in the grader's process.

A check is a *probe* — code the grader appends after the student's cells, which must set
``evidence`` from the student's functions — and a *judge* — a function
``(evidence, reference) -> (passed, message)`` that runs in the grader's own process,
never in the student's kernel. ``reference`` is the evidence the lab's solution produced
at release. So printing a fake score, or redefining checking functions inside the
notebook, changes nothing: the verdict is not made there.

The kernel is the student's, so anything it sends could be forged. A probe therefore
sends the student's *raw results* (the tensors their functions returned, on inputs the
probe builds), reduced to plain JSON by :func:`.kernel.plain`, and the judge computes
every statistic — counts, bounds, spreads — itself; a submission can only make its
evidence look right by computing the results right.

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


def flatten(nested: object) -> list:
    """The numbers of a tensor sent as nested lists, in order (a single number: a list of one)."""
    if isinstance(nested, list):
        return [leaf for item in nested for leaf in flatten(item)]
    return [nested]


def shape(nested: object) -> list[int]:
    """The shape of a tensor sent as nested lists (ragged lists: the first item's)."""
    dims = []
    while isinstance(nested, list):
        dims.append(len(nested))
        nested = nested[0] if nested else None
    return dims


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
    """The cell the grader runs in the kernel: :func:`.kernel.probe` with the probe's code."""
    return ("import coursekit.tooling.grading.kernel as __coursekit_kernel\n"
            f"__coursekit_kernel.probe({check.name!r}, {nonce!r}, {check.probe!r})\n")


MAX_EVIDENCE_CHARS = 50_000_000


def parse_evidence(text: object) -> object:
    """The evidence a probe sent, as plain JSON values; :class:`ValueError` for anything else.

    The kernel sends a JSON string; here it is parsed again, so whatever the student's code
    did in the kernel, a judge sees only ``dict``, ``list``, ``str``, ``int``, ``float``,
    ``bool`` and ``None`` (no NaN, no objects with their own ``__eq__``).
    """
    if not isinstance(text, str):
        raise ValueError(f"the evidence must arrive as a JSON string, not {type(text).__name__}")
    if len(text) > MAX_EVIDENCE_CHARS:
        raise ValueError(f"the evidence is longer than {MAX_EVIDENCE_CHARS} characters")

    def no_constants(name: str) -> object:
        raise ValueError(f"{name} is not allowed in evidence")

    return json.loads(text, parse_constant=no_constants)


def read_evidence(outputs: list[dict], check: Check, nonce: str | None) -> tuple[str, object]:
    """From a probe cell's outputs: ``("ok", evidence)``, ``("error", message)`` or ``("missing", why)``.

    ``nonce=None`` accepts any nonce (the release reading its own solution's evidence).
    """
    found = [o["data"][EVIDENCE_MIME] for o in outputs
             if isinstance(o.get("data"), dict) and EVIDENCE_MIME in o["data"]]
    found = [p for p in found if isinstance(p, dict) and p.get("check") == check.name
             and (nonce is None or p.get("nonce") == nonce)]
    if not found:
        return "missing", "the check did not run to the end (the kernel stopped, or the cell timed out)"
    if len(found) > 1:
        return "missing", "the check's evidence was sent more than once (output tampering?)"
    payload = found[0]
    if "error" in payload:
        return "error", str(payload["error"])[:500]
    try:
        return "ok", parse_evidence(payload.get("json"))
    except ValueError as err:
        return "missing", f"the check's evidence was not plain data ({str(err)[:200]})"


def judge(check: Check, evidence: object, reference: object) -> tuple[bool, str]:
    """Run a judge safely: a judge that raises counts as a failed check with its message."""
    try:
        passed, message = check.judge(evidence, reference)
        return bool(passed), str(message)
    except Exception as err:  # a malformed piece of evidence must not stop the batch
        return False, f"could not judge the evidence ({type(err).__name__}: {err})"
