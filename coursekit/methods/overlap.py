"""How often two random sparse binary vectors overlap (slide 12; Ahmad & Scheinkman 2019).

"How Can We Be So Dense? The Benefits of Using Highly Sparse Representations": a unit
that fires when at least ``θ`` of its ``s`` synapses see active inputs is, with sparse
inputs, almost never triggered by noise. For a fixed vector with ``s`` of ``n`` bits on
and a random one with ``a`` of ``n`` bits on, the number of shared bits is hypergeometric:

    P(overlap ≥ θ) = Σ_{b ≥ θ} C(s, b) · C(n − s, a − b) / C(n, a),

computed here in log space (:func:`overlap_probability`) so that it stays exact for ``n``
in the thousands, where the binomial coefficients overflow any float; :func:`simulate`
checks it by drawing random vectors. At fixed sparsity ``a / n`` the probability falls
very fast as ``n`` grows (:func:`overlap_table`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import torch


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _check(n: int, a: int, s: int, theta: int) -> None:
    values = {"n": n, "a": a, "s": s, "theta": theta}
    bad = {k: v for k, v in values.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0}
    if bad or n < 1:
        raise ValueError(f"n, a, s and θ must be non-negative ints (n ≥ 1), got {bad or values}")
    if a > n or s > n:
        raise ValueError(f"a and s are numbers of active bits out of n = {n}; got a = {a}, s = {s}")
    if theta > min(a, s):
        raise ValueError(f"θ = {theta} cannot exceed the active bits of either vector (a = {a}, s = {s}): "
                         "no overlap can reach it")


def overlap_probability(n: int, a: int, s: int, theta: int) -> float:
    """``P(overlap ≥ θ)`` between a fixed vector with ``s`` of ``n`` bits on and a random one with ``a`` on.

    >>> round(overlap_probability(300, 64, 24, 12), 7)  # Ahmad & Scheinkman's example
    0.0010946
    """
    _check(n, a, s, theta)
    terms = [_log_choose(s, b) + _log_choose(n - s, a - b) - _log_choose(n, a)
             for b in range(theta, min(s, a) + 1) if a - b <= n - s]
    if not terms:
        return 0.0
    top = max(terms)
    return math.exp(top) * sum(math.exp(t - top) for t in terms)


def overlap_distribution(n: int, a: int, s: int) -> pd.Series:
    """``P(overlap = b)`` for every ``b`` from 0 to ``min(a, s)`` (the hypergeometric distribution), indexed by ``b``."""
    _check(n, a, s, 0)
    return pd.Series([math.exp(_log_choose(s, b) + _log_choose(n - s, a - b) - _log_choose(n, a))
                      if 0 <= a - b <= n - s else 0.0 for b in range(min(a, s) + 1)],
                     index=pd.RangeIndex(min(a, s) + 1, name="overlap"), name="probability")


def simulate(n: int, a: int, s: int, theta: int, trials: int = 100_000,
             generator: torch.Generator | None = None) -> tuple[float, float]:
    """The fraction of ``trials`` random ``a``-of-``n`` vectors overlapping a fixed ``s``-of-``n`` one in ≥ θ
    bits, and its standard error ``√(p(1 − p) / trials)``."""
    _check(n, a, s, theta)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive int, got {trials!r}")
    hits = 0
    for start in range(0, trials, 10_000):
        m = min(10_000, trials - start)
        active = torch.rand(m, n, generator=generator).argsort(dim=1)[:, :a]  # a random a-subset per trial
        hits += int(((active < s).sum(1) >= theta).sum())  # the fixed vector: bits 0 .. s-1
    p = hits / trials
    return p, math.sqrt(p * (1 - p) / trials)


def overlap_table(sizes: Sequence[int], density: float, theta_fraction: float = 0.5) -> pd.DataFrame:
    """``P(overlap ≥ θ)`` as ``n`` grows at fixed ``density`` (``a = s = round(density · n)``) and
    ``θ = ceil(theta_fraction · s)``: rows ``n``, ``a``, ``theta``, ``probability``, ``log10``."""
    if not 0 < density <= 1 or not 0 < theta_fraction <= 1:
        raise ValueError(f"density and theta_fraction must lie in (0, 1], got {density}, {theta_fraction}")
    rows = []
    for n in sizes:
        a = max(1, round(density * n))
        theta = max(1, math.ceil(theta_fraction * a))
        p = overlap_probability(n, a, a, theta)
        rows.append({"n": n, "a": a, "theta": theta, "probability": p,
                     "log10": math.log10(p) if p > 0 else -math.inf})
    return pd.DataFrame(rows)
