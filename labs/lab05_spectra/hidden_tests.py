"""Hidden checks of lab 05 (kept out of the student release; see coursekit.tooling.grading.checks).

Each probe runs in the student's kernel after their answer and sets ``evidence``; each
judge runs in the grader. Q1's and Q2's judges compare with the solution's evidence
(``reference``), Q2's after rebuilding the spectra for their hints; Q3's compare with
coursekit's reference (``coursekit.methods.spectra.effective_dimension``) on the same inputs,
built again here from the probe's recipe, or with the solution's evidence. Every check needs
a raw result of the student's own function that matches, so evidence written by hand from
a probe's source cannot pass. Each judge also recognises the common mistakes and says so.
"""

import torch

from coursekit.methods.spectra import effective_dimension as reference_effective_dimension
from coursekit.tooling.grading.checks import SAFE_CALL, check, close, error_name, rebuild

# ---------------------------------------------------------------- Q1: Hessian-vector products
# a probe helper: hvp's value, or the error it raised
ATTEMPT = """
def attempt(*args):
    try:
        return hvp(*args), None
    except Exception as err:
        return None, f"{type(err).__name__}: {err}"[:300]
"""


def _raised(error: str) -> str:
    if "does not require grad" in error:
        return (f"your hvp raised {error}: the second torch.autograd.grad differentiates the first gradient, "
                "so the first call must keep its graph: torch.autograd.grad(loss, params, create_graph=True)")
    if "allocate" in error or "memory" in error.lower():
        return (f"your hvp ran out of memory ({error}): do not form the Hessian (P × P numbers, 29 GB for this "
                "network of 85 002 parameters); differentiate the gradient's dot product with v instead")
    return f"your hvp raised {error}"


def _within(got: list[float], expected: list[float], tolerance: float) -> bool:
    """Every entry within ``tolerance`` of the expected one (a nan never is)."""
    return len(got) == len(expected) and all(abs(g - e) <= tolerance for g, e in zip(got, expected, strict=True))


def _scale_mistake(got: list[float], expected: list[float], n: int) -> str | None:
    """What a Hv that is the expected one times n or 1/n tells about the loss used."""
    dot = sum(g * e for g, e in zip(got, expected, strict=True))
    norm = sum(e * e for e in expected)
    if norm == 0:
        return None
    ratio = dot / norm
    if abs(ratio / n - 1) < 1e-3:
        return (f"your H v is {n} times the expected one (N = {n} examples): that is the Hessian of the summed "
                "cross-entropy; L is the mean, F.cross_entropy(model(x), y), not the sum")
    if abs(ratio * n - 1) < 1e-3:
        return (f"your H v is 1/{n} of the expected one (N = {n} examples): F.cross_entropy already takes the mean "
                "over the batch, so you divided by N twice")
    return None


@check("q1", points=2, probe=ATTEMPT + """
net = tiny_net(5, hidden=(4, 3))
net.train()  # the function must switch to eval mode itself
xb, yb = ds.x_train[100:260].double(), ds.y_train[100:260]
gen = torch.Generator().manual_seed(21)
vs = [torch.randn(num_parameters(net), generator=gen, dtype=torch.float64) for _ in range(3)]
evidence = {"n": len(xb), "size": num_parameters(net), "hv": []}
for v in vs:
    hv, error = attempt(net, xb, yb, v)
    if error is not None:
        evidence = {"error": error}
        break
    evidence["hv"].append(torch.as_tensor(hv).detach().double().flatten().tolist())
""")
def q1_hvp_on_another_network(evidence, reference):
    """H v against the solution's, on an MLP 64 → 4 → 3 → 10 in float64, for three random v."""
    if "error" in evidence:
        return False, _raised(evidence["error"])
    size = reference["size"]
    for got, expected in zip(evidence["hv"], reference["hv"], strict=True):
        if len(got) != size:
            return False, (f"H v must be a flat vector of all {size} parameters (weights and biases, in "
                           f"model.parameters() order), got {len(got)} numbers")
        scale = max(abs(e) for e in expected)
        if _within(got, expected, 1e-6 * scale):
            continue
        mistake = _scale_mistake(got, expected, reference["n"])
        if mistake:
            return False, mistake
        return False, ("on an MLP 64 → 4 → 3 → 10 (float64) your H v differs from the Hessian of the mean "
                       "cross-entropy in eval mode times v by more than 1e-6 of its largest entry")
    return True, "H v on another network: correct"


