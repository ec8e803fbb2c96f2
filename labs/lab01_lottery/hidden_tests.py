"""Hidden checks of lab 01 (kept out of the student release; see coursekit.tooling.grading.checks).

Each probe runs in the student's kernel after their answer and sets ``evidence``; each
judge runs in the grader and compares it with the solution's evidence (``reference``).
"""

from coursekit.tooling.grading.checks import check


def _same(evidence, reference, what):
    if evidence == reference:
        return True, f"{what}: correct"
    return False, f"{what}: your result differs from the reference solution's"


@check("q1", points=2, probe="""
gen = torch.Generator().manual_seed(11)
w = {"x": torch.randn(30, 20, generator=gen), "y": torch.randn(20, 7, generator=gen) * 0.3}
m = global_magnitude_mask(w, 0.3)
evidence = {n: torch.nonzero(m[n].flatten()).flatten().tolist() for n in sorted(m)}
""")
def q1_global_mask_on_new_tensors(evidence, reference):
    """The mask on tensors of other shapes and scales, at density 0.3."""
    if isinstance(evidence, dict) and reference and sorted(evidence) == sorted(reference):
        kept = {n: len(v) for n, v in evidence.items()}
        want = {n: len(v) for n, v in reference.items()}
        if kept != want and sum(kept.values()) == sum(want.values()):
            return False, (f"you keep {kept} weights per tensor, the global threshold keeps {want}: "
                           "rank all tensors together, not each on its own")
    return _same(evidence, reference, "global mask at density 0.3 on two new tensors")


@check("q1", points=1, probe="""
gen = torch.Generator().manual_seed(12)
w = {"p": torch.randn(7, 9, generator=gen), "q": torch.randn(13, generator=gen)}
m = global_magnitude_mask(w, 0.05)
evidence = {"dtypes": sorted({str(m[n].dtype) for n in m}), "shapes": {n: list(m[n].shape) for n in sorted(m)},
            "kept": int(sum(int(m[n].sum()) for n in m))}
""")
def q1_types_shapes_and_count(evidence, reference):
    """Bool masks of the right shapes, round(density × total) weights kept (here 4 of 76)."""
    if evidence.get("dtypes") != ["torch.bool"]:
        return False, f"masks must be bool tensors, yours are {evidence.get('dtypes')}"
    if evidence.get("shapes") != reference["shapes"]:
        return False, f"mask shapes {evidence.get('shapes')} should be {reference['shapes']}"
    if evidence.get("kept") != reference["kept"]:
        return False, f"at density 0.05 keep round(0.05 × 76) = {reference['kept']}, you kept {evidence.get('kept')}"
    return True, "types, shapes and count: correct"


@check("q2", points=2, probe="""
torch.manual_seed(0)
net = small_net(3)
w = {n: p for n, p in net.named_parameters() if n.endswith("weight")}
mask = {n: torch.rand(p.shape, generator=torch.Generator().manual_seed(5)) < 0.25 for n, p in w.items()}
zero_pruned_(net, mask)
before = {n: p.detach().clone() for n, p in net.named_parameters()}
fit(net, ds, epochs=1, batch_size=32, optimizer="sgd", momentum=0.9, lr=0.05, progress=False,
    hooks=[lambda ctx: zero_pruned_(ctx.model, mask)])
params = dict(net.named_parameters())
evidence = {"pruned_nonzero": int(sum(int((params[n][~mask[n]] != 0).sum()) for n in mask)),
            "kept_moved": float(sum(float((params[n] - before[n])[mask[n]].abs().sum()) for n in mask)),
            "grad_enabled": bool(torch.is_grad_enabled())}
""")
def q2_zero_through_momentum_training(evidence, reference):
    """After SGD with momentum and your hook, every pruned weight is exactly 0 and the rest trained."""
    if evidence["pruned_nonzero"]:
        return False, f"{evidence['pruned_nonzero']} pruned weights were not zero after training with momentum"
    if not evidence["kept_moved"] > 0:
        return False, "the kept weights did not train: zero only the pruned entries"
    if not evidence["grad_enabled"]:
        return False, "your function switched gradients off globally; use `with torch.no_grad():`"
    return True, "pruned weights stay at zero through momentum training, the others train"


@check("q3", points=3, probe="""
net = small_net(4)
init = {n: p.detach().clone() for n, p in net.named_parameters()}
gen = torch.Generator().manual_seed(6)
with torch.no_grad():
    for p in net.parameters():
        p.add_(torch.randn(p.shape, generator=gen) * 0.2)  # stands in for training
mask = {n: torch.rand(p.shape, generator=gen) < 0.6 for n, p in net.named_parameters() if n.endswith("weight")}
new = imp_round(net, init, mask, 0.3)
params = dict(net.named_parameters())
evidence = {"kept": {n: torch.nonzero(new[n].flatten()).flatten().tolist() for n in sorted(new)},
            "still_pruned_ok": bool(all(not (new[n] & ~mask[n]).any() for n in mask)),
            "weights": {n: round(float(params[n].double().sum()), 6) for n in sorted(params)}}
""")
def q3_imp_round(evidence, reference):
    """New mask from trained magnitudes among survivors, everything reset to init, pruned zeroed."""
    if not evidence["still_pruned_ok"]:
        return False, "a weight pruned before came back: prune only among the weights the mask still keeps"
    if evidence["kept"] != reference["kept"]:
        kept = sum(len(v) for v in evidence["kept"].values())
        want = sum(len(v) for v in reference["kept"].values())
        return False, (f"your new mask keeps {kept} weights, the reference {want}" if kept != want else
                       "your new mask keeps the right number but not the largest trained magnitudes")
    if evidence["weights"] != reference["weights"]:
        return False, "the mask is right, but the weights are not init × new mask (biases back to init too)"
    return True, "one IMP round: correct mask and reset weights"


@check("q4", points=2, probe="""
net = small_net(7)
init = {n: p.detach().clone() for n, p in net.named_parameters()}
keep = torch.rand(64, 64, generator=torch.Generator().manual_seed(8)) < 0.5
random_reinit_(net, {"1.weight": keep}, torch.Generator().manual_seed(9))
w = net[1].weight.detach()
bound = 1 / 64 ** 0.5
evidence = {"pruned_nonzero": int((w[~keep] != 0).sum()),
            "out_of_bounds": int((w[keep].abs() > bound + 1e-7).sum()),
            "std_over_uniform_std": float(w[keep].std() / (bound / 3 ** 0.5)),
            "same_as_init": float((w[keep] == init["1.weight"][keep]).float().mean())}
""")
def q4_random_reinit(evidence, reference):
    """Pruned weights 0; survivors new values, uniform on [-1/√fan_in, 1/√fan_in]."""
    if evidence["pruned_nonzero"]:
        return False, f"{evidence['pruned_nonzero']} pruned weights are not zero"
    if evidence["out_of_bounds"]:
        return False, f"{evidence['out_of_bounds']} new values lie outside [-b, b], b = 1/sqrt(fan_in)"
    if evidence["same_as_init"] > 0.5:
        return False, "the kept weights still hold their initial values: draw new ones"
    if not 0.85 < evidence["std_over_uniform_std"] < 1.15:
        return False, (f"the new values' spread is {evidence['std_over_uniform_std']:.2f}× that of "
                       "U(-b, b): use the uniform distribution on the whole interval")
    return True, "random re-initialisation: correct"
