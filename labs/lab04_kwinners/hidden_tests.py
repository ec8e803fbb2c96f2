"""Hidden checks of lab 04 (kept out of the student release; see coursekit.tooling.grading.checks).

Each probe runs in the student's kernel after their answer and sets ``evidence``; each
judge runs in the grader and compares it with what coursekit's reference implementations
(``coursekit.methods.kwinners``, ``.overlap`` and ``.novelty``) give on the same inputs: a
probe's inputs come from a recipe (seeded generators, hand-made tensors) that the judge
runs again in the grader's process, or with the solution's evidence (``reference``). Every
check needs a raw result of the student's own function that matches, so evidence written by
hand from a probe's source cannot pass. The release check makes sure the lab's solution
agrees with the references.
"""

import torch

from coursekit.methods.kwinners import k_winners as reference_k_winners
from coursekit.methods.novelty import novelty_scores
from coursekit.methods.overlap import overlap_probability as reference_overlap
from coursekit.tooling.grading.checks import SAFE_CALL, check, close, error_name, rebuild

# ---------------------------------------------------------------- Q1: k-winners
RANDOM_ROWS = """
x = torch.randn(6, 20, generator=torch.Generator().manual_seed(51))
"""


@check("q1", points=2, probe=RANDOM_ROWS + """
before = x.clone()
evidence = {"out": {str(k): k_winners(x, k).double().tolist() for k in (1, 5, 20)},
            "input_kept": bool(torch.equal(x, before))}
""")
def q1_keeps_the_k_largest_per_row(evidence, reference):
    """The k largest values of each row of a random 6 × 20 tensor, for k = 1, 5 and 20."""
    if not evidence["input_kept"]:
        return False, "k_winners changed its input x: return a new tensor"
    x = rebuild(RANDOM_ROWS)["x"]
    for k, got in evidence["out"].items():
        expected = reference_k_winners(x, int(k)).double().tolist()
        if close(got, expected):
            continue
        by_magnitude = (x * (reference_k_winners(x.abs(), int(k)) != 0)).double().tolist()
        if close(got, by_magnitude):
            return False, (f"with k = {k} you kept the entries of largest magnitude |x|: keep the largest "
                           "values (a negative activation is a weak one)")
        if len(got) != len(expected):
            return False, f"with k = {k} on a 6 × 20 tensor you returned {len(got)} rows: keep x's shape"
        rows = sum(not close(g, e) for g, e in zip(got, expected, strict=True))
        return False, (f"with k = {k} on a 6 × 20 tensor, {rows} of the 6 rows differ from their {k} largest "
                       "entries kept and zeros elsewhere")
    return True, "k winners per row: correct"


TIES = [[0.5] * 16,
        [1.0, 3.0, 2.0, 2.0, 2.0, 0.5, 2.0, -1.0, 2.0, 0.25, 2.0, 2.0, 0.5, 2.0, 1.5, 2.0],
        [-1.0] * 16,
        [0.7, 0.1, 0.7, 0.9, 0.3, 0.7, 0.2, 0.3, 0.7, 0.7, 0.4, 0.7, 0.9, 0.6, 0.7, 0.8]]


@check("q1", points=1, probe=f"""
evidence = k_winners(torch.tensor({TIES}), 4).double().tolist()
""")
def q1_exactly_k_with_ties(evidence, reference):
    """Rows with tied values (all equal, or ties across the k-th place): exactly k survive, the earliest."""
    expected = reference_k_winners(torch.tensor(TIES), 4).double().tolist()
    counts = [sum(v != 0 for v in row) for row in evidence]
    if counts != [4] * len(TIES):
        return False, (f"exactly k = 4 entries must survive in each row, even when values tie (e.g. a row of 16 "
                       f"equal values); your rows kept {counts}")
    if not close(evidence, expected):
        return False, ("4 entries survive per row, but not the right ones: among tied values the earlier index "
                       "wins (torch.topk does not promise which; torch.sort(..., stable=True) does)")
    return True, "ties: exactly k survive, the earliest first"