BIG = """
big = models.build("mlp", ds.input_shape, ds.num_classes, seed=9, hidden=(256, 256))  # float32, 85 002 parameters
xb, yb = ds.x_train[:256], ds.y_train[:256]
v = torch.randn(num_parameters(big), generator=torch.Generator().manual_seed(22))
"""


@check("q1", points=1, probe=ATTEMPT + BIG + """
hv, error = attempt(big, xb, yb, v)
if error is not None:
    evidence = {"error": error}
else:
    hv = torch.as_tensor(hv).detach().flatten()
    evidence = {"n": len(xb), "size": hv.numel(), "dtype": str(hv.dtype), "norm": float(hv.double().norm()),
                "sample": hv[::850].double().tolist() if hv.numel() == v.numel() else []}
""")
def q1_hvp_without_forming_the_hessian(evidence, reference):
    """A float32 MLP 64 → 256 → 256 → 10 of 85 002 parameters: its Hessian (29 GB) cannot be formed."""
    if "error" in evidence:
        return False, _raised(evidence["error"])
    if evidence["size"] != reference["size"]:
        return False, f"H v must have one entry per parameter ({reference['size']}), got {evidence['size']}"
    if evidence["dtype"] != reference["dtype"]:
        return False, f"for a float32 model and v, return float32 like v, got {evidence['dtype']}"
    got, expected = evidence["sample"], reference["sample"]
    scale = max(abs(e) for e in expected)
    if _within(got, expected, 1e-4 * scale) and close(evidence["norm"], reference["norm"], rel=1e-4):
        return True, "H v on an 85 002-parameter network, without forming H: correct"
    mistake = _scale_mistake(got, expected, reference["n"])
    if mistake:
        return False, mistake
    return False, (f"on a float32 MLP 64 → 256 → 256 → 10 your |H v| is {evidence['norm']:.5g}, expected "
                   f"{reference['norm']:.5g} (and its entries differ by more than 1e-4 of the largest)")


@check("q1", points=1, probe=ATTEMPT + """
net = tiny_net(6, hidden=(4,))
v = torch.randn(num_parameters(net), generator=torch.Generator().manual_seed(23), dtype=torch.float64)
hv, error = attempt(net, ds.x_train[:100].double(), ds.y_train[:100], v)
evidence = {"error": error} if error is not None else {
    "weights": [p.detach() for p in net.parameters()],
    "grads": [None if p.grad is None else p.grad.detach() for p in net.parameters()],
    "v": v,
    "requires_grad": hv.requires_grad if isinstance(hv, torch.Tensor) else None,
    "shape": list(hv.shape) if isinstance(hv, torch.Tensor) else None,
    "dtype": str(hv.dtype) if isinstance(hv, torch.Tensor) else None,
    "hv": torch.as_tensor(hv).detach().double().flatten()}
""")
def q1_leaves_the_model_alone(evidence, reference):
    """The weights, their .grad and v are untouched; H v is a plain flat tensor like v, and the solution's H v
    (the judge compares the raw weights, v and H v after the call with the solution's)."""
    if "error" in evidence:
        return False, _raised(evidence["error"])
    if evidence["weights"] != reference["weights"]:
        return False, "hvp changed the model's weights"
    if any(g is not None for g in evidence["grads"]):
        return False, "hvp left gradients in the parameters' .grad: use torch.autograd.grad, not .backward()"
    if evidence["v"] != reference["v"]:
        return False, "hvp modified v"
    if evidence["requires_grad"] is not False:
        return False, "return a plain tensor without autograd history (.detach())"
    if evidence["shape"] != reference["shape"] or evidence["dtype"] != reference["dtype"]:
        return False, (f"return a flat tensor like v, of shape {reference['shape']} and {reference['dtype']}, got "
                       f"{evidence['shape']} and {evidence['dtype']}")
    got, expected = evidence["hv"], reference["hv"]
    if not _within(got, expected, 1e-6 * max(abs(e) for e in expected)):
        return False, ("the model, its .grad and v are left alone, but on an MLP 64 → 4 → 10 (float64) your H v "
                       "differs from the reference solution's by more than 1e-6 of its largest entry, so this point "
                       "is not earned")
    return True, "the model, its .grad and v are left alone; H v is a plain tensor like v"


