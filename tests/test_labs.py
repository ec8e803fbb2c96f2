"""Labs 02 to 07: each release check, and the points that common mistakes lose.

(Lab 01 has its own suite: ``test_grading.py``; the generic hostile submissions: ``test_grading_hostile.py``.)
Lab 02 — Q1 Taylor score (4 points: 3 + 1), Q2 OBD saliency (2: 1 + 1), Q3 mean replacement (4: 2 + 2).
Lab 03 — Q1 ERK densities (3: 2 + 1), Q2 one SET step (4: 2 + 2), Q3 SynFlow scores (3: 2 + 1).
Lab 04 — Q1 k-winners (4: 2 + 1 + 1), Q2 overlap probability (3: 1 + 1 + 1), Q3 novelty (3: 2 + 1).
Lab 05 — Q1 Hessian-vector product (4: 2 + 1 + 1), Q2 top eigenvalue by Lanczos (3: 1 + 1 + 1),
Q3 effective dimension (3: 2 + 1).
Lab 06 — Q1 true Fisher trace (4: 2 + 1 + 1), Q2 block blur (3: 2 + 1), Q3 Early-Bird epoch (3: 2 + 1).
Lab 07 — Q1 L1 filter pruning (4: 2 + 1 + 1), Q2 truncated-SVD low rank (3: 2 + 1), Q3 Huffman bits (3: 2 + 1).
"""

from __future__ import annotations

import copy
import json

import nbformat
import pytest

from coursekit import cli
from coursekit.tooling.course import LABS
from coursekit.tooling.grading import labfmt
from coursekit.tooling.grading.grade import Bundle, Limits, grade_batch

pytestmark = pytest.mark.slow

