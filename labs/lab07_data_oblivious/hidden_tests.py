"""Hidden checks of lab 07 (kept out of the student release; see coursekit.tooling.grading.checks).

Each probe runs in the student's kernel after their answer and sets ``evidence``; each
judge runs in the grader, rebuilds the probe's layers or sequences from the same recipe
(:func:`rebuild`) and compares with coursekit's reference on them: Q1 with
``coursekit.methods.structured`` (L1 filter selection and surgery), Q2 with
``coursekit.methods.lowrank.svd_factors`` (the truncated SVD), Q3 with
``coursekit.methods.coding.huffman_lengths``. Each judge also recognises the common
mistakes and says so. The checks of side effects and edge cases also need a raw result of the
student's function on a valid input (a pruned pair, a low-rank product, a Huffman total) that
matches the reference's: evidence written by hand cannot pass them.
"""

import math
from collections import Counter

import torch
from torch import nn

from coursekit.methods.coding import huffman_lengths
from coursekit.methods.lowrank import svd_factors
from coursekit.methods.structured import remove_filters, select_filters
from coursekit.tooling.grading.checks import SAFE_CALL, check, close, error_name, rebuild

# ---------------------------------------------------------------- Q1: filter pruning with surgery
# Filters of three kinds, so that L1, L2 and the signed sum rank them differently: a few large weights
# (large L2, small L1), many small weights of one sign (large signed sum) and many of mixed signs.
PAIRS = """
from torch import nn


def conv_pair(seed, in_channels, width, out_channels, bias=True, stride=1):
    gen = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=bias)
    nxt = nn.Conv2d(width, out_channels, 3, padding=1)
    size = in_channels * 9
    with torch.no_grad():
        for j in range(width):
            scale = 0.6 + 0.8 * float(torch.rand(1, generator=gen))
            w = torch.randn(size, generator=gen)
            if j % 3 == 0:  # peaked: two large weights, the rest tiny
                w = 0.05 * w
                w[:2] = torch.tensor([2.2, -1.6]) * scale
            elif j % 3 == 1:  # flat, all positive
                w = 0.3 * scale * w.abs()
            else:  # flat, mixed signs
                w = 0.42 * scale * w
            conv.weight[j] = w.view(in_channels, 3, 3)
        if bias:
            conv.bias.copy_(torch.randn(width, generator=gen))
        nxt.weight.copy_(0.2 * torch.randn(nxt.weight.shape, generator=gen))
        nxt.bias.copy_(torch.randn(out_channels, generator=gen))
    x = torch.randn(2, in_channels, 6, 6, generator=gen)
    return conv, nxt, x
"""
RANKING_CASES = [(1, 3, 9, 4, 4), (2, 2, 12, 3, 7)]  # seed, in, width, out, keep
SURGERY_CASES = [((3, 3, 8, 5), {}, 3), ((4, 4, 10, 3), {"stride": 2}, 6)]  # (seed, in, width, out), kwargs, keep
Q1_PROBE = PAIRS + """
def q1_evidence(conv, nxt, keep, x):
    try:
        new_conv, new_next = prune_filters(conv, nxt, keep)
        found = {"rows": new_conv.weight.detach().flatten(1).tolist(),
                 "bias": None if new_conv.bias is None else new_conv.bias.detach().tolist(),
                 "next_shape": list(new_next.weight.shape),
                 "attributes": [getattr(new_conv, "out_channels", None), getattr(new_next, "in_channels", None)]}
    except Exception as err:
        return {"error": f"{type(err).__name__}: {err}"[:300]}
    try:
        with torch.no_grad():
            found["output"] = new_next(torch.relu(new_conv(x))).flatten().tolist()
    except Exception as err:
        found["output"] = f"{type(err).__name__}: {err}"[:300]
    return found
"""


