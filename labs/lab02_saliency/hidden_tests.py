"""Hidden checks of lab 02 (kept out of the student release; see coursekit.tooling.grading.checks).

Each probe runs in the student's kernel after their answer and sets ``evidence``; each
judge runs in the grader and compares it with the solution's evidence (``reference``).
Scores are floats, so judges compare within a tolerance.
"""

from coursekit.tooling.grading.checks import check, close, flatten, shape

TOLERANCE = {"rel": 1e-4, "abs_": 1e-6}  # float32 scores computed by the student's code


@check("q1", points=3, probe="""
net = small_net(5, hidden=(12, 8))
gen = torch.Generator().manual_seed(21)
xb, yb = ds.x_train[100:260], ds.y_train[100:260]
net.train()  # the function must switch to eval mode itself
s = taylor_scores(net, xb, yb)
evidence = {"names": sorted(s), "scores": {n: s[n].double().tolist() for n in sorted(s)}}
""")
def q1_taylor_on_a_deeper_net(evidence, reference):
    """|g·w| on an MLP with two hidden layers and another batch."""
    if evidence["names"] != reference["names"]:
        return False, f"score the weights {reference['names']}, you returned {evidence['names']}"
    wrong = [n for n in reference["names"]
             if not close(evidence["scores"][n], reference["scores"][n], **TOLERANCE)]
    if wrong:
        return False, (f"the scores of {wrong} differ from |dL/dw · w| with L the mean cross-entropy in eval mode "
                       "(not the sum, not the gradient alone)")
    return True, "Taylor scores on a deeper network: correct"


@check("q1", points=1, probe="""
net = small_net(6)
before = {n: p.detach().clone() for n, p in net.named_parameters()}
s = taylor_scores(net, ds.x_train[:64], ds.y_train[:64])
evidence = {"before": before, "after": {n: p.detach() for n, p in net.named_parameters()},
            "scores": {n: t.detach() for n, t in s.items()},
            "detached": not any(t.requires_grad for t in s.values())}
""")
def q1_leaves_the_model_alone(evidence, reference):
    """The weights are not changed; the scores are detached and ≥ 0 (the judge looks at the raw weights and
    scores), and they are the reference's on this network."""
    after, scores = evidence["after"], evidence["scores"]
    if not (isinstance(after, dict) and after == evidence["before"] and close(after, reference["after"])):
        return False, "taylor_scores changed the model's weights"
    if not evidence.get("detached"):
        return False, "return detached tensors (.detach())"
    if not isinstance(scores, dict) or sorted(scores) != sorted(reference["scores"]):
        return False, f"return one score tensor per weight {sorted(reference['scores'])}"
    if any(not (isinstance(v, int | float) and v >= 0) for t in scores.values() for v in flatten(t)):
        return False, "scores are absolute values |g·w|, never negative"
    if not close(scores, reference["scores"], **TOLERANCE):
        return False, ("the model is untouched, but your scores on this network differ from the reference "
                       "solution's, so this point is not earned: see the other Q1 check")
    return True, "the model is untouched and the scores are plain, non-negative tensors"


@check("q2", points=1, probe="""
gen = torch.Generator().manual_seed(31)
w = {"p": torch.randn(5, 4, generator=gen), "q": torch.randn(7, generator=gen)}
h = {"p": torch.rand(5, 4, generator=gen) * 3, "q": torch.rand(7, generator=gen)}
out = obd_saliency(w, h)
evidence = {n: out[n].double().tolist() for n in sorted(out)}
""")
def q2_obd_on_new_tensors(evidence, reference):
    """½·h·w² on two tensors of other shapes."""
    if not close(evidence, reference, **TOLERANCE):
        return False, "½·h·w² entry by entry differs from the reference on new tensors"
    return True, "OBD saliency: correct"


@check("q2", points=1, probe="""
w = {"r": torch.tensor([2.0, -1.0, 3.0, 0.5])}
h = {"r": torch.tensor([-0.3, 2.0, -5.0, 1.0])}
evidence = obd_saliency(w, h)["r"].double().tolist()
""")
def q2_negative_hessian_entries(evidence, reference):
    """Negative Hessian estimates count as 0: no saliency below 0."""
    if not close(evidence, reference, **TOLERANCE):
        return False, f"with h = [-0.3, 2, -5, 1] and w = [2, -1, 3, 0.5] expected {reference}, got {evidence}"
    return True, "negative Hessian estimates are treated as 0"


@check("q3", points=2, probe="""
net = small_net(7, hidden=(20,))
xb = ds.x_train[200:600]
units = [1, 4, 8, 13, 19]
with torch.no_grad():
    dense_mean = net(xb).mean(0)
pruned = mean_replace(net, 1, units, xb)
with torch.no_grad():
    evidence = {"bias": pruned[3].bias.double().tolist(),
                "mean_shift": float((pruned(xb).mean(0) - dense_mean).abs().max())}
""")
def q3_mean_is_kept(evidence, reference):
    """The next bias absorbs the removed units' means: the mean output over x is unchanged."""
    if not evidence["mean_shift"] < 1e-4:
        return False, (f"the next layer's mean pre-activation over x moved by {evidence['mean_shift']:.4g}: fold "
                       "W[:, j]·mean(a_j), with a_j after the ReLU, into the next bias")
    if not close(evidence["bias"], reference["bias"], rel=1e-4, abs_=1e-5):
        return False, "the mean is kept but the next bias differs from the reference"
    return True, "mean replacement keeps the next layer's mean: correct"


@check("q3", points=2, probe="""
net = small_net(8, hidden=(16,))
before = {k: v.clone() for k, v in net.state_dict().items()}
units = [0, 2, 15]
pruned = mean_replace(net, 1, units, ds.x_train[:300])
evidence = {"units": units, "before": before, "after": dict(net.state_dict()),
            "pruned": {k: pruned.state_dict()[k] for k in ("1.weight", "1.bias", "3.weight")}}
""")
def q3_structure(evidence, reference):
    """A new model; removed rows, biases and next columns are 0; other units untouched (the judge computes all
    this from the raw weights before and after the call, and of the returned model, which must be the
    reference's; its next bias is the other Q3 check's)."""
    units, before, pruned = reference["units"], evidence["before"], evidence["pruned"]
    if not (evidence["after"] == before and close(before, reference["before"])):
        return False, "mean_replace changed the model it was given: work on a copy"
    if not (isinstance(pruned, dict) and sorted(pruned) == sorted(reference["pruned"])
            and all(shape(pruned[k]) == shape(v) for k, v in reference["pruned"].items())):
        return False, "return a model like the one given (same layers, same shapes), with the units zeroed"
    rows, bias, columns = pruned["1.weight"], pruned["1.bias"], pruned["3.weight"]
    if not (all(v == 0 for u in units for v in rows[u]) and all(bias[u] == 0 for u in units)):
        return False, "the removed units' weight rows and biases must be 0"
    if not all(row[u] == 0 for row in columns for u in units):
        return False, "the next layer's columns of the removed units must be 0"
    kept = [j for j in range(len(bias)) if j not in units]
    if not (all(rows[j] == before["1.weight"][j] and bias[j] == before["1.bias"][j] for j in kept)
            and all(row[j] == old[j] for row, old in zip(columns, before["3.weight"], strict=True) for j in kept)):
        return False, "units that were not removed must keep their weights"
    if not close(pruned, reference["pruned"], rel=1e-4, abs_=1e-5):
        return False, ("your pruned model's weights differ from the reference solution's, so this point is not "
                       "earned")
    return True, "the removed units are gone and the rest is untouched"