SUM_LOSS_Q1 = '''def taylor_scores(model, x, y):
    model.eval()
    weights = {n: p for n, p in model.named_parameters() if n.endswith("weight")}
    loss = F.cross_entropy(model(x), y, reduction="sum")  # the sum, not the mean the question asks for
    grads = torch.autograd.grad(loss, list(weights.values()))
    return {n: (g * w).abs().detach() for (n, w), g in zip(weights.items(), grads, strict=True)}
'''
UNCLIPPED_Q2 = '''def obd_saliency(weights, hessian_diag):
    return {n: 0.5 * hessian_diag[n] * weights[n].detach() ** 2 for n in weights}
'''
IN_PLACE_Q3 = '''def mean_replace(model, layer, units, x):
    with torch.no_grad():  # edits the model it was given, and takes the mean before the ReLU
        means = model[:layer + 1](x).mean(0)
        model[layer + 2].bias += model[layer + 2].weight[:, units] @ means[units]
        model[layer].weight[units] = 0.0
        model[layer].bias[units] = 0.0
        model[layer + 2].weight[:, units] = 0.0
    return model
'''
MOST_NEGATIVE_Q2 = '''def set_step(weight, keep, zeta, generator):
    w, k = weight.detach().flatten().clone(), keep.flatten().clone()
    drop = torch.zeros_like(k)
    for idx in ((k & (w > 0)).nonzero().squeeze(1), (k & (w < 0)).nonzero().squeeze(1)):
        n = round(zeta * idx.numel())
        if n:  # the smallest values: for the negatives the most negative ones, the strongest connections
            drop[idx[torch.sort(w[idx], stable=True).indices[:n]]] = True
    free = (~k).nonzero().squeeze(1)
    count = int(drop.sum())
    chosen = free[torch.randperm(free.numel(), generator=generator)[:count]]
    k &= ~drop
    k[chosen] = True
    w[drop] = 0.0
    w[chosen] = (torch.rand(count, generator=generator) * 2 - 1) / math.sqrt(weight.shape[1])
    return w.view_as(weight), k.view_as(keep)
'''
NO_REDENSE_Q1 = '''def erk_densities(shapes, density):
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    raw = {n: sum(s) / sizes[n] for n, s in shapes.items()}
    eps = density * sum(sizes.values()) / sum(raw[n] * sizes[n] for n in shapes)
    return {n: min(1.0, eps * raw[n]) for n in shapes}  # capped, but ε not solved again
'''
THRESHOLD_TIES_Q1 = '''def k_winners(x, k):
    if not 1 <= k <= x.shape[1]:
        raise ValueError(f"k must lie in 1..{x.shape[1]}, got {k}")
    kth = x.topk(k, dim=1).values[:, -1:]  # each row's k-th largest value
    return x * (x >= kth)  # every value tied with it survives too: more than k
'''
FLOAT_PRODUCT_Q2 = '''def overlap_probability(n, a, s, theta):
    if theta > min(a, s):
        raise ValueError(f"theta = {theta} > min(a, s)")

    def choose(m, k):  # a product of floats: inf for n in the thousands, and inf / inf is nan
        c = 1.0
        for i in range(k):
            c *= (m - i) / (i + 1)
        return c

    return sum(choose(s, b) * choose(n - s, a - b) for b in range(theta, min(a, s) + 1)) / choose(n, a)
'''
MEAN_OF_ALL_Q3 = '''def novelty(behaviour, population, archive, k):
    others = torch.cat([population, archive])
    return (others - behaviour).norm(dim=1).mean().item()  # every neighbour, not the k nearest
'''
MEAN_DIVIDED_AGAIN_Q1 = '''def hvp(model, x, y, v):
    model.eval()
    params = list(model.parameters())
    loss = F.cross_entropy(model(x), y) / len(x)  # already the mean: divided by N a second time
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    return torch.cat([h.reshape(-1) for h in torch.autograd.grad(flat @ v, params)])
'''
NO_CREATE_GRAPH_Q1 = '''def hvp(model, x, y, v):
    model.eval()
    params = list(model.parameters())
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), params)  # no create_graph: cannot differentiate again
    flat = torch.cat([g.reshape(-1) for g in grads])
    return torch.cat([h.reshape(-1) for h in torch.autograd.grad(flat @ v, params)])
'''
POWER_ITERATION_Q2 = '''def top_eigenvalue(matvec, dim, steps):
    q = torch.randn(dim, dtype=torch.float64)
    for _ in range(steps):  # power iteration: the eigenvalue of largest magnitude, and slowly
        q = matvec(q)
        q = q / q.norm()
    return float(q @ matvec(q))
'''
Z_SQUARED_Q3 = '''def effective_dimension(eigenvalues, z):
    if not z > 0:
        raise ValueError(f"z must be positive, got {z}")
    values = torch.as_tensor(eigenvalues).double()
    if (values < 0).any():
        raise ValueError("negative eigenvalues: pass eigenvalues.clamp(min=0) or eigenvalues.abs()")
    return float((values / (values + z**2)).sum())  # z squared: the same as z only at z = 1
'''
L2_RANKING_Q1 = '''def prune_filters(conv, next_conv, keep):
    if not 1 <= keep <= conv.out_channels:
        raise ValueError(f"keep must lie in 1..{conv.out_channels}, got {keep}")
    norms = conv.weight.detach().flatten(1).norm(dim=1)  # the L2 norm, not Li et al.'s L1 norm
    kept = torch.sort(norms, descending=True, stable=True).indices[:keep].sort().values
    new_conv, new_next = copy.deepcopy(conv), copy.deepcopy(next_conv)
    new_conv.weight = nn.Parameter(conv.weight[kept].detach().clone())
    if conv.bias is not None:
        new_conv.bias = nn.Parameter(conv.bias[kept].detach().clone())
    new_next.weight = nn.Parameter(next_conv.weight[:, kept].detach().clone())
    new_conv.out_channels = new_next.in_channels = keep
    return new_conv, new_next
'''
DROPPED_BIAS_Q2 = '''def low_rank(linear, rank):
    out_features, in_features = linear.weight.shape
    if not 1 <= rank <= min(out_features, in_features):
        raise ValueError(f"rank must lie in 1..{min(out_features, in_features)}, got {rank}")
    u, s, vh = torch.linalg.svd(linear.weight.detach().double(), full_matrices=False)
    first = nn.Linear(in_features, rank, bias=False)
    second = nn.Linear(rank, out_features, bias=False)  # the layer's bias is lost
    with torch.no_grad():
        first.weight.copy_(s[:rank].sqrt()[:, None] * vh[:rank])
        second.weight.copy_(u[:, :rank] * s[:rank].sqrt())
    return nn.Sequential(first, second)
'''
FIXED_LENGTH_Q3 = '''def huffman_bits(symbols):
    distinct = len(set(symbols))  # the same ceil(log2 k) bits for every symbol: not Huffman
    return max(1, math.ceil(math.log2(distinct))) * len(symbols) if symbols else 0
'''
BATCH_GRADIENT_Q1 = '''def fisher_trace(model, x):
    params = list(model.parameters())
    log_probs = F.log_softmax(model(x), dim=1)
    probs = log_probs.exp().detach()
    trace = 0.0
    for c in range(log_probs.shape[1]):  # the gradient of the batch mean, squared: not per example
        grads = torch.autograd.grad(log_probs[:, c].mean(), params, retain_graph=True)
        trace += float(probs[:, c].mean()) * sum(float(g.pow(2).sum()) for g in grads)
    return trace
'''
BILINEAR_Q2 = '''def blur(images, factor):
    h, w = images.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"factor {factor} does not divide {h}×{w}")
    small = F.avg_pool2d(images, factor)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)  # smooth, not blocks
'''
PREVIOUS_MASK_ONLY_Q3 = '''def early_bird_epoch(masks, epsilon, window):
    for i in range(window, len(masks)):
        if (masks[i] != masks[i - 1]).float().mean() < epsilon:  # only the previous mask, not the window
            return i + 1
    return None
'''
# lab → (its answers replaced by a mistake: (points earned, {question: a phrase its message must hold}))
LABS_UNDER_TEST = {
    "lab02_saliency": {
        "sum_not_mean_in_q1": ({"q1-answer": SUM_LOSS_Q1}, 6, {"q1": "not the sum"}),
        "negative_hessian_kept_in_q2": ({"q2-answer": UNCLIPPED_Q2}, 9, {"q2": "h = [-0.3, 2, -5, 1]"}),
        "in_place_and_before_relu_in_q3": ({"q3-answer": IN_PLACE_Q3}, 6,
                                           {"q3": "the next layer's mean pre-activation"}),
    },
    "lab03_sparse_training": {
        "erk_not_solved_again_in_q1": ({"q1-answer": NO_REDENSE_Q1}, 9, {"q1": "expected"}),
        "most_negative_removed_in_q2": ({"q2-answer": MOST_NEGATIVE_Q2}, 8, {"q2": "closest to zero"}),
    },
    "lab04_kwinners": {
        "ties_over_k_in_q1": ({"q1-answer": THRESHOLD_TIES_Q1}, 9, {"q1": "exactly k"}),
        "float_overflow_in_q2": ({"q2-answer": FLOAT_PRODUCT_Q2}, 9, {"q2": "log space"}),
        "mean_of_all_distances_in_q3": ({"q3-answer": MEAN_OF_ALL_Q3}, 8, {"q3": "k nearest"}),
    },
    "lab05_spectra": {
        "mean_divided_again_in_q1": ({"q1-answer": MEAN_DIVIDED_AGAIN_Q1}, 6, {"q1": "divided by N twice"}),
        "no_create_graph_in_q1": ({"q1-answer": NO_CREATE_GRAPH_Q1}, 6, {"q1": "create_graph=True"}),
        "power_iteration_in_q2": ({"q2-answer": POWER_ITERATION_Q2}, 8, {"q2": "largest in magnitude"}),
        "z_squared_in_q3": ({"q3-answer": Z_SQUARED_Q3}, 7, {"q3": "z²"}),
    },
    "lab06_time_effects": {
        "batch_gradient_in_q1": ({"q1-answer": BATCH_GRADIENT_Q1}, 7, {"q1": "per-example gradients"}),
        "bilinear_in_q2": ({"q2-answer": BILINEAR_Q2}, 8, {"q2": "up-sampled bilinearly"}),
        "previous_mask_only_in_q3": ({"q3-answer": PREVIOUS_MASK_ONLY_Q3}, 8, {"q3": "only with the previous"}),
    },
    "lab07_data_oblivious": {
        "l2_ranking_in_q1": ({"q1-answer": L2_RANKING_Q1}, 8, {"q1": "by their L2 norms"}),
        "dropped_bias_in_q2": ({"q2-answer": DROPPED_BIAS_Q2}, 9, {"q2": "copy the original bias"}),
        "fixed_length_in_q3": ({"q3-answer": FIXED_LENGTH_Q3}, 7, {"q3": "fixed-length code"}),
    },
}

