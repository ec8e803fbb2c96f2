"""The student's kernel: started with its limits, and the hidden checks' probes run in it.

``python -c "from coursekit.tooling.grading import kernel; kernel.main()" --memory B --cpu S --preload torch -f CONN``
is the kernel the grader's driver (:mod:`.execute`) starts, inside the sandbox when
there is one. Before any of the student's code it

* sets an address-space and a CPU-time limit, and asks the OOM killer to take this
  process first (a memory bomb cannot take the grader's processes with it);
* asks Linux to kill it the moment its parent (the driver, or the sandbox's init) dies:
  no kernel outlives the run it belongs to;
* imports the array libraries the lab's own cells import (``--preload``: PyTorch,
  NumPy) and keeps what a probe needs from them and from ``builtins``: the originals,
  before the student's cells can rebind them.

A probe cell calls :func:`probe`. The probe's code runs in a namespace of its own: the
student's functions and data, but the untouched builtins (a student's ``sorted`` or
``int`` is not seen) and the real modules. Its ``evidence`` is reduced here to plain JSON
values — ``bool``, ``int``, ``float``, ``str``, ``None``, lists and string-keyed dicts,
tensors and arrays of exactly PyTorch's and NumPy's own types as lists — by the C
methods of those types, which no Python code can replace; an object of any other type,
whatever its ``__eq__``, ``tolist`` or ``__torch_function__`` say, is refused. What
leaves the kernel is one JSON *string*, parsed again by the grader (:mod:`.checks`).

Code in the kernel can still rewrite a probe (an IPython input transformer sees its
source) or send forged output: the kernel is the student's. So the judges never trust
the kernel's arithmetic: a probe sends the student's raw results on inputs the judge
knows, and the judge computes every statistic itself (see ``docs/grading.md``).
"""

from __future__ import annotations

import builtins
import json
import math
import resource
import sys

ORIGINAL_BUILTINS = dict(vars(builtins))
# what this module calls, taken before the student's code could rebind it in ``builtins``
_dumps, _isfinite, _type, _repr, _exec, _compile = json.dumps, math.isfinite, type, repr, exec, compile
_PLAIN = (bool, int, str, type(None))
_EXACT: dict[type, object] = {}  # array type → its C ``tolist``
_MODULES: dict[str, object] = {"math": math}  # name in a probe → the module as imported before the student
MAX_ITEMS = 5_000_000  # numbers and strings in one piece of evidence
PRELOAD = ("torch", "numpy")


def _preload(names: tuple[str, ...] = PRELOAD) -> None:
    """Import the array libraries and keep their C converters (immutable types: not patchable)."""
    import importlib

    for name in names:
        if name not in PRELOAD:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        _MODULES["np" if name == "numpy" else name] = module
        if name == "torch":
            _EXACT[module.Tensor] = module._C.TensorBase.tolist
        else:
            _EXACT[module.ndarray] = module.ndarray.tolist
            for scalar in set(module.sctypeDict.values()):
                _EXACT[scalar] = module.generic.item


class EvidenceError(TypeError):
    """The evidence holds something that is not plain data."""


def plain(value: object, _budget: list[int] | None = None) -> object:
    """``value`` as plain JSON data, by exact type only (subclasses and look-alikes are refused)."""
    budget = [MAX_ITEMS] if _budget is None else _budget
    kind = _type(value)
    if kind in _EXACT:
        return plain(_EXACT[kind](value), budget)
    budget[0] -= 1
    if budget[0] < 0:
        raise EvidenceError(f"the evidence is larger than {MAX_ITEMS} items")
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if _isfinite(value) else _repr(value)
    if kind is list or kind is tuple:
        return [plain(v, budget) for v in value]
    if kind is dict:
        out = {}
        for k, v in value.items():
            if _type(k) is not str:
                raise EvidenceError("evidence dicts must have str keys")
            out[k] = plain(v, budget)
        return out
    raise EvidenceError(f"evidence must be plain data (numbers, str, lists, dicts, tensors, arrays); "
                        f"got an object of type {kind.__module__}.{kind.__qualname__}")


def probe(check: str, nonce: str, code: str) -> None:
    """Run one probe's ``code`` beside the student's names; display its evidence as a JSON string."""
    from IPython.display import display

    from coursekit.tooling.grading.checks import EVIDENCE_MIME

    student = sys._getframe(1).f_globals
    scope = {k: v for k, v in student.items() if k not in ORIGINAL_BUILTINS and not k.startswith("__")}
    scope |= _MODULES | {"__builtins__": ORIGINAL_BUILTINS.copy()}
    payload = {"check": check, "nonce": nonce}
    try:
        _exec(_compile(code, f"<hidden check {check}>", "exec"), scope)
        payload["json"] = _dumps(plain(scope["evidence"]), allow_nan=False)
    except BaseException as err:  # the student's code may raise anything
        payload["error"] = f"{_type(err).__name__}: {err}"[:500]
    display({EVIDENCE_MIME: payload}, raw=True)


def _limit(memory: int, cpu: int) -> None:
    for which, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu)):
        if value:
            resource.setrlimit(which, (value, value))
    try:  # the OOM killer's first choice: this kernel, not the grader
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def die_with_parent() -> None:
    """Ask Linux to kill this process (``SIGKILL``) the moment its parent dies.

    The driver asks it, so that it dies with the grader; the kernel asks it, so that it
    dies with its driver (or the sandbox's init) instead of outliving it, still writing
    into a scratch folder the grader is removing."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    """Set the limits, preload, then run IPython's kernel with the remaining arguments."""
    import argparse

    parser = argparse.ArgumentParser(prog="coursekit-graded-kernel")
    parser.add_argument("--memory", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--preload", default="", help="comma-separated: of " + ", ".join(PRELOAD))
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    die_with_parent()
    _limit(known.memory, known.cpu)
    _preload(tuple(filter(None, known.preload.split(","))))
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=rest)