def _filters(conv: nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().flatten(1)


def _l1_kept(conv: nn.Conv2d, nxt: nn.Conv2d, keep: int) -> list[int]:
    """coursekit's choice: the ``keep`` largest L1 norms, ties to the earlier filter, in index order."""
    width = conv.out_channels
    chosen = select_filters(nn.Sequential(conv, nn.ReLU(), nxt), {"0": (width - keep) / width})
    return chosen["0"].tolist()


def _top(scores: torch.Tensor, keep: int) -> list[int]:
    return sorted(torch.sort(scores, descending=True, stable=True).indices[:keep].tolist())


def _which_filters(rows: list, conv: nn.Conv2d) -> list[int] | None:
    """The original filter each returned row is (unchanged), or None if some row is none of them."""
    original = _filters(conv)
    found = []
    for row in rows:
        row = torch.tensor(row, dtype=original.dtype)
        if row.shape != original.shape[1:]:
            return None
        match = [j for j in range(len(original)) if torch.allclose(row, original[j], rtol=1e-6, atol=1e-7)]
        if not match:
            return None
        found.append(match[0])
    return found


def _raised(error: str) -> str:
    return f"prune_filters raised {error}"


def _not_refused(evidence, name, values):
    """The first ``name = value`` case of ``values`` that did not raise ValueError, and what it did; None if all did."""
    for value in values:
        got = evidence[f"{name} = {value}"]
        if error_name(got) != "ValueError":
            return value, got
    return None


def _q1_ranking(case: tuple, got: dict) -> str | None:
    """What is wrong with the filters a submission kept in one case (None: right ones, right order)."""
    seed, cin, width, cout, keep = case
    conv, nxt, _ = rebuild(PAIRS)["conv_pair"](seed, cin, width, cout)
    where = f"a conv with {width} filters ({cin} input channels, 3×3), keep = {keep}"
    if "error" in got:
        return f"{where}: {_raised(got['error'])}"
    if len(got["rows"]) != keep:
        return f"{where}: your new conv has {len(got['rows'])} filters, expected {keep}"
    kept = _which_filters(got["rows"], conv)
    if kept is None:
        return (f"{where}: the new conv's filters are not filters of the original conv: keep whole rows "
                "conv.weight[kept], unchanged")
    expected = _l1_kept(conv, nxt, keep)
    if kept == expected:
        return None
    if sorted(kept) == expected:
        return (f"{where}: you kept the right filters but in the order {kept}; keep them in their original order "
                f"{expected} (sort the kept indices), so that channel j of the new layer is still the j-th survivor")
    w = _filters(conv)
    l1 = w.abs().sum(1)
    for name, scores in (("their L2 norms", w.norm(dim=1)), ("the signed sum Σ K", w.sum(1)),
                         ("|Σ K|, the absolute value of the sum", w.sum(1).abs())):
        if sorted(kept) == _top(scores, keep):
            return (f"{where}: you ranked the filters by {name}; Li et al. rank them by the L1 norm Σ|K| "
                    f"(expected filters {expected}, L1 norms {[round(float(l1[j]), 3) for j in expected]}; you "
                    f"kept {sorted(kept)})")
    if sorted(kept) == _top(-l1, keep):
        return f"{where}: you kept the filters of smallest L1 norm {sorted(kept)}; keep the largest, {expected}"
    return (f"{where}: expected the filters of largest L1 norm Σ|K|, {expected} (L1 norms "
            f"{[round(float(x), 3) for x in l1]}), got {sorted(kept)}")


@check("q1", points=2, probe=Q1_PROBE + f"""
evidence = []
for seed, cin, width, cout, keep in {RANKING_CASES}:
    conv, nxt, x = conv_pair(seed, cin, width, cout)
    evidence.append(q1_evidence(conv, nxt, keep, x))
""")
def q1_keeps_the_largest_l1_filters(evidence, reference):
    """Which filters the new conv keeps: the largest L1 norms, in their original order (coursekit's selection)."""
    for case, got in zip(RANKING_CASES, evidence, strict=True):
        wrong = _q1_ranking(case, got)
        if wrong:
            return False, wrong
    return True, "the filters of largest L1 norm, in their original order: correct"


def _surgery(recipe: tuple, kwargs: dict, keep: int, got: dict) -> str | None:
    """Whether the new pair computes the old pair with the removed channels silenced (None: it does)."""
    conv, nxt, x = rebuild(PAIRS)["conv_pair"](*recipe, **kwargs)
    where = (f"a conv with {conv.out_channels} filters{' and stride 2' if kwargs else ''} followed by a conv with "
             f"{nxt.out_channels} outputs, keep = {keep}")
    if "error" in got:
        return f"{where}: {_raised(got['error'])}"
    kept = _which_filters(got["rows"], conv)
    if kept is None or len(kept) != keep:
        return (f"{where}: the new conv must hold {keep} unchanged filters of the original (whole rows "
                "conv.weight[kept]); yours does not")
    if got["bias"] is None:
        return f"{where}: the new conv has no bias; keep the kept filters' biases, conv.bias[kept]"
    if not close(got["bias"], conv.bias.detach()[kept].tolist(), rel=1e-6, abs_=1e-7):
        return (f"{where}: the new conv's bias is not the kept filters' biases: slice conv.bias with the same "
                "indices as conv.weight (a new nn.Conv2d starts with a random bias)")
    expected_shape = [nxt.out_channels, keep, 3, 3]
    if got["next_shape"] != expected_shape:
        return (f"{where}: next_conv's weight has shape {got['next_shape']}, expected {expected_shape}: next_conv "
                "must lose the input channels of the removed filters, next_conv.weight[:, kept]")
    if isinstance(got["output"], str):
        return f"{where}: next_conv(relu(conv(x))) of your new pair raised {got['output']}"
    pruned = remove_filters(nn.Sequential(conv, nn.ReLU(), nxt), {"0": sorted(kept)})
    with torch.no_grad():
        expected = pruned(x).flatten().tolist()
    if len(got["output"]) != len(expected):
        return (f"{where}: your new pair's output has {len(got['output'])} numbers, the original's "
                f"{len(expected)}: keep conv's stride, padding and kernel size (copy.deepcopy the layers, then "
                "slice their weights)")
    if not close(got["output"], expected, rel=1e-5, abs_=1e-5):
        return (f"{where}: your new pair does not compute the original pair with the removed channels set to 0: "
                "next_conv's input channels must be the kept filters in the same order as the new conv's "
                "outputs, next_conv.weight[:, kept] with the same kept as conv.weight[kept]")
    return None


@check("q1", points=1, probe=Q1_PROBE + f"""
evidence = []
for recipe, kwargs, keep in {SURGERY_CASES}:
    conv, nxt, x = conv_pair(*recipe, **kwargs)
    evidence.append(q1_evidence(conv, nxt, keep, x))
""")
def q1_the_pair_computes_the_same(evidence, reference):
    """The new pair computes the old with the removed channels at 0: bias sliced, next_conv's inputs sliced."""
    for (recipe, kwargs, keep), got in zip(SURGERY_CASES, evidence, strict=True):
        wrong = _surgery(recipe, kwargs, keep, got)
        if wrong:
            return False, wrong
    return True, "the new pair computes the original pair with the removed filters silenced: correct"


@check("q1", points=1, probe=Q1_PROBE + """
conv, nxt, x = conv_pair(5, 3, 6, 4, bias=False)
before = [p.detach().clone() for p in [*conv.parameters(), *nxt.parameters()]]
evidence = {"no bias": q1_evidence(conv, nxt, 5, x), "all kept": q1_evidence(conv, nxt, 6, x), "before": before,
            "after": [p.detach() for p in [*conv.parameters(), *nxt.parameters()]]}
for keep in (0, 7):
    try:
        prune_filters(conv, nxt, keep)
        evidence[f"keep = {keep}"] = "no error"
    except Exception as err:
        evidence[f"keep = {keep}"] = f"{type(err).__name__}: {err}"[:200]
""")
def q1_new_layers(evidence, reference):
    """The given layers untouched; a conv without bias (keep = 5: the reference's pair); keep = width keeps all;
    1 ≤ keep ≤ width."""
    conv = rebuild(PAIRS)["conv_pair"](5, 3, 6, 4, bias=False)[0]
    if not close(evidence["after"], evidence["before"], rel=0.0, abs_=0.0):
        return False, ("prune_filters changed the layers it was given: return new layers (copy.deepcopy them, or "
                       "build new nn.Conv2d) and leave conv and next_conv as they were")
    got = evidence["no bias"]
    if "error" in got:
        return False, f"for a conv without bias (bias=False): {_raised(got['error'])}"
    if got["bias"] is not None:
        return False, "conv has no bias (bias=False); the new conv must have none either"
    kept = _which_filters(got["rows"], conv)
    if kept is None or len(kept) != 5:
        return False, ("for a conv without bias and keep = 5, the new conv must hold 5 unchanged filters of the "
                       "original (whole rows conv.weight[kept])")
    widths = [len(got["rows"]), got["next_shape"][1]]
    if got["attributes"] != widths:
        return False, (f"the new layers' weights have {widths[0]} output and {widths[1]} input channels, but their "
                       f"out_channels and in_channels say {got['attributes']}: set new_conv.out_channels and "
                       "new_next.in_channels after slicing their weights")
    want = reference["no bias"]
    if isinstance(got["output"], str):
        return False, (f"for a conv without bias and keep = 5, next_conv(relu(conv(x))) of your new pair raised "
                       f"{got['output']}")
    if not (close(got["rows"], want["rows"], rel=1e-6, abs_=1e-7) and got["next_shape"] == want["next_shape"]
            and close(got["output"], want["output"], rel=1e-5, abs_=1e-5)):
        return False, ("for a conv without bias and keep = 5, your new pair (its filters or its output "
                       "next_conv(relu(conv(x)))) differs from the reference solution's, so this point is not earned: "
                       "drop the filter of smallest L1 norm, and next_conv's input channel that reads it")
    got = evidence["all kept"]
    if "error" in got:
        return False, f"keep = {conv.out_channels} (all filters): {_raised(got['error'])}"
    kept = _which_filters(got["rows"], conv)
    if kept is None or sorted(kept) != list(range(6)):
        return False, f"keep = conv.out_channels (6) must keep every filter, got filters {kept}"
    wrong = _not_refused(evidence, "keep", (0, 7))
    if wrong:
        return False, f"keep = {wrong[0]} for a conv of 6 filters must raise ValueError (keep lies in 1..6), got {wrong[1]}"
    return True, "new layers, the originals untouched; no bias stays no bias; keep outside 1..width refused"


# ---------------------------------------------------------------- Q2: low rank by truncated SVD
# Linear layers with known singular values (distinct, so the best rank-r approximation is unique).
LAYERS = """
from torch import nn


def known_linear(seed, out_features, in_features, singular_values, bias=True):
    gen = torch.Generator().manual_seed(seed)
    k = min(out_features, in_features)
    u, _ = torch.linalg.qr(torch.randn(out_features, k, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(in_features, k, generator=gen, dtype=torch.float64))
    layer = nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(u @ torch.diag(torch.tensor(singular_values, dtype=torch.float64)) @ v.T)
        if bias:
            layer.bias.copy_(torch.randn(out_features, generator=gen))
    return layer
"""
WIDE = [8.0, 5.0, 3.0, 2.0, 1.2, 0.7, 0.4, 0.2, 0.1, 0.05]
TALL = [6.0, 4.5, 3.0, 1.5, 1.0, 0.5]
SVD_CASES = [((31, 10, 16, WIDE), 3), ((32, 24, 6, TALL), 2), ((33, 10, 16, WIDE), 10)]  # (seed, out, in, s), rank
Q2_ATTEMPT = """
def attempt(layer, rank):
    try:
        pair = low_rank(layer, rank)
        first, second = list(pair)
        return {"shapes": [list(first.weight.shape), list(second.weight.shape)],
                "product": (second.weight.detach().double() @ first.weight.detach().double()).tolist()}
    except Exception as err:
        return {"error": f"{type(err).__name__}: {err}"[:300]}
"""


def _svd_mistake(w: torch.Tensor, product: torch.Tensor, rank: int) -> str | None:
    """Which wrong product of the truncated SVD ``product`` is, if any."""
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    tolerance = 1e-4 * float(s[0])
    smallest = u[:, -rank:] @ torch.diag(s[-rank:]) @ vh[-rank:]
    if float((product - smallest).abs().max()) <= tolerance:
        return ("your product is U S Vᵀ over the smallest singular values: torch.linalg.svd returns them in "
                "descending order, so the best rank-r approximation keeps the first r (U[:, :r], S[:r], Vh[:r])")
    for power, why in ((0.5, "only one of the two layers carries √S_r: give √S_r to each (or S_r to one)"),
                       (2.0, "both layers carry S_r: split it as √S_r and √S_r (or S_r and nothing)"),
                       (0.0, "neither layer carries the singular values"),
                       (1.5, "one layer carries S_r and the other √S_r: split S_r as √S_r · √S_r")):
        wrong = u[:, :rank] @ torch.diag(s[:rank] ** power) @ vh[:rank]
        if float((product - wrong).abs().max()) <= tolerance:
            return f"the product of your two layers is U_r S_r^{power:g} V_rᵀ, not U_r S_r V_rᵀ: {why}"
    return None


@check("q2", points=2, probe=LAYERS + Q2_ATTEMPT + f"""
evidence = [attempt(known_linear(seed, out_features, in_features, s), rank)
            for (seed, out_features, in_features, s), rank in {SVD_CASES}]
""")
def q2_best_rank_r(evidence, reference):
    """The two layers' product is the truncated SVD (coursekit's svd_factors): the Eckart–Young error."""
    for ((seed, out_features, in_features, s), rank), got in zip(SVD_CASES, evidence, strict=True):
        w = rebuild(LAYERS)["known_linear"](seed, out_features, in_features, s).weight.detach()
        where = f"a Linear {in_features} → {out_features} with singular values {s}, rank {rank}"
        if "error" in got:
            return False, f"{where}: low_rank raised {got['error']}"
        expected_shapes = [[rank, in_features], [out_features, rank]]
        if got["shapes"] != expected_shapes:
            return False, (f"{where}: your layers' weights have shapes {got['shapes']}, expected {expected_shapes}: "
                           f"first nn.Linear({in_features}, {rank}, bias=False), then nn.Linear({rank}, "
                           f"{out_features})")
        b, c = svd_factors(w, rank)
        expected = (b.double() @ c.double())
        product = torch.tensor(got["product"], dtype=torch.float64)
        best = math.sqrt(sum(x * x for x in s[rank:]))
        if float((product - expected).abs().max()) <= 1e-4 * s[0]:
            continue
        error = float((w.double() - product).norm())
        mistake = _svd_mistake(w, product, rank)
        shown = (f"{where}: ‖W − (your product)‖_F = {error:.4g}, but the best rank-{rank} approximation has "
                 f"error √(Σ dropped sᵢ²) = {best:.4g} (Eckart–Young)")
        return False, f"{shown}; {mistake}" if mistake else shown
    return True, "the product of the two layers is the best rank-r approximation U_r S_r V_rᵀ: correct"


BIAS_LAYER = (34, 12, 9, [5.0, 3.0, 2.0, 1.5, 1.0, 0.8, 0.5, 0.3, 0.1])


@check("q2", points=1, probe=LAYERS + f"""
layer = known_linear{BIAS_LAYER}
before = [p.detach().clone() for p in layer.parameters()]
evidence = {{}}
try:
    pair = low_rank(layer, 4)
    first, second = list(pair)
    with torch.no_grad():
        evidence["at zero"] = pair(torch.zeros(1, 9)).flatten()
    evidence["first"], evidence["second"] = first.weight.detach(), second.weight.detach()
    evidence["first bias"] = None if first.bias is None else first.bias.detach()
    evidence["shapes"] = [list(p.shape) for p in pair.parameters()]
except Exception as err:
    evidence["error"] = f"{{type(err).__name__}}: {{err}}"[:300]
evidence["before"] = before
evidence["after"] = [p.detach() for p in layer.parameters()]
for rank in (0, 10):
    try:
        low_rank(layer, rank)
        evidence[f"rank = {{rank}}"] = "no error"
    except Exception as err:
        evidence[f"rank = {{rank}}"] = f"{{type(err).__name__}}: {{err}}"[:200]
""")
def q2_bias_size_and_ranks(evidence, reference):
    """The second layer carries the bias; r·(in + out) + out parameters; rank outside 1..min(out, in) refused;
    the two layers' product is the reference's (to 1e-4·s₁)."""
    bias = rebuild(LAYERS)["known_linear"](*BIAS_LAYER).bias.detach()
    where = "a Linear 9 → 12 at rank 4"
    if "error" in evidence:
        return False, (f"{where}: low_rank(layer, 4)(x) raised {evidence['error']} (return nn.Sequential(first, "
                       "second))")
    if not close(evidence["after"], evidence["before"], rel=0.0, abs_=0.0):
        return False, "low_rank changed the layer it was given: build new layers and leave it as it was"
    if evidence["first bias"] is not None:
        return False, (f"{where}: the first layer must have no bias (nn.Linear(9, 4, bias=False)): the original "
                       "bias is added once, by the second layer")
    if not close(evidence["at zero"], bias.tolist(), rel=1e-5, abs_=1e-6):
        return False, (f"{where}: your pair maps x = 0 to {[round(v, 3) for v in evidence['at zero']]}, but the layer "
                       f"maps it to its bias {[round(float(v), 3) for v in bias]}: copy the original bias into the "
                       "second layer")
    parameters = sum(math.prod(s) for s in evidence["shapes"])
    if parameters != 4 * (9 + 12) + 12:
        return False, (f"{where}: your pair has {parameters} parameters, expected r·(in + out) + out = "
                       f"4·(9 + 12) + 12 = {4 * 21 + 12}")
    product, expected = (torch.tensor(e["second"], dtype=torch.float64) @ torch.tensor(e["first"], dtype=torch.float64)
                         for e in (evidence, reference))
    if product.shape != expected.shape or float((product - expected).abs().max()) > 1e-4 * BIAS_LAYER[3][0]:
        return False, (f"{where}: the product of your two layers' weights differs from the reference solution's, so "
                       "this point is not earned: second.weight @ first.weight must be U_r S_r V_rᵀ, the best rank-4 "
                       "approximation")
    wrong = _not_refused(evidence, "rank", (0, 10))
    if wrong:
        return False, (f"rank = {wrong[0]} for a 12 × 9 weight must raise ValueError (rank lies in 1..min(12, 9) = "
                       f"1..9), got {wrong[1]}")
    return True, "the bias on the second layer, r·(in + out) + out parameters, ranks outside 1..min(out, in) refused"


# ---------------------------------------------------------------- Q3: Huffman code length
SEQUENCES = """
clrs = [0] * 45 + [1] * 13 + [2] * 12 + [3] * 16 + [4] * 9 + [5] * 5  # 224 bits
fibonacci = [s for s, n in enumerate([1, 1, 2, 3, 5, 8, 13, 21, 34, 55]) for _ in range(n)]  # a deep tree
shuffled = [s for s, n in [(9, 3), (2, 40), (5, 7), (0, 7), (7, 22), (3, 1)] for _ in range(n)][::-1]
quantised = torch.randn(3000, generator=torch.Generator().manual_seed(41)).mul(2.5).round().int().tolist()
lopsided = [3] * 99 + [7]
"""
TOTAL_CASES = ["clrs", "fibonacci", "shuffled", "quantised", "lopsided"]
# the labels case: four symbols twice each, so that only code that indexes by symbol (bincount, a list) fails
EDGE_CASES = {"one symbol, nine times": [5] * 9, "no symbols": [], "any int labels": [-4, 1000, 77, 3, 77, 1000, -4, 3]}


def _reference_bits(symbols: list[int]) -> int:
    counts = Counter(symbols)
    return sum(counts[s] * n for s, n in huffman_lengths(counts).items())


def _huffman_mistake(symbols: list[int], got: float) -> str | None:
    counts = Counter(symbols)
    k, n = len(counts), len(symbols)
    if k > 1 and got == math.ceil(math.log2(k)) * n:
        return (f"you gave every symbol the same {math.ceil(math.log2(k))} bits (a fixed-length code for {k} "
                "symbols): Huffman gives frequent symbols shorter codes")
    if got == sum(huffman_lengths(counts).values()):
        return ("you added the code lengths of the distinct symbols once each: weight each length by how often its "
                "symbol occurs, Σ frequency × length")
    return None


@check("q3", points=2, probe=SAFE_CALL + SEQUENCES + f"""
evidence = [safe(huffman_bits, sequence) for sequence in [{", ".join(TOTAL_CASES)}]]
""")
def q3_totals(evidence, reference):
    """Total bits on five sequences: CLRS's example, Fibonacci counts, unsorted labels, 3000 quantised weights."""
    sequences = rebuild(SEQUENCES)
    for name, got in zip(TOTAL_CASES, evidence, strict=True):
        symbols = sequences[name]
        expected = _reference_bits(symbols)
        counts = sorted(Counter(symbols).values(), reverse=True)
        where = (f"{len(symbols)} symbols with counts {counts}" if len(counts) <= 12
                 else f"{len(symbols)} quantised weights ({len(counts)} distinct values)")
        if isinstance(got, str):
            return False, f"{where}: huffman_bits raised {got}"
        if got == expected:
            continue
        mistake = _huffman_mistake(symbols, got)
        shown = f"{where}: the Huffman code takes {expected} bits in all, you returned {got:g}"
        return False, f"{shown}; {mistake}" if mistake else shown
    return True, "total Huffman code lengths: correct"


# 600 labels (negative and large ints) drawn with unequal frequencies: a total nobody derives by hand
LABELS = """
values = torch.tensor([-4, 1000, 77, 3, -123456, 10**9, 12])
drawn = torch.multinomial(torch.tensor([30.0, 20, 15, 12, 10, 8, 5]), 600, replacement=True,
                          generator=torch.Generator().manual_seed(43))
labels = values[drawn].tolist()
"""


@check("q3", points=1, probe=SAFE_CALL + LABELS + f"""
evidence = {{name: safe(huffman_bits, sequence) for name, sequence in {EDGE_CASES}.items()}}
evidence["random labels"] = safe(huffman_bits, labels)
""")
def q3_edge_cases(evidence, reference):
    """One distinct symbol costs 1 bit each (coursekit's convention); no symbols, 0; any ints are labels (and 600
    random labels total the reference's bits)."""
    for name, symbols in EDGE_CASES.items():
        got, expected = evidence[name], _reference_bits(symbols)
        if got == expected:
            continue
        if isinstance(got, str):
            return False, f"{name} {symbols}: huffman_bits raised {got}"
        mistake = _huffman_mistake(symbols, got)
        shown = f"{name} {symbols}: expected {expected} bits, got {got:g}"
        if mistake:
            return False, f"{shown}; {mistake}"
        if name.startswith("one symbol"):
            return False, (f"{shown}: with one distinct symbol the tree has no merge, but a code needs at least 1 bit "
                           "per symbol (the convention of this question and of coursekit.methods.coding)")
        if name.startswith("no symbols"):
            return False, f"{shown}: an empty sequence costs 0 bits"
        return False, f"{shown}: the symbols are labels, any ints (negative or large); count them with a Counter"
    got, where = evidence["random labels"], "600 labels drawn at random from [-4, 1000, 77, 3, -123456, 10**9, 12]"
    if isinstance(got, str):
        return False, f"{where}: huffman_bits raised {got}"
    if got != reference["random labels"]:
        mistake = _huffman_mistake(rebuild(LABELS)["labels"], got)
        return False, (f"{where}: your total, {got:g} bits, differs from the reference solution's, so this point is "
                       "not earned" + (f"; {mistake}" if mistake else ": Σ count × Huffman code length"))
    return True, "one distinct symbol (1 bit each), no symbols (0) and arbitrary int labels: correct"
