"""Hidden checks of lab 02 (kept out of the student release; see coursekit.tooling.grading.checks).

Each probe runs in the student's kernel after their answer and sets ``evidence``; each
judge runs in the grader and compares it with the solution's evidence (``reference``).
Scores are floats, so judges compare within a tolerance.
"""

from coursekit.tooling.grading.checks import check, close

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
evidence = {"unchanged": all(torch.equal(before[n], p) for n, p in net.named_parameters()),
            "detached": not any(t.requires_grad for t in s.values()),
            "nonnegative": all(bool((t >= 0).all()) for t in s.values())}
""")
def q1_leaves_the_model_alone(evidence, reference):
    """The weights are not changed; the scores are detached and ≥ 0."""
    for key, message in (("unchanged", "taylor_scores changed the model's weights"),
                         ("detached", "return detached tensors (.detach())"),
                         ("nonnegative", "scores are absolute values |g·w|, never negative")):
        if not evidence.get(key):
            return False, message
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
evidence = {"original_unchanged": all(torch.equal(before[k], v) for k, v in net.state_dict().items()),
            "rows_zero": bool((pruned[1].weight[units] == 0).all() and (pruned[1].bias[units] == 0).all()),
            "columns_zero": bool((pruned[3].weight[:, units] == 0).all()),
            "others_kept": bool(torch.equal(pruned[1].weight[3], net[1].weight[3])
                                and torch.equal(pruned[3].weight[:, 3], net[3].weight[:, 3]))}
""")
def q3_structure(evidence, reference):
    """A new model; removed rows, biases and next columns are 0; other units untouched."""
    for key, message in (("original_unchanged", "mean_replace changed the model it was given: work on a copy"),
                         ("rows_zero", "the removed units' weight rows and biases must be 0"),
                         ("columns_zero", "the next layer's columns of the removed units must be 0"),
                         ("others_kept", "units that were not removed must keep their weights")):
        if not evidence.get(key):
            return False, message
    return True, "the removed units are gone and the rest is untouched"
