"""Hidden checks of lab 06 (kept out of the student release; see coursekit.tooling.grading.checks).

Each probe runs in the student's kernel after their answer and sets ``evidence``; each
judge runs in the grader. Q1's judges compare with the solution's evidence (``reference``)
and build the probe's network again here (``rebuild``) to recognise the usual mistakes with
coursekit's empirical Fisher (``coursekit.methods.spectra.fisher_trace``); Q2's compute the
expected blur from the probe's recipe; Q3's compare with coursekit's reference
(``coursekit.methods.slimming.early_bird_epoch``) on the same masks. Each judge also
recognises the common mistakes and says so. The checks of side effects and edge cases also need
a raw result of the student's function on a valid input (a trace, blurred images, an epoch) that
matches the reference's: evidence written by hand cannot pass them.
"""

import torch
import torch.nn.functional as F

from coursekit.methods.slimming import early_bird_epoch as reference_early_bird_epoch
from coursekit.methods.spectra import fisher_trace as coursekit_fisher_trace
from coursekit.tooling.grading.checks import SAFE_CALL, check, close, error_name, rebuild

# a probe helper: the function's value, or the error it raised, as text
ATTEMPT = """
def attempt(f, *args):
    try:
        return f(*args), None
    except Exception as err:
        return None, f"{type(err).__name__}: {err}"[:200]
"""


