"""Curvature seen through gradients: the trace of the Fisher information, per layer.

The Fisher information of the weights, ``F = E_x E_{y~p(y|x)} [g gᵀ]`` with
``g = ∇_w log p(y|x)``, measures how much the output distribution changes when a
weight moves: a large ``tr F`` means strong, "consolidated" connections. Achille et
al. 2019 ("Critical Learning Periods in Deep Networks") find that ``tr F`` rises
quickly in the first epochs, while the network learns, then falls as it forgets
information it does not need; a deficit changes how it is spread across layers.

* ``kind="true"``: labels drawn from the model's own predictive distribution
  (the Fisher proper);
* ``kind="empirical"``: the data's labels (the "empirical Fisher", Kunstner et al.
  2019 warn it is a different object; both are shown).

``tr F = E ||g||²`` needs one gradient per example. :func:`fisher_trace` gets them
all at once with ``torch.func.vmap(grad(...))`` in chunks, not a Python loop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

FISHER_KINDS = ("true", "empirical")
# per-example gradient numbers held at once when the chunk is left to us (256 MB of float32): a
# 300-weight MLP takes all its examples in one vectorised call, LeNet-300-100 251 at a time, a
# 10⁶-weight CNN 67 (a fixed chunk of 256 would hold 1 GB)
GRADIENT_BUDGET = 2**26


def _chunk_size(model: nn.Module, n: int, chunk: int | None) -> int:
    """``chunk``, or as many examples as keep their gradients within :data:`GRADIENT_BUDGET`."""
    if chunk is not None:
        return chunk
    weights = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return max(1, min(n, GRADIENT_BUDGET // max(weights, 1)))


def _layer_names(model: nn.Module) -> dict[str, str]:
    """Parameter name → its module's name and kind: ``"3.weight"`` → ``"3 Conv2d"``."""
    modules = dict(model.named_modules())
    names = {}
    for name, _ in model.named_parameters():
        owner = name.rpartition(".")[0]
        names[name] = f"{owner} {type(modules[owner]).__name__}".strip()
    return names


def _check_labels(x: torch.Tensor, y: torch.Tensor) -> None:
    if y.dtype != torch.long or y.shape != (x.shape[0],) or (y.numel() and int(y.min()) < 0):
        raise ValueError(f"labels must be non-negative int64 class indices, one per input: x has {x.shape[0]} "
                         f"inputs, y is {y.dtype} of shape {tuple(y.shape)}")


def _gradient_chunks(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, kind: str, chunk: int,
                     generator: torch.Generator | None):
    """Per-example gradients of ``log p(y|x)``, ``chunk`` examples at a time, as ``{parameter: (n, *shape)}``.

    ``kind="true"`` draws each label from the model's prediction; the model runs in eval mode.
    """
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())

    def log_likelihood(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return -F.cross_entropy(logits, yi.unsqueeze(0))

    per_example = vmap(grad(log_likelihood), in_dims=(None, 0, 0))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, x.shape[0], chunk):
            xb = x[start:start + chunk]
            if kind == "true":
                with torch.no_grad():
                    probs = F.softmax(model(xb), dim=1)
                yb = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            else:
                yb = y[start:start + chunk]
            yield per_example(params, xb, yb)
    finally:
        model.train(was_training)


def _check_fisher_inputs(x: torch.Tensor, y: torch.Tensor | None, kind: str, chunk: int | None) -> None:
    if kind not in FISHER_KINDS:
        raise ValueError(f"unknown Fisher kind {kind!r}; expected one of {FISHER_KINDS}")
    if kind == "empirical" and (y is None or y.shape[0] != x.shape[0]):
        raise ValueError("the empirical Fisher needs one label per input: pass y with y.shape[0] == x.shape[0]")
    if y is not None:
        _check_labels(x, y)
    if x.shape[0] == 0 or (chunk is not None and chunk < 1):
        raise ValueError(f"need at least one input and chunk ≥ 1 (or None), got {x.shape[0]} inputs, chunk={chunk}")