# ---------------------------------------------------------------- Q2: the top eigenvalue by Lanczos
# The matrices: a random orthogonal basis and the listed eigenvalues times a random factor in [0.5, 2), both drawn
# from the case's seed (a recipe the judge runs again for its hints); the judges compare with the solution's results.
SYMMETRIC = """
def symmetric(eigenvalues, seed):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=gen, dtype=torch.float64))
    values = torch.tensor(eigenvalues, dtype=torch.float64) * (0.5 + 1.5 * float(torch.rand((), generator=gen)))
    return q @ torch.diag(values) @ q.T, values
"""
TOP_OF = """
def top_of(eigenvalues, seed, steps):
    a, _ = symmetric(eigenvalues, seed)
    try:
        value = float(top_eigenvalue(lambda u: a @ u, len(eigenvalues), steps))
    except Exception as err:
        return f"{type(err).__name__}: {err}"[:200]
    return value if math.isfinite(value) else str(value)
"""
SLOPPY = [10 ** (-4 + 6 * i / 39) for i in range(40)]  # 1e-4 … 100 (times the factor), evenly in log
FEW = [4.0] * 10 + [1.0] * 10 + [0.25] * 10  # three distinct values: the Krylov space ends after 3 steps
POSITIVE_CASES = [(SLOPPY, 31, 40), (SLOPPY, 32, 25), (FEW, 33, 12)]
NEGATIVE_CASES = [([-9 + 12 * i / 29 for i in range(30)], 34, 30),  # −9 … 3
                  ([-20.0] + [-1 + 1.5 * i / 23 for i in range(24)], 35, 25),  # −20, then −1 … 0.5
                  ([-(i + 1) / 4 for i in range(20)], 36, 20)]  # all negative: −0.25 … −5
EIGEN_TOLERANCE = {"rel": 1e-6, "abs_": 1e-9}


def _cases_probe(cases) -> str:
    return SYMMETRIC + TOP_OF + f"""
evidence = [top_of(eigenvalues, seed, steps) for eigenvalues, seed, steps in {cases}]
"""


def _spectrum(eigenvalues) -> str:
    return f"{{{min(eigenvalues):.3g}, …, {max(eigenvalues):.3g}}}"


def _wrong_top(eigenvalues: list[float], steps: int, got: float) -> str:
    """What a wrong top eigenvalue of a known spectrum looks like: the largest magnitude, the smallest, or neither."""
    shown = (f"a {len(eigenvalues)} × {len(eigenvalues)} matrix with eigenvalues {_spectrum(eigenvalues)}, {steps} "
             f"steps: your top eigenvalue {got:.6g} differs from the reference solution's")
    biggest = max(eigenvalues, key=abs)
    near = {"rel": 1e-2, "abs_": 0.0}  # power iteration may not have converged yet
    if biggest != max(eigenvalues) and (close(got, biggest, **near) or close(got, abs(biggest), **near)):
        return (f"{shown}: it is the eigenvalue of largest magnitude, and the question asks for the largest algebraic "
                "eigenvalue (power iteration finds the one largest in magnitude; take the largest Ritz value, the "
                "last of torch.linalg.eigvalsh(T))")
    if close(got, min(eigenvalues), **near):
        return (f"{shown}: it is the smallest; torch.linalg.eigvalsh returns eigenvalues in ascending order, so take "
                "the last")
    return f"{shown}, so this point is not earned"