def _shown(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------- Q1: the trace of the true Fisher
SMALL = """
net = models.build("mlp", (6,), 4, seed=61, hidden=(5,), activation="tanh").double()
x = 2 * torch.randn(10, 6, generator=torch.Generator().manual_seed(61), dtype=torch.float64)
"""
DIGIT_SIZED = """
net = models.build("mlp", (1, 8, 8), 10, seed=62, hidden=(8,))  # float32, ReLU
x = torch.randn(24, 1, 8, 8, generator=torch.Generator().manual_seed(62))
"""
TRACES = "import math\n" + SAFE_CALL + """
evidence = {"value": safe(fisher_trace, net, x), "again": safe(fisher_trace, net, x),
            "singles": [safe(fisher_trace, net, x[i:i + 1]) for i in range(len(x))]}
"""


def _mistaken_traces(recipe: str) -> dict[str, float]:
    """What the usual mistakes give on the probe's network, computed with coursekit's empirical Fisher."""
    t = rebuild("from coursekit import models\n" + recipe)
    net, x = t["net"], t["x"]
    with torch.no_grad():
        probs = F.softmax(net(x), dim=1)
    classes = probs.shape[1]

    def empirical(labels: torch.Tensor) -> float:
        return float(coursekit_fisher_trace(net, x, labels, kind="empirical").sum())

    every_class = [empirical(torch.full((len(x),), c)) for c in range(classes)]
    return {"argmax": empirical(probs.argmax(1)), "unweighted": sum(every_class),
            "class mean": sum(every_class) / classes}


MISTAKES = {
    "argmax": "you used one label per example, the most likely class argmax p(c|x), as the empirical Fisher "
              "uses the data's label (Kunstner et al. 2019): the true Fisher is the expectation over all C "
              "classes, Σ_c p(c|x)·||∇ log p(c|x)||²",
    "unweighted": "you summed ||∇ log p(c|x)||² over the classes without weighting them: each class counts "
                  "with its probability p(c|x) under the model (an expectation, not a sum)",
    "class mean": "you averaged ||∇ log p(c|x)||² over the classes with equal weights 1/C: each class counts "
                  "with its probability p(c|x) under the model",
}


def _judge_trace(evidence: dict, reference: dict, recipe: str, network: str, rel: float) -> tuple[bool, str]:
    """The value of tr F on the probe's network, with the mistake it shows if it is wrong."""
    value, expected = evidence["value"], reference["value"]
    if isinstance(value, str):
        return False, f"on {network} your fisher_trace gave {value}"
    if isinstance(evidence["again"], str) or not close(evidence["again"], value, rel=1e-9, abs_=0.0):
        return False, (f"on {network} two calls on the same inputs gave {_shown(value)} and "
                       f"{_shown(evidence['again'])}: sampling classes estimates tr F; compute the expectation "
                       "exactly, summing over every class c weighted by p(c|x)")
    if close(value, expected, rel=rel, abs_=0.0):
        return True, f"tr F on {network}: correct"
    shown = f"on {network} expected tr F = {expected:.6g}, got {value:.6g}"
    singles = evidence["singles"]
    if close(singles, reference["singles"], rel=rel, abs_=0.0):
        n = len(singles)
        if close(value, sum(singles), rel=rel, abs_=0.0):
            return False, (f"{shown}: the sum of the {n} examples' traces, not their mean; average over the "
                           "examples (1/N Σ_n)")
        return False, (f"{shown}. Your trace is right for a single example but the batch's is not the mean "
                       f"of its {n} examples' ({sum(singles) / n:.6g}): you squared the gradient of a batch "
                       "mean; tr F needs per-example gradients, squared one example at a time, then "
                       "averaged (the square of a mean is not the mean of the squares)")
    for name, mistaken in _mistaken_traces(recipe).items():
        if close(value, mistaken, rel=1e-4, abs_=0.0):
            return False, f"{shown}: {MISTAKES[name]}"
    return False, f"{shown} (Σ over all parameters, weights and biases, of the expected squared gradient)"


@check("q1", points=2, probe=SMALL + TRACES)
def q1_true_fisher_exactly(evidence, reference):
    """tr F on an MLP 6 → 5 → 4 (tanh, float64) at 10 inputs, to a relative 1e-6; each example alone too."""
    return _judge_trace(evidence, reference, SMALL, "an MLP 6 → 5 → 4 (tanh, float64) at 10 inputs", 1e-6)


@check("q1", points=1, probe=DIGIT_SIZED + TRACES)
def q1_another_network(evidence, reference):
    """tr F on a float32 MLP 64 → 8 → 10 (ReLU) at 24 digit-sized inputs, to a relative 1e-4."""
    return _judge_trace(evidence, reference, DIGIT_SIZED,
                        "a float32 MLP 64 → 8 → 10 (ReLU) at 24 inputs of shape 1 × 8 × 8", 1e-4)


@check("q1", points=1, probe=ATTEMPT + SAFE_CALL + """
net = models.build("mlp", (4,), 3, seed=63, hidden=(3,))
net.train()
before = [p.detach().clone() for p in net.parameters()]
x = torch.randn(5, 4, generator=torch.Generator().manual_seed(63))
value, error = attempt(fisher_trace, net, x)
evidence = {"error": error} if error is not None else {
    "type": type(value).__name__, "one example": safe(fisher_trace, net, x[:1])}
evidence["before"] = before
evidence["after"] = [p.detach() for p in net.parameters()]
evidence["grads"] = [None if p.grad is None else p.grad.detach() for p in net.parameters()]
""")
def q1_leaves_the_model_alone(evidence, reference):
    """A Python float; the weights and their .grad untouched; tr F of one example as the reference's (rel. 1e-4)."""
    where = "on an MLP 4 → 3 → 3 (float32)"
    if evidence.get("error"):
        return False, f"{where} your fisher_trace raised {evidence['error']}"
    if evidence["type"] != "float":
        return False, f"return tr F as a Python float (float(...)), got a {evidence['type']}"
    if not close(evidence["after"], evidence["before"], rel=0.0, abs_=0.0):
        return False, "fisher_trace changed the model's weights"
    if any(g is not None for g in evidence["grads"]):
        return False, ("fisher_trace left gradients in the parameters' .grad: use torch.autograd.grad or "
                       "torch.func, not .backward()")
    one = evidence["one example"]
    if isinstance(one, str):
        return False, f"{where}, for one example x[:1], your fisher_trace gave {one}"
    if not close(one, reference["one example"], rel=1e-4, abs_=0.0):
        return False, (f"{where} your tr F of one example, {_shown(one)}, differs from the reference solution's, so "
                       "this point (leaving the model alone while computing tr F) is not earned: "
                       "Σ_c p(c|x)·||∇ log p(c|x)||² over all parameters")
    return True, "a Python float; the model's weights and .grad left alone"


# ---------------------------------------------------------------- Q2: the blur deficit
IMAGES = """
gen = torch.Generator().manual_seed(81)
square = torch.randn(2, 3, 8, 8, generator=gen)
wide = torch.randn(3, 2, 6, 9, generator=gen, dtype=torch.float64)
one = torch.rand(1, 1, 12, 12, generator=gen)
"""
BLUR_CASES = [("square", 2), ("square", 4), ("wide", 3), ("one", 6), ("one", 12), ("one", 1)]


def _block_blur(images: torch.Tensor, factor: int) -> torch.Tensor:
    n, c, h, w = images.shape
    means = images.reshape(n, c, h // factor, factor, w // factor, factor).mean(dim=(3, 5))
    return means.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


BLUR_MISTAKES = {
    "bilinear": (lambda x, f: F.interpolate(F.avg_pool2d(x, f), size=x.shape[-2:], mode="bilinear",
                                            align_corners=False),
                 "you up-sampled bilinearly (as lecture 04's critical.blur does); this question asks for "
                 "nearest up-sampling: every pixel of a block holds exactly the block's mean"),
    "bilinear, corners aligned": (lambda x, f: F.interpolate(F.avg_pool2d(x, f), size=x.shape[-2:],
                                                             mode="bilinear", align_corners=True),
                                  "you up-sampled bilinearly; this question asks for nearest up-sampling: every "
                                  "pixel of a block holds exactly the block's mean"),
    "max": (lambda x, f: F.interpolate(F.max_pool2d(x, f), scale_factor=f, mode="nearest"),
            "you kept each block's maximum (max pooling): down-sample by the block's mean (average pooling)"),
}


@check("q2", points=2, probe=ATTEMPT + IMAGES + f"""
named = {{"square": square, "wide": wide, "one": one}}
evidence = []
for name, factor in {BLUR_CASES}:
    out, error = attempt(blur, named[name].clone(), factor)
    if error is not None:
        evidence.append(error)
    elif not isinstance(out, torch.Tensor):
        evidence.append(f"not a tensor but a {{type(out).__name__}}")
    else:
        evidence.append({{"shape": list(out.shape), "dtype": str(out.dtype),
                          "values": out.detach().double().flatten().tolist()}})
""")
def q2_block_means(evidence, reference):
    """Block means repeated over their blocks: 8×8 by 2 and 4, a 6×9 float64 batch by 3, 12×12 by 6, 12 and 1."""
    t = rebuild(IMAGES)
    for (name, factor), got in zip(BLUR_CASES, evidence, strict=True):
        images = t[name]
        case = f"{'×'.join(map(str, images.shape))} images ({images.dtype}), factor {factor}"
        if isinstance(got, str):
            return False, f"for {case} your blur gave {got}"
        expected = _block_blur(images, factor)
        small = [*images.shape[:2], images.shape[2] // factor, images.shape[3] // factor]
        if got["shape"] != list(images.shape):
            if got["shape"] == small:
                return False, (f"for {case} you returned the down-sampled images, of shape {small}: up-sample "
                               "them back to the input's shape by repeating each mean over its block")
            return False, f"for {case} expected the input's shape {list(images.shape)}, got {got['shape']}"
        if got["dtype"] != str(images.dtype):
            return False, f"for {case} return the input's dtype, {images.dtype}, got {got['dtype']}"
        if close(got["values"], expected.double().flatten().tolist(), rel=1e-5, abs_=1e-6):
            continue
        for mistake, why in BLUR_MISTAKES.values():
            if close(got["values"], mistake(images, factor).double().flatten().tolist(), rel=1e-5, abs_=1e-6):
                return False, f"for {case}: {why}"
        diff = (torch.tensor(got["values"], dtype=torch.float64) - expected.double().flatten()).abs()
        where = int(diff.argmax())
        return False, (f"for {case} each pixel must hold the mean of its {factor} × {factor} block; the largest "
                       f"difference is {float(diff[where]):.3g} at flat index {where} (expected "
                       f"{float(expected.flatten()[where]):.5g})")
    return True, "block averages, up-sampled by repetition: correct for square and non-square images"


BAD_FACTORS = [(8, 8, 3), (8, 6, 4), (9, 6, 2)]
# a factor as large as the image is accepted: one block, each channel its mean (the same with any up-sampling)
WHOLE = "2×3×6×6 images, factor 6"


@check("q2", points=1, probe=ATTEMPT + f"""
evidence = {{}}
for h, w, factor in {BAD_FACTORS}:
    out, error = attempt(blur, torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(82)), factor)
    evidence[f"{{h}}×{{w}}, factor {{factor}}"] = error if error is not None else (
        f"no error (returned shape {{list(out.shape)}})" if isinstance(out, torch.Tensor) else "no error")
out, error = attempt(blur, torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(83)), 6)
evidence[{WHOLE!r}] = error if error is not None else (
    out.detach() if isinstance(out, torch.Tensor) else f"not a tensor but a {{type(out).__name__}}")
""")
def q2_refuses_a_factor_that_does_not_divide(evidence, reference):
    """Factor 3 on 8×8, 4 on 8×6 (divides H only), 2 on 9×6 (divides W only): ValueError naming the factor;
    factor 6 on 6×6 images accepted, with the reference's result."""
    for h, w, factor in BAD_FACTORS:
        got = evidence[f"{h}×{w}, factor {factor}"]
        case = f"{h}×{w} images and factor {factor}"
        if error_name(got) != "ValueError":
            return False, (f"{case} must raise ValueError ({factor} does not divide {h if h % factor else w}), "
                           f"got {got}: check that the factor divides both H and W")
        if str(factor) not in got.partition(":")[2]:
            return False, f"{case}: your ValueError must name the factor {factor}, got {got!r}"
    got = evidence[WHOLE]
    if isinstance(got, str):
        return False, f"for {WHOLE}, which divides both H and W, your blur gave {got}: accept it"
    if not close(got, reference[WHOLE], rel=1e-5, abs_=1e-6):
        return False, (f"for {WHOLE} (one block per image) your blur's result differs from the reference solution's, "
                       "so this point is not earned: every pixel must hold its channel's mean, in the input's shape")
    return True, "a factor that does not divide H or W is refused with a ValueError naming it"


# ---------------------------------------------------------------- Q3: the Early-Bird epoch
DRIFTING = """
def drifting(seed, width, flips):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(width, generator=gen) < 0.5
    masks = [mask]
    for k in flips:  # k channels change after each epoch
        mask = mask.clone()
        changed = torch.randperm(width, generator=gen)[:k]
        mask[changed] = ~mask[changed]
        masks.append(mask)
    return masks
"""
# (seed, channels, channels changed after each epoch, epsilon, window)
EB_CASES = [(71, 40, [12, 8, 6, 3, 2, 1, 1, 0, 1, 0, 0], 0.1, 3),
            (72, 40, [10, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], 0.06, 4),
            (73, 64, [20, 5, 2, 0, 0, 0, 0], 0.05, 2),
            (74, 100, [30, 3, 2, 1, 1, 2, 1, 1, 1], 0.05, 2),
            (75, 50, [9, 4, 2, 1, 2, 1, 0, 1, 0], 0.07, 3)]
EB_RESULT = """
def result(*args):
    value, error = attempt(early_bird_epoch, *args)
    if error is not None or value is None:
        return error
    try:
        return int(value)
    except Exception:
        return f"not an int but {value!r}"[:200]
"""


def _library(masks: list[torch.Tensor], epsilon: float, window: int) -> int | None:
    return reference_early_bird_epoch([{"channels": m} for m in masks], epsilon, window)


def _first(masks: list[torch.Tensor], start: int, settled) -> int | None:
    """The epoch (index + 1) of the first mask from index ``start`` on for which ``settled(i)`` holds."""
    return next((i + 1 for i in range(start, len(masks)) if settled(i)), None)


def _fraction(a: torch.Tensor, b: torch.Tensor) -> float:
    return int((a != b).sum()) / a.numel()


def _shifted(epoch: int | None, by: int) -> int | None:
    return None if epoch is None else epoch + by


EB_MISTAKES = [
    (lambda m, e, w: _first(m, w, lambda i: _fraction(m[i], m[i - 1]) < e),
     "you compared each mask only with the previous epoch's: the rule needs the distance to each of the "
     "previous `window` masks below ε (a mask drifting by small steps is not settled)"),
    (lambda m, e, w: _library(m, e, 1),
     "you compared each mask only with the previous epoch's: the rule needs the distance to each of the "
     "previous `window` masks below ε (a mask drifting by small steps is not settled)"),
    (lambda m, e, w: _first(m, w, lambda i: all(int((m[i] != m[j]).sum()) < e for j in range(i - w, i))),
     "you compared the number of channels that differ with ε: the distance is the fraction of channels that "
     "differ (divide by the number of channels)"),
    (lambda m, e, w: _shifted(_library(m, e, w), -1),
     "your epochs are one too small: masks[i] is the mask after epoch i + 1, so return i + 1, not the index i"),
    (lambda m, e, w: _shifted(_library(m, e, w), +1),
     "your epochs are one too large: masks[i] is the mask after epoch i + 1, so return i + 1"),
    (lambda m, e, w: _library(m, e, w - 1) if w > 1 else None,
     "you compared with window − 1 previous masks: the rule compares with masks[i − window] … masks[i − 1]"),
    (lambda m, e, w: _library(m, e, w + 1),
     "you compared with window + 1 previous masks: the rule compares with masks[i − window] … masks[i − 1]"),
    (lambda m, e, w: _first(m, w, lambda i: all(_fraction(m[i], m[j]) <= e for j in range(i - w, i))),
     "you accepted a distance equal to ε: the rule needs each distance strictly below ε"),
]


@check("q3", points=2, probe=ATTEMPT + EB_RESULT + DRIFTING + f"""
evidence = [result(drifting(seed, width, flips), epsilon, window)
            for seed, width, flips, epsilon, window in {EB_CASES}]
""")
def q3_settling_epochs(evidence, reference):
    """Five drifting mask sequences (40 to 100 channels, ε from 0.05 to 0.1, windows 2 to 4) against coursekit."""
    t = rebuild(DRIFTING)
    cases = [(t["drifting"](seed, width, flips), epsilon, window)
             for seed, width, flips, epsilon, window in EB_CASES]
    expected = [_library(*case) for case in cases]
    if evidence == expected:
        return True, "Early-Bird epochs of five mask sequences: correct"
    for got, (masks, epsilon, window), (_, width, *_) in zip(evidence, cases, EB_CASES, strict=True):
        if isinstance(got, str) and got.startswith("not an int"):
            return False, f"return the epoch as a Python int (or None), got {got[len('not an int but '):]}"
        if isinstance(got, str):
            return False, (f"for {len(masks)} masks of {width} channels, ε = {epsilon}, window {window}, your "
                           f"early_bird_epoch raised {got}")
    for mistake, why in EB_MISTAKES:
        if evidence == [mistake(*case) for case in cases]:
            return False, why
    got, want, (masks, epsilon, window) = next((g, e, c) for g, e, c in zip(evidence, expected, cases, strict=True)
                                               if g != e)
    distances = [round(_fraction(masks[i], masks[i - 1]), 3) for i in range(1, len(masks))]
    early = (f": the earliest possible answer is epoch window + 1 = {window + 1} (masks[window] is the first mask "
             "with `window` earlier ones)") if isinstance(got, int) and got <= window else ""
    return False, (f"for {len(masks)} masks with ε = {epsilon} and window {window} (distances between consecutive "
                   f"masks {distances}) expected epoch {want}, got {got}{early}")


# masks whose channels flip at random, fewer each epoch (the distances are not known without computing them);
# window 1 and ε = 0.05 of 50 channels (no distance equals ε)
WANDERING = """
gen = torch.Generator().manual_seed(76)
mask = torch.rand(50, generator=gen) < 0.5
wandering = [mask]
for rate in [0.3, 0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.04, 0.02, 0.0]:
    mask = mask ^ (torch.rand(50, generator=gen) < rate)
    wandering.append(mask)
"""


@check("q3", points=1, probe=ATTEMPT + WANDERING + """
a = torch.tensor([True, True, True, True, False, False, False, False])
b = torch.tensor([True, True, True, False, True, False, False, False])  # 2 of 8 channels differ from a: 0.25
c = torch.tensor([False, False, True, False, True, True, True, False])  # 6 of 8 differ from a
evidence = {}
for case, args in {"3 masks, window 3": ([a, a, a], 0.1, 3),
                   "never settles": ([a, c, a, c, a, c, a], 0.5, 2),
                   "distance exactly ε": ([a, b], 0.25, 1),
                   "settles": (wandering, 0.05, 1)}.items():
    value, error = attempt(early_bird_epoch, *args)
    evidence[case] = error if error is not None else {"type": type(value).__name__, "repr": repr(value)[:80]}
""")
def q3_edge_cases(evidence, reference):
    """Too few masks, masks that never settle and a distance equal to ε give None; an epoch is an int, the
    reference's on 12 randomly flipping masks with window 1."""
    for case, why in (("3 masks, window 3", "an epoch needs `window` earlier masks: with 3 masks and window 3 no "
                                            "epoch qualifies (do not compare with fewer masks)"),
                      ("never settles", "masks that keep changing (a, c, a, c, …, 0.75 apart, window 2) never "
                                        "settle"),
                      ("distance exactly ε", "masks a, b that differ in 2 of 8 channels are 0.25 apart: with "
                                             "ε = 0.25 and window 1 that is not strictly below ε")):
        got = evidence[case]
        if isinstance(got, str):
            return False, f"{case}: your early_bird_epoch raised {got}"
        if got["repr"] != "None":
            return False, f"{case}: expected None, got {got['repr']}: {why}"
    got = evidence["settles"]
    where = "12 masks of 50 channels flipping at random, fewer each epoch (ε = 0.05, window 1)"
    if isinstance(got, str):
        return False, f"{where}: your early_bird_epoch raised {got}"
    if got["type"] != "int":
        return False, f"{where}: return the epoch as a Python int, got {got['repr']} (a {got['type']})"
    if got["repr"] != reference["settles"]["repr"]:
        return False, (f"{where}: your epoch {got['repr']} differs from the reference solution's, so this point is "
                       "not earned: the first epoch i + 1 whose mask is less than ε from each of the `window` "
                       "previous masks")
    return True, "too few masks, unsettled masks and a distance equal to ε give None; an epoch is an int"