@check("q1", points=1, probe="""
x = torch.randn(3, 6, generator=torch.Generator().manual_seed(52))
evidence = {}
for k in (0, -2, 7, 6, 3):
    try:
        evidence[str(k)] = torch.as_tensor(k_winners(x, k)).double().tolist()
    except Exception as err:
        evidence[str(k)] = type(err).__name__
""")
def q1_rejects_a_bad_k(evidence, reference):
    """k outside 1..units raises ValueError; k = units keeps every entry; and k = 3 on the same tensor (the
    raw results of k = 6 and k = 3 are compared with the solution's)."""
    for k in ("0", "-2", "7"):
        if evidence[k] != "ValueError":
            got = "no error" if isinstance(evidence[k], list) else evidence[k]
            return False, f"k = {k} with 6 units must raise ValueError, got {got}"
    for k, what in (("6", "k = 6 with 6 units keeps every entry"),
                    ("3", "k = 3 keeps the 3 largest entries of each row")):
        got = evidence[k]
        if isinstance(got, str):
            return False, f"{what}, but on a random 3 × 6 tensor your function raised {got}"
        if not close(got, reference[k]):
            return False, (f"{what}: on a random 3 × 6 tensor your result differs from the reference solution's, "
                           "so this point is not earned")
    return True, "a bad k raises ValueError; k = units keeps all"


# ---------------------------------------------------------------- Q2: overlap probability
SMALL = [(300, 64, 24, 8), (1024, 32, 32, 10), (100, 10, 10, 3), (50, 25, 25, 13), (16, 16, 8, 8),
         (200, 20, 40, 5)]
LARGE = [(2000, 400, 400, 100), (5000, 100, 100, 10), (4000, 2000, 2000, 1050)]
EDGES = [(50, 10, 5, 0), (10, 8, 6, 3), (10, 8, 6, 5), (100, 10, 20, 11), (100, 30, 5, 6)]
TOLERANCE = {"rel": 1e-8, "abs_": 0.0}  # the probabilities go down to 1e-12: relative only


def _expected(cases: list[tuple[int, int, int, int]]) -> list[object]:
    found = []
    for case in cases:
        try:
            found.append(reference_overlap(*case))
        except ValueError:
            found.append("ValueError")
    return found


def _wrong(cases, evidence, expected) -> list[str]:
    return [f"{case}: expected {e if isinstance(e, str) else f'{e:.6g}'}, got "
            f"{g if isinstance(g, str) else f'{g:.6g}'}"
            for case, g, e in zip(cases, evidence, expected, strict=True)
            if not (close(g, e, **TOLERANCE) or (isinstance(e, str) and error_name(g) == e))]


@check("q2", points=1, probe=SAFE_CALL + f"""
evidence = [safe(overlap_probability, *case) for case in {SMALL}]
""")
def q2_small_cases(evidence, reference):
    """P(overlap ≥ θ) for six (n, a, s, θ) with n up to 1024."""
    wrong = _wrong(SMALL, evidence, _expected(SMALL))
    if wrong:
        return False, "P(overlap ≥ θ) for (n, a, s, θ) = " + "; ".join(wrong[:3])
    return True, "overlap probabilities: correct"


@check("q2", points=1, probe=SAFE_CALL + f"""
evidence = [safe(overlap_probability, *case) for case in {LARGE}]
""")
def q2_large_n(evidence, reference):
    """n = 2000 to 5000, where C(n, a) is far beyond the largest float (C(2000, 400) ≈ 1e433)."""
    broken = [(case, g) for case, g in zip(LARGE, evidence, strict=True) if isinstance(g, str)]
    if broken:
        case, got = broken[0]
        if got in ("nan", "inf", "-inf") or error_name(got) == "OverflowError":
            return False, (f"for (n, a, s, θ) = {case} your function gave {got}: the binomial coefficients "
                           "overflow a float for n in the thousands (C(2000, 400) ≈ 1e433); add their logarithms "
                           "(math.lgamma) and exponentiate each term in log space instead")
        return False, f"for (n, a, s, θ) = {case} your function raised {got}"
    wrong = _wrong(LARGE, evidence, _expected(LARGE))
    if wrong:
        return False, "for large n: " + "; ".join(wrong)
    return True, "large n: correct (log space)"


@check("q2", points=1, probe=SAFE_CALL + f"""
evidence = [safe(overlap_probability, *case) for case in {EDGES}]
""")
def q2_edges(evidence, reference):
    """θ = 0 gives 1; impossible terms (a − b > n − s) count 0; θ > min(a, s) raises ValueError."""
    expected = _expected(EDGES)
    why = ["θ = 0: every vector overlaps in at least 0 bits, P = 1",
           "with a + s > n some overlaps b are impossible (a − b > n − s): their terms are 0, leave them out",
           "with a + s > n some overlaps b are impossible (a − b > n − s): their terms are 0, leave them out",
           "θ > min(a, s) must raise ValueError (no overlap can reach θ)",
           "θ > min(a, s) must raise ValueError (no overlap can reach θ)"]
    for case, got, exp, reason in zip(EDGES, evidence, expected, why, strict=True):
        if not (close(got, exp, **TOLERANCE) or (isinstance(exp, str) and error_name(got) == exp)):
            exp = exp if isinstance(exp, str) else f"{exp:.6g}"
            return False, f"{case}: expected {exp}, got {got}; {reason}"
    return True, "θ = 0, impossible overlaps and θ > min(a, s): correct"