def _judge_tops(cases, evidence, reference, hint=None) -> str | None:
    """What is wrong with the top eigenvalues found for ``cases``, compared with the solution's; None if nothing."""
    symmetric = rebuild(SYMMETRIC)["symmetric"]
    for (eigenvalues, seed, steps), got, expected in zip(cases, evidence, reference, strict=True):
        values = symmetric(eigenvalues, seed)[1].tolist()
        if isinstance(got, str):
            extra = hint(eigenvalues) if hint else ""
            return (f"for a {len(values)} × {len(values)} matrix with eigenvalues {_spectrum(values)} your function "
                    f"gave {got}{extra}")
        if not close(got, expected, **EIGEN_TOLERANCE):
            return _wrong_top(values, steps, got)
    return None


@check("q2", points=1, probe=_cases_probe(POSITIVE_CASES))
def q2_positive_spectra(evidence, reference):
    """Known spectra: 40 values from 1e-4 to 100 (40 and 25 steps); three distinct values (12 steps), each times a
    random factor; compared with the solution's top eigenvalues."""
    wrong = _judge_tops(POSITIVE_CASES, evidence, reference,
                        lambda eigenvalues: " (with only 3 distinct eigenvalues β becomes 0 after 3 steps: stop "
                                            "there, T already holds them)" if eigenvalues is FEW else "")
    return (False, wrong) if wrong else (True, "top eigenvalues of known positive spectra: correct")


@check("q2", points=1, probe=_cases_probe(NEGATIVE_CASES))
def q2_negative_eigenvalues(evidence, reference):
    """Spectra with negative eigenvalues larger in magnitude than the top one, and an all-negative one (each times
    a random factor); compared with the solution's top eigenvalues."""
    wrong = _judge_tops(NEGATIVE_CASES, evidence, reference)
    return (False, wrong) if wrong else (True, "largest algebraic eigenvalue with negative eigenvalues around: correct")


NETWORK = """
net = tiny_net(12, hidden=(5,))
hessian = explicit_hessian(net, ds.x_train[:200].double(), ds.y_train[:200])
calls = []


def counted(u):
    calls.append(1)
    return hessian @ u


"""


@check("q2", points=1, probe=SAFE_CALL + NETWORK + """
evidence = {"top": safe(top_eigenvalue, counted, hessian.shape[0], 12), "calls": len(calls)}
""")
def q2_a_network_in_few_steps(evidence, reference):
    """A 385-parameter network's Hessian: 12 steps, at most 12 products (13 tolerated), to a relative 1e-7 of the
    solution's 12 Lanczos steps (both Ritz values lie below λ_max, so this is as strict as λ_max itself)."""
    got = evidence["top"]
    if isinstance(got, str):
        return False, f"for a network's 385 × 385 Hessian and 12 steps your function gave {got}"
    if evidence["calls"] > 13:
        return False, (f"with steps = 12 your function called matvec {evidence['calls']} times: Lanczos needs one "
                       "product per step (do not build the matrix column by column)")
    if not close(got, reference["top"], rel=1e-7, abs_=0.0):
        return False, (f"a network's 385 × 385 Hessian, 12 steps: your λ_max = {got:.8f} differs from the reference "
                       "solution's by more than a relative 1e-7, so this point is not earned; Lanczos with full "
                       "reorthogonalisation has converged by then (power iteration has not: its error shrinks only "
                       "like (λ₂/λ₁)^k)")
    return True, "the top eigenvalue of a network's Hessian in 12 Lanczos steps: correct"


# ---------------------------------------------------------------- Q3: effective dimension
SPECTRA = """
sloppy = torch.logspace(-6, 3, 400, dtype=torch.float64)
with_zeros = torch.tensor([0.0, 0.0, 0.0, 2.0, 5.0, 1e-9], dtype=torch.float64)
in_float32 = torch.tensor([1e-3, 0.5, 1.0, 1e3, 1e7], dtype=torch.float32)
empty = torch.empty(0, dtype=torch.float64)
"""
VALUE_CASES = [("sloppy", 1e-3), ("sloppy", 1.0), ("sloppy", 100.0), ("with_zeros", 0.5), ("in_float32", 0.5),
               ("empty", 1.0)]
