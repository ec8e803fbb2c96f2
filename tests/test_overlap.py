"""The overlap probability of random sparse vectors: known value, simulation, stability, bad input."""

import math

import pytest
import torch

from coursekit import overlap


def test_ahmad_and_scheinkmans_example():
    assert overlap.overlap_probability(300, 64, 24, 12) == pytest.approx(1.0946e-3, rel=1e-4)
    assert overlap.overlap_probability(300, 24, 64, 12) == pytest.approx(overlap.overlap_probability(300, 64, 24, 12))
    assert overlap.overlap_probability(10, 3, 3, 0) == pytest.approx(1.0)  # every vector overlaps in ≥ 0 bits


@pytest.mark.parametrize("n, a, s, theta", [(40, 10, 8, 3), (100, 20, 20, 6), (64, 32, 16, 9)])
def test_the_formula_matches_simulation_within_its_standard_error(n, a, s, theta):
    exact = overlap.overlap_probability(n, a, s, theta)
    p, se = overlap.simulate(n, a, s, theta, trials=40_000, generator=torch.Generator().manual_seed(n + theta))
    assert abs(p - exact) < 4 * se  # four standard errors: fails by chance once in ~16 000 runs


def test_log_space_stays_exact_where_binomials_overflow():
    table = overlap.overlap_table([100, 1000, 10_000], density=0.02)
    assert table["probability"].is_monotonic_decreasing
    assert table["log10"].iloc[-1] < -100  # C(10 000, 200) alone is ~1e425, far beyond float64
    assert all(math.isfinite(v) for v in table["log10"])


@pytest.mark.parametrize("args, message", [
    ((300, 64, 24, 30), "θ = 30 cannot exceed"),
    ((30, 64, 24, 3), "out of n = 30"),
    ((300, -1, 24, 3), "non-negative ints"),
    ((300, 2.5, 24, 3), "non-negative ints"),
])
def test_bad_input_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        overlap.overlap_probability(*args)


def test_the_distribution_sums_to_one_and_its_tail_is_the_probability():
    dist = overlap.overlap_distribution(300, 64, 24)
    assert list(dist.index) == list(range(25)) and dist.sum() == pytest.approx(1, rel=1e-12)
    assert dist.loc[12:].sum() == pytest.approx(overlap.overlap_probability(300, 64, 24, 12), rel=1e-12)
    assert (dist.loc[:8] == 0).sum() == 0 and overlap.overlap_distribution(10, 8, 8).loc[:5].eq(0).all()
