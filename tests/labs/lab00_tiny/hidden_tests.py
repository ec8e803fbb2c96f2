"""Hidden checks of the tiny test lab: raw results in, every statistic computed by the judge."""

import statistics

from coursekit.tooling.grading.checks import check


@check("q1", points=2, probe="""
evidence = keep_largest(numbers(11, 40), 0.3)
""")
def q1_keeps_the_largest(evidence, reference):
    """The mask on 40 new numbers at fraction 0.3."""
    if evidence == reference:
        return True, "keeps the largest magnitudes"
    return False, "your mask differs from the reference's on 40 new numbers at fraction 0.3"


@check("q1", points=1, probe="""
evidence = keep_largest(numbers(12, 76), 0.05)
""")
def q1_format(evidence, reference):
    """A list of 76 bools keeping round(0.05 × 76) = 4."""
    if not isinstance(evidence, list) or len(evidence) != 76 or not all(isinstance(v, bool) for v in evidence):
        return False, "return one bool per value"
    if sum(evidence) != sum(reference):
        return False, f"keep round(0.05 × 76) = {sum(reference)}, you kept {sum(evidence)}"
    return True, "format and count: correct"


@check("q2", points=2, probe="""
values = numbers(13, 30)
evidence = zero_pruned(values, [v > 0 for v in values])
""")
def q2_zeroes_the_pruned(evidence, reference):
    """Exactly the reference's values: kept unchanged, pruned 0.0."""
    if evidence == reference:
        return True, "pruned entries are 0.0, the others unchanged"
    return False, "zero exactly the pruned entries and leave the others as they are"


@check("q3", points=3, probe="""
values = numbers(14, 50)
evidence = prune_round(values, keep_largest(values, 0.6), 0.3)
""")
def q3_prune_round(evidence, reference):
    """The new mask and the zeroed values, as the reference's."""
    if evidence == reference:
        return True, "one pruning round: correct"
    return False, "your new mask or values differ from the reference's (prune only among the kept)"


@check("q4", points=2, probe="""
keep = [i % 2 == 0 for i in range(600)]
evidence = {"keep": keep, "fresh": reinit(keep, 5)}
""")
def q4_reinit(evidence, reference):
    """0.0 where pruned; kept values spread as U(-1, 1) (the judge measures them, on the reference's mask)."""
    keep, fresh = reference["keep"], evidence["fresh"]
    if not isinstance(fresh, list) or len(fresh) != len(keep) or not all(isinstance(v, float) for v in fresh):
        return False, "return one float per entry"
    if any(v != 0 for v, k in zip(fresh, keep, strict=True) if not k):
        return False, "pruned entries must be 0.0"
    kept = [v for v, k in zip(fresh, keep, strict=True) if k]
    if any(abs(v) > 1 for v in kept):
        return False, "values must lie in [-1, 1]"
    spread = statistics.stdev(kept) * 3 ** 0.5
    if not 0.85 < spread < 1.15:
        return False, f"the values' spread is {spread:.2f}× that of U(-1, 1)"
    return True, "fresh uniform values where kept"
