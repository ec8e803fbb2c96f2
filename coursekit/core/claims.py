"""Checked claims: a headline result as a number, a threshold and the margin between them.

A lecture's checks cell and a test of a trained result state what they expect as
:class:`Claim` objects and call :func:`check`, which shows one row per claim and
fails, naming every claim that does not hold. Float results differ between CPUs,
thread counts and library builds, so a claim is only as good as its *margin*: the
distance from value to bound, in the passing direction. ``tests/margins.py`` (``make
margins``) re-runs every notebook and every test marked ``trained`` for several seeds
and thread counts, collects the claims :func:`check` logs to ``$COURSEKIT_CLAIMS_LOG``,
and reports each margin in units of its spread over those runs.

A ratio of timings or of traces varies by factors, not by steps: state it as a
logarithm (``math.log2(speedup) > 0``), so that its margin counts doublings and its
spread is not dominated by the runs where it is largest.

>>> table = check("doctest", [Claim("accuracy above chance", 0.8, ">", 0.1)])
>>> table.loc[0, "margin"].round(2), bool(table.loc[0, "holds"])
(np.float64(0.7), True)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

LOG_ENV = "COURSEKIT_CLAIMS_LOG"
SEEDS_ENV = "COURSEKIT_SEEDS"
OPS = (">", ">=", "<", "<=")


@dataclass(frozen=True)
class Claim:
    """``value op bound``: e.g. ``Claim("EB ticket ≈ late ticket", eb - late, ">", -0.05)``.

    ``margin`` is how far ``value`` lies on the passing side of ``bound`` (negative: it
    fails). Strict claims (``>``, ``<``) need a positive margin, the others a
    non-negative one. A NaN value never holds.
    """

    name: str
    value: float
    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"claim {self.name!r}: unknown comparison {self.op!r}; expected one of {OPS}")
        for what in ("value", "bound"):
            x = getattr(self, what)
            x = x.detach() if hasattr(x, "detach") else x  # a tensor from a graph
            try:
                number = float(x)
            except (TypeError, ValueError):
                number = None
            if number is None or isinstance(x, bool) or type(x).__name__ == "bool_":
                raise ValueError(f"claim {self.name!r}: {what} must be a number, got {x!r}")
            object.__setattr__(self, what, number)

    @property
    def margin(self) -> float:
        return self.value - self.bound if self.op.startswith(">") else self.bound - self.value

    @property
    def holds(self) -> bool:
        if math.isnan(self.margin):
            return False
        return self.margin > 0 if len(self.op) == 1 else self.margin >= 0


def check(where: str, claims: Sequence[Claim]) -> pd.DataFrame:
    """Show every claim of ``where`` (a notebook or test) with its margin; fail unless all hold.

    Returns one row per claim (``claim``, ``value``, ``op``, ``bound``, ``margin``,
    ``holds``). With ``$COURSEKIT_CLAIMS_LOG`` set, also appends each claim as a JSON
    line to that file, for ``tests/margins.py``.

    Raises:
        AssertionError: naming each claim that does not hold, with its value and bound.
    """
    if isinstance(claims, Claim) or not isinstance(claims, Sequence):
        raise ValueError(f"{where}: claims must be a list of Claim objects, got {type(claims).__name__}")
    if not all(isinstance(c, Claim) for c in claims):
        raise ValueError(f"{where}: claims must be a list of Claim objects, got {[type(c).__name__ for c in claims]}")
    names = [c.name for c in claims]
    if not claims or len(set(names)) != len(names):
        raise ValueError(f"{where}: give at least one claim, each with its own name; got {names}")
    table = pd.DataFrame([{"claim": c.name, "value": c.value, "op": c.op, "bound": c.bound,
                           "margin": c.margin, "holds": c.holds} for c in claims])
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as sink:
            for c in claims:
                sink.write(json.dumps({"where": where, "claim": c.name, "value": c.value, "op": c.op,
                                       "bound": c.bound}) + "\n")
    failed = [c for c in claims if not c.holds]
    if failed:
        lines = "\n".join(f"  {c.name}: {c.value:.4g} {c.op} {c.bound:.4g} does not hold (margin {c.margin:.3g})"
                          for c in failed)
        raise AssertionError(f"{where}: {len(failed)} of {len(claims)} claims fail\n{lines}")
    return table


def seeds(default: Sequence[int]) -> tuple[int, ...]:
    """The seeds a trained test runs: ``$COURSEKIT_SEEDS`` (e.g. ``"0,1,2,3,4"``) or ``default``."""
    raw = os.environ.get(SEEDS_ENV)
    if not raw:
        return tuple(default)
    try:
        found = tuple(int(s) for s in raw.split(","))
    except ValueError:
        found = ()
    if not found or any(s < 0 for s in found):
        raise ValueError(f"${SEEDS_ENV} must be comma-separated non-negative ints, e.g. '0,1,2', got {raw!r}")
    return found