@pytest.fixture(scope="module", params=sorted(LABS_UNDER_TEST))
def released(request, tmp_path_factory):
    lab = request.param
    out = tmp_path_factory.mktemp(f"release-{lab}")
    assert cli.main(["release", str(LABS / lab), "-o", str(out), "--cell-timeout", "60"]) == 0
    return lab, out / lab / f"{lab}.ipynb", out / f"{lab}-grader"


def test_release_passes_its_check_and_hides_the_solutions(released):
    _, student, bundle = released
    text = student.read_text()
    assert "BEGIN SOLUTION" not in text and "evidence" not in text
    code = [c.source for c in nbformat.read(student, as_version=4).cells if c.cell_type == "code"]
    assert sum("raise NotImplementedError" in c for c in code) == 3
    assert Bundle.load(bundle).max_points == 10


def _with(student_nb, cid: str, source: str):
    nb = copy.deepcopy(student_nb)
    (cell,) = [c for c in nb.cells if labfmt.cell_id(c) == cid]
    cell.source = source
    return nb


@pytest.fixture(scope="module")
def graded(released, tmp_path_factory, sandboxed):
    lab, student, bundle = released
    source = nbformat.read(LABS / lab / f"{lab}.ipynb", as_version=4)
    answers = {labfmt.cell_id(c): c.source for c in source.cells
               if labfmt.role(c).get("question") and not labfmt.role(c).get("locked")}
    solved = nbformat.read(student, as_version=4)
    for cid, text in answers.items():
        solved = _with(solved, cid, text)
    # The release already graded the solution (full marks) and the blank notebook (none); each mistake
    # below is the solved notebook with one answer replaced, so its total also checks the others'.
    subs = {}
    for name, (changes, _, _) in LABS_UNDER_TEST[lab].items():
        nb = solved
        for cid, text in changes.items():
            nb = _with(nb, cid, text)
        subs[name] = nb
    root = tmp_path_factory.mktemp(f"grading-{lab}")
    (root / "subs").mkdir()
    for name, nb in subs.items():
        nbformat.write(nb, root / "subs" / f"{name}.ipynb")
    book = grade_batch(bundle, root / "subs", root / "grades", jobs=2, progress=False, sandboxed=sandboxed,
                       limits=Limits(cell_timeout=60, notebook_timeout=300))
    return lab, book.set_index("student"), root / "grades"


def test_each_mistake_loses_the_points_its_message_names(graded):
    lab, book, grades = graded
    expected = {n: (p, said) for n, (_, p, said) in LABS_UNDER_TEST[lab].items()}
    for name, (total, said) in expected.items():
        grade = json.loads((grades / name / "grade.json").read_text())
        assert book.loc[name, "total"] == total, f"{lab}/{name}: " + json.dumps(grade, indent=1)[:3000]
        for question, phrase in said.items():
            messages = " ".join(c["message"] for c in grade["questions"][question]["checks"])
            assert phrase in messages, f"{lab}/{name}: {messages}"