# ---------------------------------------------------------------- Q3: novelty
CROWDS = """
gen = torch.Generator().manual_seed(61)
crowd = torch.rand(31, 2, generator=gen)
archive = torch.rand(12, 2, generator=gen) * 2 - 0.5
crowd3 = torch.randn(20, 3, generator=gen)
archive3 = torch.randn(8, 3, generator=gen)
"""
CROWD_CASES = [("crowd", "archive", 0, 5), ("crowd", "archive", 7, 15), ("crowd", "archive", 30, 1),
               ("crowd3", "archive3", 4, 6)]
NOVELTY_TOLERANCE = {"rel": 1e-5, "abs_": 1e-6}  # float32 inputs; distances in float32 or float64


@check("q3", points=2, probe=CROWDS + f"""
evidence = []
for people, arch, i, k in [{", ".join(f"({p}, {a}, {i}, {k})" for p, a, i, k in CROWD_CASES)}]:
    evidence.append(float(novelty(people[i], torch.cat([people[:i], people[i + 1:]]), arch, k)))
""")
def q3_novelty_in_a_crowd(evidence, reference):
    """Novelty of four individuals of a random population, with an archive, k from 1 to 15."""
    t = rebuild(CROWDS)
    expected, all_mean, no_archive = [], [], []
    for p, a, i, k in CROWD_CASES:
        expected.append(float(novelty_scores(t[p], t[a], k)[i]))
        no_archive.append(float(novelty_scores(t[p], None, k)[i]))
        others = torch.cat([t[p][:i], t[p][i + 1:], t[a]]).double()
        all_mean.append(float((others - t[p][i].double()).norm(dim=1).mean()))
    if close(evidence, expected, **NOVELTY_TOLERANCE):
        return True, "novelty against population and archive: correct"
    if close(evidence, all_mean, **NOVELTY_TOLERANCE):
        return False, ("you averaged the distances to all the others: novelty is the mean distance to the "
                       "k nearest neighbours only")
    if close(evidence, no_archive, **NOVELTY_TOLERANCE):
        return False, ("the archive's behaviours are neighbours too: take the k nearest among the population and "
                       "the archive together")
    return False, (f"expected {[round(e, 5) for e in expected]}, got {evidence}: the mean Euclidean distance to "
                   "the k nearest among population and archive")


SMALL_WORLDS = """
me = torch.tensor([0.5, 0.5])
few = torch.tensor([[1.5, 0.5], [0.5, 3.5], [-1.5, 0.5]])
few_archive = torch.tensor([[4.5, 3.5], [0.5, -0.5]])
four = torch.tensor([[0.5, 1.5], [2.5, 0.5], [0.5, -2.5], [4.5, 0.5]])
empty_archive = torch.empty(0, 2)
twins = torch.tensor([[0.5, 0.5], [1.5, 0.5], [0.5, 2.5]])
twins_archive = torch.tensor([[0.5, -0.5]])
"""
EDGE_CASES = [("few", "few_archive", 10, "fewer than k neighbours (5, k = 10): the mean distance to all of them"),
              ("four", "empty_archive", 4, "an empty archive, torch.empty(0, 2), adds no neighbour"),
              ("twins", "twins_archive", 5, "another individual with the same behaviour is a neighbour at "
                                            "distance 0: do not leave it out")]


@check("q3", points=1, probe=SAFE_CALL + SMALL_WORLDS + f"""
evidence = [safe(novelty, me, people, arch, k)
            for people, arch, k in [{", ".join(f"({p}, {a}, {k})" for p, a, k, _ in EDGE_CASES)}]]
""")
def q3_few_neighbours_empty_archive_and_twins(evidence, reference):
    """Fewer than k neighbours; an empty archive; a twin at distance 0."""
    t = rebuild(SMALL_WORLDS)
    for (p, a, k, why), got in zip(EDGE_CASES, evidence, strict=True):
        expected = float(novelty_scores(torch.cat([t["me"][None], t[p]]), t[a], k)[0])
        if not close(got, expected, **NOVELTY_TOLERANCE):
            return False, f"{why}: expected {expected:.4f}, got {got}"
    return True, "few neighbours, an empty archive and twins: correct"
