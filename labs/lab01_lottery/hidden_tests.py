"""Hidden checks of lab 01 (kept out of the student release; see coursekit.tooling.grading.checks).

Each probe runs in the student's kernel after their answer and sets ``evidence`` to the raw
results of the student's functions; each judge runs in the grader, computes what it needs
from them (counts, bounds, spreads) and compares with the solution's evidence
(``reference``), which also supplies the inputs (masks, initial weights) it trusts.
"""

import statistics

from coursekit.tooling.grading.checks import check, close, flatten, shape


def _same(evidence, reference, what):
    if evidence == reference:
        return True, f"{what}: correct"
    return False, f"{what}: your result differs from the reference solution's"


def _count(mask):
    """How many entries of a mask sent as nested lists are True."""
    return sum(v is True for v in flatten(mask))


@check("q1", points=2, probe="""
gen = torch.Generator().manual_seed(11)
w = {"x": torch.randn(30, 20, generator=gen), "y": torch.randn(20, 7, generator=gen) * 0.3}
evidence = global_magnitude_mask(w, 0.3)
""")
def q1_global_mask_on_new_tensors(evidence, reference):
    """The mask on tensors of other shapes and scales, at density 0.3."""
    if not isinstance(evidence, dict) or sorted(evidence) != sorted(reference):
        return False, f"return one mask per name {sorted(reference)}"
    kept = {n: _count(v) for n, v in evidence.items()}
    want = {n: _count(v) for n, v in reference.items()}
    if kept != want and sum(kept.values()) == sum(want.values()):
        return False, (f"you keep {kept} weights per tensor, the global threshold keeps {want}: "
                       "rank all tensors together, not each on its own")
    return _same(evidence, reference, "global mask at density 0.3 on two new tensors")


@check("q1", points=1, probe="""
gen = torch.Generator().manual_seed(12)
w = {"p": torch.randn(7, 9, generator=gen), "q": torch.randn(13, generator=gen)}
evidence = global_magnitude_mask(w, 0.05)
""")
def q1_types_shapes_and_count(evidence, reference):
    """Bool masks of the right shapes, round(density × total) weights kept (here 4 of 76)."""
    if not isinstance(evidence, dict) or sorted(evidence) != sorted(reference):
        return False, f"return one mask per name {sorted(reference)}"
    if not all(isinstance(v, bool) for m in evidence.values() for v in flatten(m)):
        return False, "masks must be bool tensors (True: kept)"
    shapes, want = ({n: shape(m[n]) for n in sorted(m)} for m in (evidence, reference))
    if shapes != want:
        return False, f"mask shapes {shapes} should be {want}"
    kept, count = (sum(_count(v) for v in m.values()) for m in (evidence, reference))
    if kept != count:
        return False, f"at density 0.05 keep round(0.05 × 76) = {count}, you kept {kept}"
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
evidence = {"mask": mask, "before": before, "after": {n: p.detach() for n, p in net.named_parameters()},
            "grad_enabled": torch.is_grad_enabled()}
""")
def q2_zero_through_momentum_training(evidence, reference):
    """After SGD with momentum and your hook, every pruned weight is exactly 0 and the rest trained
    as the reference's did (the judge counts, from the raw weights, on the reference's mask)."""
    mask, after, before = reference["mask"], evidence["after"], evidence["before"]
    pruned_nonzero = sum(a != 0 for n in mask for a, k in zip(flatten(after[n]), flatten(mask[n]), strict=True)
                         if not k)
    if pruned_nonzero:
        return False, f"{pruned_nonzero} pruned weights were not zero after training with momentum"
    moved = sum(abs(a - b) for n in mask for a, b, k in zip(flatten(after[n]), flatten(before[n]),
                                                            flatten(mask[n]), strict=True) if k)
    if not moved > 0:
        return False, "the kept weights did not train: zero only the pruned entries"
    if evidence["grad_enabled"] is not True:
        return False, "your function switched gradients off globally; use `with torch.no_grad():`"
    if not (close(before, reference["before"]) and close(after, reference["after"], rel=1e-3, abs_=1e-4)):
        return False, ("the weights differ from the reference's after the same training: zero exactly the "
                       "pruned entries, in place, and change nothing else")
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
evidence = {"mask": mask, "new": new, "weights": {n: p.detach() for n, p in net.named_parameters()}}
""")
def q3_imp_round(evidence, reference):
    """New mask from trained magnitudes among survivors, everything reset to init, pruned zeroed."""
    mask, new = reference["mask"], evidence["new"]
    if not isinstance(new, dict) or sorted(new) != sorted(mask):
        return False, f"return one mask per name {sorted(mask)}"
    if any(k and not m for n in mask for k, m in zip(flatten(new[n]), flatten(mask[n]), strict=True)):
        return False, "a weight pruned before came back: prune only among the weights the mask still keeps"
    if new != reference["new"]:
        kept, want = (sum(_count(v) for v in m.values()) for m in (new, reference["new"]))
        return False, (f"your new mask keeps {kept} weights, the reference {want}" if kept != want else
                       "your new mask keeps the right number but not the largest trained magnitudes")
    if not close(evidence["weights"], reference["weights"]):
        return False, "the mask is right, but the weights are not init × new mask (biases back to init too)"
    return True, "one IMP round: correct mask and reset weights"


@check("q4", points=2, probe="""
net = small_net(7)
init = net[1].weight.detach().clone()
keep = torch.rand(64, 64, generator=torch.Generator().manual_seed(8)) < 0.5
random_reinit_(net, {"1.weight": keep}, torch.Generator().manual_seed(9))
evidence = {"keep": keep, "init": init, "w": net[1].weight.detach()}
""")
def q4_random_reinit(evidence, reference):
    """Pruned weights 0; survivors new values, uniform on [-1/√fan_in, 1/√fan_in] (the judge
    measures the raw weights, on the reference's mask and initial weights)."""
    keep, init = flatten(reference["keep"]), flatten(reference["init"])
    w = flatten(evidence["w"])
    if len(w) != len(keep) or not all(isinstance(v, float) for v in w):
        return False, "the layer's weights changed shape or type"
    bound = 1 / 64 ** 0.5
    kept = [v for v, k in zip(w, keep, strict=True) if k]
    pruned_nonzero = sum(v != 0 for v, k in zip(w, keep, strict=True) if not k)
    if pruned_nonzero:
        return False, f"{pruned_nonzero} pruned weights are not zero"
    out_of_bounds = sum(abs(v) > bound + 1e-7 for v in kept)
    if out_of_bounds:
        return False, f"{out_of_bounds} new values lie outside [-b, b], b = 1/sqrt(fan_in)"
    same = sum(v == i for v, i, k in zip(w, init, keep, strict=True) if k) / len(kept)
    if same > 0.5:
        return False, "the kept weights still hold their initial values: draw new ones"
    spread = statistics.stdev(kept) / (bound / 3 ** 0.5)
    if not 0.85 < spread < 1.15:
        return False, (f"the new values' spread is {spread:.2f}× that of U(-b, b): use the uniform "
                       "distribution on the whole interval")
    return True, "random re-initialisation: correct"
