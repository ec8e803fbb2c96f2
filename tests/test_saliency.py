"""Data-dependent saliencies, each against a brute-force or closed-form reference."""

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from conftest import flat_loss
from coursekit import claims, models, saliency, structured, train
from coursekit.core.masks import prunable_parameters


def _train_mlp(digits, seed):
    """A small MLP trained for a few epochs on digits, and a batch to score it on."""
    model = models.build("mlp", digits.input_shape, digits.num_classes, seed=seed, hidden=(16,))
    train.fit(model, digits, epochs=8, lr=1e-2, optimizer="adam", batch_size=64, seed=seed, progress=False)
    return model.eval(), digits.x_train[:256], digits.y_train[:256]


@pytest.fixture(scope="module")
def trained(digits):
    return _train_mlp(digits, 0)


def _loss(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


def _exact_hessian(model, x, y):
    """The full Hessian of the mean loss over all prunable weights, flattened in their order."""
    return torch.autograd.functional.hessian(*flat_loss(model, x, y))


@pytest.mark.parametrize("layer", ["1", "3"])  # a hidden layer (the rest of the net follows) and the last
def test_ablation_is_the_loss_change_of_zeroing_each_weight(trained, layer):
    model, x, y = trained
    deltas = saliency.ablation(model, layer, x, y, chunk=37)
    base, w = _loss(model, x, y), model.get_submodule(layer).weight
    gen = torch.Generator().manual_seed(0)
    for flat in torch.randint(0, w.numel(), (6,), generator=gen).tolist():
        i, j = divmod(flat, w.shape[1])
        kept = w[i, j].item()
        with torch.no_grad():
            w[i, j] = 0.0
        changed = _loss(model, x, y)
        with torch.no_grad():
            w[i, j] = kept
        assert deltas[i, j].item() == pytest.approx(changed - base, abs=1e-5)


def test_hutchinson_diagonal_is_z_times_hz_and_approaches_the_exact_one(trained):
    model, x, y = trained
    x, y = x[:64], y[:64]
    hessian = _exact_hessian(model, x, y)
    shapes = [w.shape for w in prunable_parameters(model).values()]
    gen = torch.Generator().manual_seed(3)
    z = torch.cat([(torch.randint(0, 2, s, generator=gen) * 2 - 1).float().flatten() for s in shapes])
    one = saliency.hessian_diagonal(model, x, y, samples=1, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(torch.cat([e.flatten() for e in one.values()]), z * (hessian @ z),
                               atol=1e-6, rtol=1e-4)
    errors = []
    for samples in (100, 3000):
        estimate = saliency.hessian_diagonal(model, x, y, samples, generator=torch.Generator().manual_seed(0))
        flat = torch.cat([e.flatten() for e in estimate.values()])
        errors.append(float(torch.linalg.norm(flat - hessian.diagonal()) / torch.linalg.norm(hessian.diagonal())))
    assert errors[1] < 0.2 and errors[1] < errors[0] / 3  # unbiased: the error falls as 1/√samples
    obd = saliency.obd(model, x, y, samples=3000, generator=torch.Generator().manual_seed(0))
    for name, w in prunable_parameters(model).items():
        torch.testing.assert_close(obd[name], 0.5 * estimate[name].clamp(min=0) * w.detach() ** 2)


def test_layer_hessian_of_the_last_layer_has_its_closed_form(trained):
    """For logits z = Wa + b: H[(i,j),(k,l)] = mean_n a_j a_l (p_i δ_ik − p_i p_k)."""
    model, x, y = trained
    x, y = x[:40], y[:40]
    hessian = saliency.layer_hessian(model, "3", x, y)
    with torch.no_grad():
        a = model[:3](x)
        p = F.softmax(model(x), dim=1)
    curvature = torch.diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1)  # (N, out, out)
    closed = torch.einsum("nik,nj,nl->ijkl", curvature, a, a) / x.shape[0]
    out, inp = model[3].weight.shape
    torch.testing.assert_close(hessian, closed.reshape(out * inp, out * inp), atol=1e-5, rtol=1e-4)


REMOVE, DAMPING = 48, 1e-2  # 30 % of the last layer's 160 weights; damping keeps the check well conditioned


def _magnitude_loss(model, x, y, remove):
    """The loss with the ``remove`` smallest weights of the last layer zeroed (the model is restored)."""
    w = model[3].weight.detach().clone()
    with torch.no_grad():
        model[3].weight.view(-1)[w.abs().flatten().argsort()[:remove]] = 0.0
        loss = _loss(model, x, y)
        model[3].weight.copy_(w)
    return loss


def test_obs_moves_the_survivors_to_the_quadratic_optimum(trained):
    """After OBS removes a set S, the survivors r sit at w_r + H_rr⁻¹ H_rS w_S (the constrained
    minimum of the quadratic model, by a Schur complement: independent of the order of removal)."""
    model, x, y = trained
    remove, damping = REMOVE, DAMPING
    w = model[3].weight.detach().clone()
    hessian = saliency.layer_hessian(model, "3", x, y).double()
    hessian += damping * hessian.diagonal().mean() * torch.eye(w.numel(), dtype=torch.float64)
    steps = saliency.obs_prune(model, "3", x, y, remove=remove, damping=damping)
    after = model[3].weight.detach().clone()
    with torch.no_grad():
        model[3].weight.copy_(w)
    gone = torch.tensor((steps["row"] * w.shape[1] + steps["col"]).to_list())
    rest = torch.ones(w.numel(), dtype=torch.bool)
    rest[gone] = False
    w0 = w.flatten().double()
    expected = w0[rest] + torch.linalg.solve(hessian[rest][:, rest], hessian[rest][:, gone] @ w0[gone])
    torch.testing.assert_close(after.flatten()[rest].double(), expected, atol=1e-4, rtol=1e-3)
    assert len(set(gone.tolist())) == remove and int((after == 0).sum()) == remove
    assert (steps["predicted_increase"] >= 0).all()


@pytest.mark.trained
@pytest.mark.parametrize("seed", claims.seeds(default=(0,)))
def test_obs_and_mean_replacement_beat_their_naive_rivals(digits, seed):
    """Hassibi & Stork 1993: removing 30 % of the last layer by OBS raises the loss far less than
    zeroing as many of its smallest weights. Evci et al. 2018: the live units that vary least cost
    less when their mean is folded into the next bias than when they are simply removed."""
    model, x, y = _train_mlp(digits, seed)
    base, magnitude_loss = _loss(model, x, y), _magnitude_loss(model, x, y, REMOVE)
    units = saliency.unit_statistics(model, "1", x)
    quiet = units[units["mean"] > 0]["variance"].nsmallest(4).index.tolist()
    replaced = _loss(saliency.remove_units(model, "1", quiet, x), x, y)
    removed = _loss(saliency.remove_units(model, "1", quiet), x, y)
    saliency.obs_prune(model, "3", x, y, remove=REMOVE, damping=DAMPING)
    claims.check("test_saliency", [
        claims.Claim("OBS loss increase over magnitude's", (_loss(model, x, y) - base) / (magnitude_loss - base),
                     "<", 0.5),
        claims.Claim("mean replacement's loss over plain removal's (4 quietest live units)", replaced / removed,
                     "<", 1),
    ])


def test_snip_sums_to_one_and_taylor_is_g_times_w(trained):
    model, x, y = trained
    grads = saliency.loss_gradients(model, x, y, chunk=100)
    weights = prunable_parameters(model)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    for name, w in weights.items():
        torch.testing.assert_close(grads[name], w.grad, atol=1e-6, rtol=1e-5)
    taylor = saliency.taylor(model, x, y)
    snip = saliency.snip(model, x, y)
    assert sum(s.sum() for s in snip.values()).item() == pytest.approx(1.0)
    for name, w in weights.items():
        torch.testing.assert_close(taylor[name], (w.grad * w).abs().detach(), atol=1e-6, rtol=1e-5)


def test_movement_accumulates_minus_gradient_times_weight(digits):
    """One full-batch SGD step: g = (w₀ − w₁)/lr, so the score is −g·w₁."""
    model = models.build("mlp", digits.input_shape, digits.num_classes, seed=1, hidden=(8,))
    before = {n: w.detach().clone() for n, w in prunable_parameters(model).items()}
    movement = saliency.Movement(model)
    lr = 0.1
    train.fit(model, digits, epochs=1, lr=lr, optimizer="sgd", batch_size=len(digits.y_train), seed=0,
              hooks=[movement], progress=False)
    for name, w in prunable_parameters(model).items():
        g = (before[name] - w.detach()) / lr
        torch.testing.assert_close(movement.scores[name], -g * w.detach(), atol=1e-5, rtol=1e-4)


def test_mean_replacement_removes_a_constant_unit_for_free(trained):
    _, x, _ = trained
    model = models.build("mlp", (1, 8, 8), 10, seed=2, hidden=(6,))
    with torch.no_grad():
        model[1].weight[2] = 0.0
        model[1].bias[2] = 0.7  # ReLU(0.7): the unit outputs 0.7 for every input
    stats = saliency.unit_statistics(model, "1", x)
    assert stats.loc[2, "variance"] == 0 and stats.loc[2, "mean"] == pytest.approx(0.7)
    with torch.no_grad():
        replaced = saliency.remove_units(model, "1", [2], x)(x)
        removed = saliency.remove_units(model, "1", [2])(x)
        torch.testing.assert_close(replaced, model(x))
        assert not torch.allclose(removed, model(x))


def test_rank_correlations():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    table = saliency.rank_correlations({"a": a, "same": 10 * a, "reversed": -a})
    assert table.loc["a", "same"] == pytest.approx(1.0) and table.loc["a", "reversed"] == pytest.approx(-1.0)
    assert (table.values == table.values.T).all()


def test_accuracy_at_densities_prunes_copies(trained, digits):
    model, x, y = trained
    before = {n: w.detach().clone() for n, w in prunable_parameters(model).items()}
    scores = {m: saliency.score(m, model, x, y) for m in ("magnitude", "taylor")}
    table, masks = saliency.accuracy_at_densities(model, digits, scores, [1.0, 0.05])
    assert list(table.columns) == ["method", "density", "test_loss", "test_acc"] and len(table) == 4
    assert masks["taylor", 0.05].density == pytest.approx(0.05, abs=0.01)
    dense = train.evaluate(model, *digits.split("test"))["acc"]
    assert (table[table["density"] == 1.0]["test_acc"] == dense).all()
    assert (table[table["density"] == 0.05]["test_acc"] < dense).all()
    assert all(torch.equal(w, before[n]) for n, w in prunable_parameters(model).items())


def test_accuracy_at_densities_fine_tunes_every_mask_together(trained, digits):
    model, x, y = trained
    scores = {"magnitude": saliency.score("magnitude", model, x, y)}
    table, masks = saliency.accuracy_at_densities(model, digits, scores, [0.05], scope="global",
                                                  finetune={"epochs": 2, "lr": 1e-2, "optimizer": "adam"}, seed=3)
    alone = masks["magnitude", 0.05].apply(copy.deepcopy(model))
    result = train.fit(alone, digits, epochs=2, lr=1e-2, optimizer="adam", seed=3, eval_test=True, progress=False,
                       hooks=[masks["magnitude", 0.05].hook(alone)])
    assert table.loc[0, "fine_tuned_acc"] == pytest.approx(result.final["test_acc"], abs=0.01)
    assert table.loc[0, "fine_tuned_acc"] > table.loc[0, "test_acc"]  # 5 % of the weights: training recovers


def test_obs_path_is_obs_prune_step_by_step(trained):
    model, x, y = trained
    path = saliency.obs_path(model, "3", x, y)
    first = [(row, w.clone()) for (row, w), _ in zip(path, range(5), strict=False)]
    assert [r["step"] for r, _ in first] == [1, 2, 3, 4, 5]
    assert int((first[-1][1] == 0).sum()) == 5
    copy_ = copy.deepcopy(model)
    steps = saliency.obs_prune(copy_, "3", x, y, remove=5)
    assert steps.to_dict("records") == [r for r, _ in first]
    torch.testing.assert_close(copy_[3].weight.detach(), first[-1][1].float())
    assert torch.equal(model[3].weight, trained[0][3].weight)  # the path never writes to the model


def _least_squares(x, y, keep):
    """The least-squares weights using only the columns ``keep`` of ``x`` (0 elsewhere), and the loss."""
    w = torch.zeros(x.shape[1], dtype=torch.float64)
    w[keep] = torch.linalg.lstsq(x[:, keep], y.unsqueeze(1)).solution.squeeze(1)
    return w, 0.5 * (x @ w - y).pow(2).mean()


def test_obs_on_least_squares_predicts_the_loss_of_re_solving_without_the_weight():
    """L(w) = ½ mean (xᵀw − y)² is quadratic with H = XᵀX / n: OBS's saliency is exactly the increase of
    the optimum loss when w_q is deleted and the rest re-solved, and its update lands on that solution."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=gen, dtype=torch.float64)
    y = x @ torch.randn(8, generator=gen, dtype=torch.float64) + 0.3 * torch.randn(200, generator=gen,
                                                                                   dtype=torch.float64)
    keep = list(range(8))
    w, loss = _least_squares(x, y, keep)
    for q, removed, increase, after in itertools.islice(saliency.obs_steps(x.T @ x / 200, w), 5):
        assert removed == pytest.approx(float(w[q]), rel=1e-9)
        keep.remove(q)
        w, new_loss = _least_squares(x, y, keep)
        assert increase == pytest.approx(float(new_loss - loss), rel=1e-8, abs=1e-12)
        torch.testing.assert_close(after, w, rtol=1e-8, atol=1e-10)
        loss = new_loss


def test_with_a_diagonal_hessian_obs_is_obd():
    """A diagonal H: the saliency w_q² / (2[H⁻¹]_qq) is OBD's ½ H_qq w_q², removals go in OBD's order and
    no other weight moves."""
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(12, generator=gen, dtype=torch.float64)
    h = torch.rand(12, generator=gen, dtype=torch.float64) + 0.1
    obd = 0.5 * h * w ** 2
    steps = list(saliency.obs_steps(torch.diag(h), w))
    assert [q for q, *_ in steps] == obd.argsort()[:11].tolist()
    assert [inc for _, _, inc, _ in steps] == pytest.approx(obd.sort().values[:11].tolist(), rel=1e-12)
    last = steps[-1][3]
    survivor = int(obd.argmax())
    assert float(last[survivor]) == float(w[survivor]) and int((last == 0).sum()) == 11


def test_score_registry_and_bad_requests(trained):
    model, x, y = trained
    for name in saliency.SALIENCIES:
        scores = saliency.score(name, model, x[:32], y[:32])
        assert {n: s.shape for n, s in scores.items()} == {n: w.shape for n, w in prunable_parameters(model).items()}
    with pytest.raises(ValueError, match="unknown saliency 'hebb'"):
        saliency.score("hebb", model, x, y)
    with pytest.raises(ValueError, match="as many labels as inputs"):
        saliency.taylor(model, x, y[:3])
    with pytest.raises(ValueError, match=r"works on nn\.Linear layers"):
        saliency.ablation(model, "2", x, y)
    with pytest.raises(ValueError, match=r"remove must lie in 1\.\.159"):
        saliency.obs_prune(model, "3", x, y, remove=160)
    with pytest.raises(ValueError, match="the last Linear layer"):
        saliency.remove_units(model, "3", [0])
    with pytest.raises(ValueError, match=r"units must lie in 0\.\.15"):
        saliency.remove_units(model, "1", [16])


@pytest.mark.parametrize(("call", "message"), [
    (lambda m, x, y: saliency.remove_units(m, "1", [2, 2], x), r"units must be distinct int indices, got \[2, 2\]"),
    (lambda m, x, y: saliency.remove_units(m, "1", [1.7]), "units must be distinct int indices"),
    (lambda m, x, y: saliency.obs_prune(m, "3", x, y, remove=5, damping=0.0), "damping must be positive"),
    (lambda m, x, y: saliency.obs_prune(m, "3", x, y, remove=True), "remove must be a positive int, got True"),
    (lambda m, x, y: next(saliency.obs_steps(torch.eye(3), torch.ones(4))),
     r"the Hessian of 4 weights must be 4 × 4, got \(3, 3\)"),
    (lambda m, x, y: saliency.loss_gradients(m, x, y, chunk=0), "chunk must be a positive int, got 0"),
    (lambda m, x, y: saliency.ablation(m, "3", x, y, chunk=0), "chunk must be a positive int"),
    (lambda m, x, y: saliency.hessian_diagonal(m, x, y, samples=2.5), "samples must be a positive int, got 2.5"),
    (lambda m, x, y: saliency.rank_correlations({"a": torch.rand(4), "b": torch.rand(5)}),
     r"every method must score the same weights; sizes per method: \{'a': 4, 'b': 5\}"),
])
def test_bad_saliency_requests_are_refused(trained, call, message):
    model, x, y = trained
    with pytest.raises(ValueError, match=message):
        call(model, x[:32], y[:32])


def test_accuracy_at_densities_wants_scores_per_method(trained, digits):
    model, x, y = trained
    taylor = saliency.taylor(model, x, y)
    with pytest.raises(ValueError, match=r"scores must map each method to its \{parameter: scores\}"):
        saliency.accuracy_at_densities(model, digits, taylor, [0.5])
    with pytest.raises(ValueError, match=r"densities must be a list, e.g. \[0.5\]"):
        saliency.accuracy_at_densities(model, digits, {"taylor": taylor}, 0.5)


def _explicit_ggn_diagonal(model, x):
    """mean_n diag(J_nᵀ (diag p − ppᵀ) J_n) from full per-example Jacobians (torch.func.jacrev)."""
    from torch.func import jacrev

    params = {n: p.detach() for n, p in model.named_parameters()}
    diag = {n: torch.zeros_like(p) for n, p in params.items()}
    for x1 in x:
        jac = jacrev(lambda ps, x1=x1: functional_call(model, ps, (x1[None],))[0])(params)
        p = torch.softmax(model(x1[None])[0], 0).detach()
        h = torch.diag(p) - torch.outer(p, p)
        for n, j in jac.items():
            flat = j.reshape(j.shape[0], -1)  # classes × weights
            diag[n] += torch.einsum("ck,cd,dk->k", flat, h, flat).reshape(diag[n].shape)
    return {n: d / len(x) for n, d in diag.items()}


@pytest.mark.parametrize(("name", "shape"), [("mlp", (6,)), ("conv2", (1, 6, 6))])
def test_ggn_diagonal_equals_the_explicit_jacobian_product(name, shape):
    """Both paths: Linear layers from inputs and output gradients, a convnet by per-example gradients."""
    model = models.build(name, shape, 4, seed=0, **({"hidden": (5,)} if name == "mlp" else {})).double()
    x = torch.randn(30, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = saliency.ggn_diagonal(model, x, chunk=7)
    assert set(got) == set(prunable_parameters(model))
    want = _explicit_ggn_diagonal(model, x)
    for name, g in got.items():
        assert torch.allclose(g, want[name], rtol=1e-10, atol=1e-14), name
        assert bool((g >= 0).all())


def test_ggn_diagonal_is_the_hessian_diagonal_of_a_linear_model():
    """With logits linear in the weights the Gauss-Newton matrix is the Hessian (and OBD is exact in it)."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(5, 3)).double()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (40,), generator=g)
    w = model[1].weight.detach().clone()

    def loss(flat):
        return torch.nn.functional.cross_entropy(x @ flat.reshape(3, 5).T + model[1].bias.detach(), y)

    hessian = torch.autograd.functional.hessian(loss, w.flatten())
    assert torch.allclose(saliency.ggn_diagonal(model, x, y)["1.weight"].flatten(), hessian.diagonal(), atol=1e-12)
    obd = saliency.score("obd_ggn", model, x, y)["1.weight"]
    assert torch.allclose(obd, 0.5 * hessian.diagonal().reshape(3, 5) * w**2, atol=1e-12)


def test_taylor_filters_is_the_squared_first_order_change_of_switching_a_channel_off():
    """Molchanov et al. 2019: (g_γ γ + g_β β)² equals the squared directional derivative of the loss
    along (γ_c, β_c) → 0, checked by central differences in float64 on one minibatch."""
    model = models.build("vgg_bn", (1, 8, 8), 3, seed=0, width=0.25).double()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)
    with torch.no_grad():  # shifts away from 0, so β matters too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g, dtype=torch.float64))
    scores = saliency.taylor_filters(model, x, y, chunk=16)
    name = next(iter(scores))
    bn = dict(model.named_children())[str(int(name) + 1)]
    model.eval()
    for c in range(bn.weight.numel()):
        gamma, beta, eps = bn.weight[c].item(), bn.bias[c].item(), 1e-6

        def loss_at(t, c=c, gamma=gamma, beta=beta):
            with torch.no_grad():
                bn.weight[c], bn.bias[c] = gamma * (1 - t), beta * (1 - t)
                return F.cross_entropy(model(x), y).item()

        slope = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
        loss_at(0.0)
        assert scores[name][c].item() == pytest.approx(slope**2, rel=1e-5, abs=1e-14)
    kept = structured.select_filters(model, 0.5, scores=scores)
    assert set(kept) == set(scores)


def test_taylor_filters_needs_batchnorm_gates():
    with pytest.raises(ValueError, match="no Conv2d followed by an affine BatchNorm2d"):
        saliency.taylor_filters(models.build("mlp", (4,), 2, seed=0, hidden=(3,)), torch.ones(2, 4),
                                torch.zeros(2, dtype=torch.long))