MISTAKES = {"z²": lambda lam, z: lam / (lam + z * z),
            "z / (λ + z)": lambda lam, z: z / (lam + z),
            "the mean": lambda lam, z: lam / (lam + z)}


def _mistaken(name: str, values: torch.Tensor, z: float) -> float:
    terms = MISTAKES[name](values.double(), z)
    return float(terms.mean()) if name == "the mean" and len(values) else float(terms.sum())


@check("q3", points=2, probe=SAFE_CALL + SPECTRA + f"""
evidence = [safe(effective_dimension, spectrum, z)
            for spectrum, z in [{", ".join(f"({s}, {z!r})" for s, z in VALUE_CASES)}]]
""")
def q3_values(evidence, reference):
    """Σ λ/(λ + z) on a sloppy spectrum (400 values, 1e-6 … 1e3) at three scales, with zeros, in float32, empty."""
    t = rebuild(SPECTRA)
    wrong = []
    for (name, z), got in zip(VALUE_CASES, evidence, strict=True):
        expected = reference_effective_dimension(t[name], z)
        if not close(got, expected, rel=1e-6, abs_=1e-9):
            wrong.append((name, z, got, expected))
    if not wrong:
        return True, "effective dimensions: correct"
    for mistake, why in (("z²", "you used z² in λ/(λ + z²): the scale enters as is, λ/(λ + z)"),
                         ("z / (λ + z)", "you summed z/(λ + z), which counts the flat directions (it is the number "
                                         "of eigenvalues minus N_eff): sum λ/(λ + z)"),
                         ("the mean", "you took the mean of λ/(λ + z): N_eff is their sum, a number of directions")):
        if all(close(got, _mistaken(mistake, t[name], z), rel=1e-6, abs_=1e-9) for name, z, got, _ in wrong):
            return False, why
    name, z, got, expected = wrong[0]
    got = got if isinstance(got, str) else f"{got:.6g}"
    return False, f"N_eff of the spectrum '{name}' at z = {z:g}: expected {expected:.6g}, got {got}"


@check("q3", points=1, probe=SAFE_CALL + """
positive = torch.tensor([1.0, 2.0, 0.5])
clamped = torch.randn(60, generator=torch.Generator().manual_seed(41), dtype=torch.float64).clamp(min=0)
evidence = {"z = 0": safe(effective_dimension, positive, 0.0),
            "z = -2": safe(effective_dimension, positive, -2.0),
            "a negative eigenvalue": safe(effective_dimension, torch.tensor([3.0, -1e-3, 0.5]), 1.0),
            "all zero": safe(effective_dimension, torch.zeros(4), 0.1),
            "clamped": safe(effective_dimension, clamped, 0.1)}
""")
def q3_errors(evidence, reference):
    """z ≤ 0 and a negative eigenvalue raise ValueError; all-zero eigenvalues give 0; and a random spectrum clamped
    at 0 (about half zeros) at z = 0.1, compared with the solution's N_eff."""
    for case, why in (("z = 0", "z must be positive: λ/(λ + 0) counts every direction, however flat"),
                      ("z = -2", "z must be positive"),
                      ("a negative eigenvalue", "do not clamp or drop negative eigenvalues silently: the caller "
                                                "must choose clamp(min=0) or abs()")):
        got = evidence[case]
        if error_name(got) != "ValueError":
            got = "no error" if not isinstance(got, str) or error_name(got) in ("nan", "inf", "-inf") else got
            return False, f"{case} must raise ValueError, got {got}: {why}"
    if evidence["all zero"] != 0.0:
        return False, f"eigenvalues that are all 0 give N_eff = 0 (each counts 0), got {evidence['all zero']}"
    got = evidence["clamped"]
    if isinstance(got, str):
        return False, f"a random spectrum clamped at 0 (60 values, about half 0), z = 0.1: your function gave {got}"
    if not close(got, reference["clamped"], rel=1e-6, abs_=1e-9):
        return False, (f"a random spectrum clamped at 0 (60 values, about half 0), z = 0.1: your N_eff {got:.6g} "
                       "differs from the reference solution's, so this point is not earned")
    return True, "z ≤ 0 and negative eigenvalues raise ValueError; zeros count 0"