def fisher_trace(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, kind: str = "true",
                 chunk: int | None = None, generator: torch.Generator | None = None) -> pd.Series:
    """Trace of the Fisher information per layer, from per-example gradients.

    Args:
        model: a classifier returning logits; evaluated in ``eval`` mode (BatchNorm
            uses its running statistics, so each example's gradient is its own).
        x: inputs ``(N, ...)``.
        y: labels ``(N,)``; needed for ``kind="empirical"``.
        kind: ``"true"`` (labels sampled from the model) or ``"empirical"``.
        chunk: examples per vectorised call (memory: ``chunk`` × parameter count); ``None``:
            as many as fit in :data:`GRADIENT_BUDGET` numbers. The result depends on it only
            through float rounding.
        generator: fixes the sampled labels of the true Fisher.

    Returns:
        ``tr F`` restricted to each layer's parameters (a Series indexed by the module's
        name and kind, e.g. ``"0 Conv2d"``;
        ``(1/N) Σ_n ||∇ log p(y_n|x_n)||²`` over the layer's weights and biases); the
        sum over layers is the trace of the whole Fisher.
    """
    _check_fisher_inputs(x, y, kind, chunk)
    layer_of = _layer_names(model)
    totals: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=x.device))
    for grads in _gradient_chunks(model, x, y, kind, _chunk_size(model, x.shape[0], chunk), generator):
        for name, g in grads.items():
            totals[layer_of[name]] += g.pow(2).sum()
    return pd.Series({layer: t.item() / x.shape[0] for layer, t in totals.items()}, name=f"{kind}_fisher_trace")


class FisherTrace:
    """A :func:`coursekit.core.train.fit` hook recording :func:`fisher_trace` at the end of every epoch.

    ``rows`` (and :meth:`table`) hold one entry per (epoch, layer, kind); epoch 0 is
    recorded by calling :meth:`record` before training.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, kinds: tuple[str, ...] = FISHER_KINDS, seed: int = 0):
        if isinstance(kinds, str) or not kinds or any(k not in FISHER_KINDS for k in kinds):
            raise ValueError(f"kinds must be a tuple of Fisher kinds from {FISHER_KINDS}, got {kinds!r}")
        _check_labels(x, y)
        self.x, self.y, self.kinds = x, y, kinds
        self.generator = torch.Generator(device=x.device).manual_seed(seed)
        self.rows: list[dict] = []

    def record(self, model: nn.Module, epoch: int) -> None:
        for kind in self.kinds:
            traces = fisher_trace(model, self.x, self.y, kind, generator=self.generator)
            self.rows += [{"epoch": epoch, "layer": layer, "kind": kind, "trace": value}
                          for layer, value in traces.items()]

    def __call__(self, ctx) -> None:
        if ctx.end_of_epoch:
            self.record(ctx.model, ctx.epoch + 1)

    def table(self) -> pd.DataFrame:
        """The recorded traces: columns ``epoch``, ``layer``, ``kind``, ``trace``."""
        return pd.DataFrame(self.rows, columns=["epoch", "layer", "kind", "trace"])


# ------------------------------------------------------------------ spectra (slide 14: sloppy spectra)

def fisher_eigenvalues(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, kind: str = "empirical",
                       k: int | None = None, chunk: int | None = None, generator: torch.Generator | None = None,
                       params: Sequence[str] | None = None) -> torch.Tensor:
    """The largest eigenvalues of the Fisher ``F = (1/N) GᵀG``, ``G`` the ``N × P`` per-example gradients.

    ``F`` is ``P × P`` (P parameters, easily 10⁵); its non-zero eigenvalues are those of the
    ``N × N`` Gram matrix ``(1/N) G Gᵀ`` — the "Gram trick". Returns the top ``k`` (all ``N``
    by default), descending, in float64. ``kind`` as in :func:`fisher_trace`; ``params``
    (names) restricts ``F`` to a diagonal block, e.g. one layer's weights.
    """
    _check_fisher_inputs(x, y, kind, chunk)
    n = x.shape[0]
    if k is not None and not 1 <= k <= n:
        raise ValueError(f"k must lie in 1..{n} (the Gram matrix is {n} × {n}), got {k}")
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    if params is not None and (isinstance(params, str) or not params or any(q not in names for q in params)):
        raise ValueError(f"params must be a non-empty list of parameter names among {names}, got {params!r}")
    rows = [torch.cat([g.flatten(1) for name, g in grads.items() if params is None or name in params], dim=1).double()
            for grads in _gradient_chunks(model, x, y, kind, _chunk_size(model, n, chunk), generator)]
    g = torch.cat(rows)
    eigenvalues = torch.linalg.eigvalsh(g @ g.T / n).flip(0).clamp(min=0)
    return eigenvalues[:k]


class HessianOperator:
    """The Hessian of the mean cross-entropy of ``model`` on ``(x, y)`` as a matrix-free operator on flat vectors.

    :meth:`matvec` returns ``H v`` by double backpropagation (Pearlmutter 1994): the gradient
    of ``∇L · v``, summed over ``chunk``-sized parts of the data so memory stays bounded.
    ``params`` (names, default all trainable parameters) picks a diagonal block: the Hessian
    with respect to those parameters only, e.g. one layer's weights. The model runs in eval
    mode; ``dim`` is the number of parameters in the block. With ``keep_graph`` (the default)
    each chunk's gradient graph is built once and reused by every product, so a product costs
    one backward pass instead of a forward and two backward passes (as in PyHessian); memory
    then grows with the data, and the operator is for the weights as they were at the first
    product. ``keep_graph=False`` rebuilds it every time.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 1000,
                 loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
                 params: Sequence[str] | None = None, keep_graph: bool = True):
        _check_labels(x, y)
        if x.shape[0] == 0 or chunk < 1:
            raise ValueError(f"need at least one input and chunk ≥ 1, got {x.shape[0]} inputs, chunk={chunk}")
        named = {n: p for n, p in model.named_parameters() if p.requires_grad}
        if params is not None:
            unknown = [n for n in params if n not in named]
            if isinstance(params, str) or unknown or not params:
                raise ValueError(f"params must be a non-empty list of parameter names among {list(named)}, "
                                 f"got {params!r}")
            named = {n: named[n] for n in params}
        self.model, self.x, self.y, self.chunk, self.loss = model, x, y, chunk, loss
        self.params = list(named.values())
        self.dim = sum(p.numel() for p in self.params)

    def _products(self, v: torch.Tensor) -> torch.Tensor:
        """``H vᵀ`` for the rows of ``v`` (``(dim,)`` or ``(m, dim)``): one graph per chunk of data, all rows at once."""
        out = torch.zeros_like(v)
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, self.x.shape[0], self.chunk):
                xb, yb = self.x[start:start + self.chunk], self.y[start:start + self.chunk]
                value = self.loss(self.model(xb), yb)
                if value.ndim != 0:
                    raise ValueError(f"the loss must be a scalar (a mean or a sum over the batch), got shape "
                                     f"{tuple(value.shape)}; pass e.g. reduction='mean'")
                grads = torch.autograd.grad(value * xb.shape[0] / self.x.shape[0], self.params, create_graph=True)
                flat = torch.cat([g.reshape(-1) for g in grads])
                if v.ndim == 1:
                    hv = torch.autograd.grad(flat @ v.to(flat.dtype), self.params)
                    out += torch.cat([h.reshape(-1) for h in hv]).to(v.dtype)
                else:
                    hv = torch.autograd.grad(flat, self.params, grad_outputs=v.to(flat.dtype), is_grads_batched=True)
                    out += torch.cat([h.reshape(v.shape[0], -1) for h in hv], dim=1).to(v.dtype)
        finally:
            self.model.train(was_training)
        return out

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        if v.shape != (self.dim,):
            raise ValueError(f"v must be a flat vector of the {self.dim} parameters, got shape {tuple(v.shape)}")
        return self._products(v)

    def matrix(self, rows: int = 256) -> torch.Tensor:
        """The explicit ``dim × dim`` Hessian (float64, symmetrised), ``rows`` columns of the identity at a time:
        for a block or a network small enough to diagonalise."""
        if rows < 1:
            raise ValueError(f"rows must be ≥ 1, got {rows}")
        eye = torch.eye(self.dim, dtype=torch.float64, device=self.params[0].device)
        h = torch.cat([self._products(eye[i:i + rows]) for i in range(0, self.dim, rows)])
        return (h + h.T) / 2


