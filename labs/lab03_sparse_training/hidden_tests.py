"""Hidden checks of lab 03 (kept out of the student release; see coursekit.tooling.grading.checks).

Each probe runs in the student's kernel after their answer and sets ``evidence``; each
judge runs in the grader and compares it with the solution's evidence (``reference``).
"""

from coursekit.tooling.grading.checks import check, close, shape


@check("q1", points=2, probe="""
shapes = {"conv": (16, 3, 3, 3), "conv2": (32, 16, 3, 3), "fc": (10, 512)}
evidence = {n: float(v) for n, v in erk_densities(shapes, 0.2).items()}
""")
def q1_erk_with_a_convolution(evidence, reference):
    """ERK on a convolution's four dimensions, at 20 %."""
    if not close(evidence, reference):
        return False, (f"expected {({n: round(v, 4) for n, v in reference.items()})}, got "
                       f"{({n: round(v, 4) for n, v in evidence.items()} if isinstance(evidence, dict) else evidence)}: "
                       "p_l = sum of all dimensions / their product")
    return True, "ERK with convolutions: correct"


@check("q1", points=1, probe="""
shapes = {"big": (1000, 1000), "small": (4, 3), "mid": (50, 40)}
evidence = {n: float(v) for n, v in erk_densities(shapes, 0.05).items()}
""")
def q1_overfull_layers_become_dense(evidence, reference):
    """A layer the formula would fill beyond 1 is dense, and ε is solved again over the rest."""
    if isinstance(evidence, dict) and any(v > 1 + 1e-9 for v in evidence.values()):
        return False, "a density above 1 is impossible: make that layer dense and solve for ε again"
    if not close(evidence, reference):
        return False, f"expected {({n: round(v, 4) for n, v in reference.items()})}, got {evidence}"
    return True, "overfull layers become dense: correct"


@check("q2", points=2, probe="""
gen = torch.Generator().manual_seed(41)
w = torch.randn(6, 20, generator=gen)
keep = torch.rand(6, 20, generator=gen) < 0.4
w = w * keep
new_w, new_keep = set_step(w, keep, 0.3, torch.Generator().manual_seed(5))
evidence = {"removed": sorted((keep & ~new_keep).flatten().nonzero().squeeze(1).tolist()),
            "count": [int(keep.sum()), int(new_keep.sum())],
            "grown_were_free": bool(not (new_keep & ~keep & keep).any() and ((new_keep & ~keep) <= ~keep).all())}
""")
def q2_removes_the_right_weights(evidence, reference):
    """The ζ smallest positive and the ζ negative weights nearest zero go; the count stays."""
    if evidence["count"][0] != evidence["count"][1]:
        return False, f"the number of connections changed from {evidence['count'][0]} to {evidence['count'][1]}"
    if evidence["removed"] != reference["removed"]:
        extra = sorted(set(evidence["removed"]) - set(reference["removed"]))
        return False, (f"you removed {len(evidence['removed'])} connections, {len(extra)} of them not the expected "
                       "ones: remove the smallest positive weights and the negative ones closest to zero")
    return True, "SET removes the right connections and keeps their number"


@check("q2", points=2, probe="""
gen = torch.Generator().manual_seed(42)
w = torch.randn(8, 16, generator=gen)
keep = torch.rand(8, 16, generator=gen) < 0.3
w = w * keep
w_before, keep_before = w.clone(), keep.clone()
new_w, new_keep = set_step(w, keep, 0.5, torch.Generator().manual_seed(6))
grown = new_keep & ~keep
removed = keep & ~new_keep
evidence = {"grown": sorted(grown.flatten().nonzero().squeeze(1).tolist()),
            "grown_from_free": bool((grown & keep).sum() == 0),
            "regrew_removed": bool((grown & removed).any()),
            "values": [round(float(v), 6) for v in new_w[grown]],
            "in_bounds": bool((new_w[grown].abs() <= 1 / 4 + 1e-7).all()),
            "pruned_zero": bool((new_w[~new_keep] == 0).all()),
            "inputs_kept": bool(torch.equal(w, w_before) and torch.equal(keep, keep_before))}
""")
def q2_regrows_at_random_free_positions(evidence, reference):
    """As many new connections at free positions (randperm over them), U(−b, b) values, inputs untouched."""
    for key, message in (("inputs_kept", "set_step modified its inputs: return new tensors"),
                         ("grown_from_free", "grow only at positions that were not connected"),
                         ("pruned_zero", "removed and unconnected weights must be 0"),
                         ("in_bounds", "new values must lie in [-1/sqrt(fan_in), 1/sqrt(fan_in)]")):
        if not evidence.get(key):
            return False, message
    if evidence["regrew_removed"]:
        return False, "a connection removed in this step was regrown"
    if evidence["grown"] != reference["grown"]:
        return False, ("the new connections are not where torch.randperm(number of free positions, generator=...) "
                       "over the free positions in flattened order puts them")
    if not close(evidence["values"], reference["values"], rel=1e-5, abs_=1e-6):
        return False, "positions right, values not: draw torch.rand(count, generator=...) after the positions"
    return True, "SET regrows at random free positions: correct"


@check("q3", points=2, probe="""
gen = torch.Generator().manual_seed(43)
ws = [torch.randn(7, 6, generator=gen), torch.randn(5, 7, generator=gen), torch.randn(4, 5, generator=gen),
      torch.randn(3, 4, generator=gen)]
evidence = [s.double().tolist() for s in synflow_scores(ws)]
""")
def q3_scores_of_a_deeper_network(evidence, reference):
    """SynFlow scores of a four-layer linear network."""
    if not close(evidence, reference, rel=1e-8):
        return False, "the scores differ from |w| · (1ᵀ|W_L|…|W_l+1|)_j · (|W_l-1|…|W_1| 1)_i"
    return True, "SynFlow scores: correct"


@check("q3", points=1, probe="""
gen = torch.Generator().manual_seed(44)
ws = [torch.randn(4, 3, generator=gen), torch.randn(2, 4, generator=gen)]
ws[0][1] = 0.0  # hidden unit 1 receives nothing
scores = synflow_scores(ws)
evidence = {"scores": [s.detach() for s in scores], "dtype": str(scores[0].dtype)}
""")
def q3_no_flow_through_a_dead_unit(evidence, reference):
    """A unit with no incoming weight passes no flow: its outgoing scores are 0; float64. The judge sums the
    dead unit's outgoing scores from the raw scores, which must also be the reference's."""
    if evidence["dtype"] != "torch.float64":
        return False, f"compute in float64 (R sums over many paths), got {evidence['dtype']}"
    scores = evidence["scores"]
    if not (isinstance(scores, list) and [shape(s) for s in scores] == [shape(s) for s in reference["scores"]]):
        return False, (f"return one score tensor per weight, of shapes {[shape(s) for s in reference['scores']]}, "
                       f"got {[shape(s) for s in scores] if isinstance(scores, list) else scores}")
    dead_out = sum(abs(row[1]) for row in scores[1])
    if dead_out != 0:
        return False, "a hidden unit with no incoming weights carries no flow: its outgoing scores must be 0"
    if not close(scores, reference["scores"], rel=1e-8):
        return False, ("no flow through the dead unit, but your scores on this network differ from the reference "
                       "solution's, so this point is not earned: S = |w| · (1ᵀ|W_L|…|W_l+1|)_j · (|W_l-1|…|W_1| 1)_i")
    return True, "no flow through a dead unit"