def _tridiagonal(alphas: list[torch.Tensor], betas: list[torch.Tensor]) -> torch.Tensor:
    t = torch.diag(torch.stack(alphas))
    if len(alphas) > 1:
        off = torch.stack(betas[: len(alphas) - 1])
        t += torch.diag(off, 1) + torch.diag(off, -1)
    return t


def lanczos(matvec: Callable[[torch.Tensor], torch.Tensor], dim: int, steps: int,
            start: torch.Tensor | None = None, generator: torch.Generator | None = None,
            dtype: torch.dtype = torch.float64,
            stop: Callable[[torch.Tensor], bool] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` Lanczos iterations with full reorthogonalisation for a symmetric operator.

    Returns the tridiagonal matrix ``T`` (``m × m``, ``m ≤ steps``: it stops early when the
    Krylov space is exhausted, or when ``stop(T)`` is true after a step) and the Lanczos basis
    ``Q`` (``dim × m``). The eigenvalues of ``T`` (Ritz values) approximate the extreme
    eigenvalues of the operator first.
    """
    if steps < 1 or steps > dim:
        raise ValueError(f"steps must lie in 1..{dim} (the operator's size), got {steps}")
    q = torch.randn(dim, generator=generator, dtype=dtype) if start is None else start.to(dtype).clone()
    q /= q.norm()
    basis, alphas, betas = [q], [], []
    for i in range(steps):
        w = matvec(basis[-1]).to(dtype)
        alpha = torch.dot(w, basis[-1])
        stacked = torch.stack(basis, 1)
        w = w - stacked @ (stacked.T @ w)  # full reorthogonalisation (twice is enough)
        w = w - stacked @ (stacked.T @ w)
        alphas.append(alpha)
        beta = w.norm()
        if i == steps - 1 or beta <= 1e-10 * max(1.0, float(alpha.abs())):
            break
        if stop is not None and stop(_tridiagonal(alphas, betas)):
            break
        betas.append(beta)
        basis.append(w / beta)
    return _tridiagonal(alphas, betas), torch.stack(basis[: len(alphas)], 1)


def top_eigenvalues(operator: HessianOperator, k: int = 5, steps: int | None = None,
                    generator: torch.Generator | None = None, tol: float | None = None) -> torch.Tensor:
    """The ``k`` largest eigenvalues of ``operator`` (e.g. a :class:`HessianOperator`) by Lanczos, descending.

    ``steps`` (the most) defaults to ``max(3k, 30)`` (capped at the operator's size); extreme
    eigenvalues converge first, so a few dozen steps give the top ones to many digits. With
    ``tol``, it stops as soon as no top-``k`` Ritz value moved by more than ``tol`` (relative) in
    the last step.
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= operator.dim:
        raise ValueError(f"k must be an int in 1..{operator.dim} (the number of parameters), got {k!r}")
    if tol is not None and not tol > 0:
        raise ValueError(f"tol must be a positive relative change, got {tol!r}")
    steps = min(operator.dim, steps or max(3 * k, 30))
    last = [torch.empty(0)]  # the previous step's top-k Ritz values

    def converged(t: torch.Tensor) -> bool:
        ritz = torch.linalg.eigvalsh(t).flip(0)[:k]
        done = len(ritz) == len(last[0]) == k and bool(((ritz - last[0]).abs() <= tol * ritz.abs()).all())
        last[0] = ritz
        return done

    t, _ = lanczos(operator.matvec, operator.dim, steps, generator=generator, stop=converged if tol else None)
    return torch.linalg.eigvalsh(t).flip(0)[:k]


def spectral_nodes(matvec: Callable[[torch.Tensor], torch.Tensor], dim: int, steps: int = 40, probes: int = 4,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stochastic Lanczos quadrature (Ghorbani et al. 2019; Ubaru et al. 2017): nodes ``λᵢ`` and weights ``wᵢ``
    with ``Σᵢ wᵢ f(λᵢ) ≈ tr f(A)`` for a symmetric operator ``A``.

    For each of ``probes`` random ±1 vectors, ``steps`` Lanczos steps give nodes (the
    eigenvalues of ``T``, from ``torch.linalg.eigh``) and weights (the squared first components
    of its eigenvectors); the weights are scaled so that all of them sum to ``dim``.
    """
    if probes < 1 or steps < 1:
        raise ValueError(f"need probes ≥ 1 and steps ≥ 1, got probes={probes}, steps={steps}")
    nodes, weights = [], []
    for _ in range(probes):
        start = torch.randint(0, 2, (dim,), generator=generator, dtype=torch.float64) * 2 - 1  # Rademacher
        t, _ = lanczos(matvec, dim, min(steps, dim), start=start)
        values, vectors = torch.linalg.eigh(t)
        nodes.append(values)
        weights.append(vectors[0].pow(2) * dim / probes)
    return torch.cat(nodes), torch.cat(weights)


def spectral_density(matvec: Callable[[torch.Tensor], torch.Tensor], dim: int, grid: torch.Tensor,
                     steps: int = 40, probes: int = 4, sigma: float | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The eigenvalue density of the operator on ``grid``, from :func:`spectral_nodes` smoothed by Gaussians of
    width ``σ`` (default: 1 % of the grid's span) and normalised to integrate to 1 over ``grid``."""
    if grid.ndim != 1 or len(grid) < 2:
        raise ValueError(f"grid must be a 1-D tensor of ≥ 2 points, got shape {tuple(grid.shape)}")
    grid = grid.double()
    sigma = float(grid[-1] - grid[0]) / 100 if sigma is None else sigma
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    nodes, weights = spectral_nodes(matvec, dim, steps, probes, generator)
    density = (weights[:, None] * torch.exp(-(grid[None] - nodes[:, None]).pow(2) / (2 * sigma**2))).sum(0)
    return density / torch.trapezoid(density, grid)


def input_spectrum(x: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the covariance of the inputs (flattened), descending, in float64."""
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"need at least two inputs (examples, features...), got shape {tuple(x.shape)}")
    flat = x.flatten(1).double()
    centred = flat - flat.mean(0)
    return torch.linalg.eigvalsh(centred.T @ centred / (flat.shape[0] - 1)).flip(0).clamp(min=0)


def effective_dimension(eigenvalues: torch.Tensor, z: float, weights: torch.Tensor | None = None) -> float:
    """``Σ λ / (λ + z)``: how many directions have curvature above the scale ``z`` (MacKay 1992; Maddox et al. 2020).

    Eigenvalues must be non-negative: a Hessian's may not be (a non-convex loss); pass ``λ.clamp(min=0)``
    to count only positive curvature, or ``λ.abs()`` to count curvature of either sign. With ``weights``
    (the nodes and weights of :func:`spectral_nodes`), the sum is weighted: an estimate for an operator
    too large to diagonalise.
    """
    if isinstance(z, bool) or not isinstance(z, int | float) or not z > 0:
        raise ValueError(f"z (the curvature scale) must be a positive number, got {z!r}")
    values = torch.as_tensor(eigenvalues, dtype=torch.float64)
    if weights is not None and torch.as_tensor(weights).shape != values.shape:
        raise ValueError(f"weights must match the eigenvalues one to one: {tuple(values.shape)} eigenvalues, "
                         f"weights of shape {tuple(torch.as_tensor(weights).shape)}")
    if (values < 0).any():
        raise ValueError(f"effective dimension needs non-negative eigenvalues; got {int((values < 0).sum())} "
                         f"negative (smallest {float(values.min()):.3g}). Pass eigenvalues.clamp(min=0) to count "
                         "only positive curvature, or eigenvalues.abs() to count both signs")
    share = values / (values + z)
    return float(share.sum() if weights is None else (torch.as_tensor(weights, dtype=torch.float64) * share).sum())


def decades(eigenvalues: torch.Tensor, floor: float = 1e-12) -> float:
    """How many powers of ten the positive eigenvalues span: ``log10(λ_max / λ_min)`` over those above
    ``floor × λ_max`` (smaller ones are round-off of a zero eigenvalue, not curvature)."""
    values = torch.as_tensor(eigenvalues, dtype=torch.float64).flatten()
    if not 0 < floor < 1 or values.numel() == 0 or not values.max() > 0:
        raise ValueError(f"need at least one positive eigenvalue and 0 < floor < 1, got {values.numel()} values "
                         f"(largest {float(values.max()) if values.numel() else float('nan'):.3g}), floor={floor}")
    kept = values[values > floor * values.max()]
    return float(torch.log10(kept.max() / kept.min()))


class WeightTrajectory:
    """A :func:`coursekit.core.train.fit` hook keeping the flattened weights every ``every`` steps, for :meth:`pca`."""

    def __init__(self, every: int = 10):
        if every < 1:
            raise ValueError(f"every must be a positive number of steps, got {every}")
        self.every, self.snapshots = every, []

    def record(self, model: nn.Module) -> None:
        self.snapshots.append(torch.cat([p.detach().reshape(-1).cpu() for p in model.parameters()]).double())

    def __call__(self, ctx) -> None:
        if ctx.step % self.every == 0:
            self.record(ctx.model)

    def _centred(self) -> torch.Tensor:
        if len(self.snapshots) < 2:
            raise ValueError(f"need at least two snapshots of the weights, have {len(self.snapshots)}")
        path = torch.stack(self.snapshots)
        return path - path.mean(0)

    def pca(self) -> torch.Tensor:
        """The share of the trajectory's variance along each principal direction, descending (sums to 1)."""
        singular = torch.linalg.svdvals(self._centred())
        return singular.pow(2) / singular.pow(2).sum()

    def coordinates(self, k: int = 2) -> torch.Tensor:
        """Each snapshot's coordinates along the first ``k`` principal directions: ``(snapshots, k)``."""
        centred = self._centred()
        if not 1 <= k <= min(centred.shape):
            raise ValueError(f"k must lie in 1..{min(centred.shape)} (snapshots and weights), got {k}")
        u, singular, _ = torch.linalg.svd(centred, full_matrices=False)
        return u[:, :k] * singular[:k]
