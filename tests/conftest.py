"""Shared fixtures: tiny CPU data and models with fixed seeds, no downloads."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from coursekit import claims, data

# tests/labs holds a lab for the grading tests: its notebook runs in their release check, not under nbval
collect_ignore = ["labs"]


def fashion_headline(test):
    """Mark a lecture's headline test on Fashion-MNIST: slow, ``headline``, skipped without the data, run for the
    seeds the notebook does not run (``claims.seeds``, default 1; ``make margins`` passes 0–4)."""
    for mark in (pytest.mark.parametrize("seed", claims.seeds(default=(1,))),
                 pytest.mark.skipif(data.locate("fashion_mnist") is None, reason="Fashion-MNIST not on this machine"),
                 pytest.mark.headline, pytest.mark.slow):
        test = mark(test)
    return test


@pytest.fixture(scope="session")
def digits() -> data.Dataset:
    """scikit-learn's 8×8 digits at ci size: the fastest real data set."""
    return data.load("digits", scale="ci", device="cpu")


@pytest.fixture
def http_dir(tmp_path: Path):
    """A folder served over HTTP on 127.0.0.1; yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def sandboxed() -> bool:
    """Whether the grading sandbox (bubblewrap) runs here. ``make setup`` installs it where it can;
    with ``COURSEKIT_REQUIRE_SANDBOX=1`` (as CI sets) its absence fails the tests that need it."""
    import os

    from coursekit.tooling.grading import sandbox

    reason = sandbox.problem()
    if reason is not None and os.environ.get("COURSEKIT_REQUIRE_SANDBOX") == "1":
        pytest.fail(f"COURSEKIT_REQUIRE_SANDBOX=1 but {reason}")
    return reason is None


@pytest.fixture
def needs_sandbox(sandboxed: bool) -> None:
    """Skip a test of what the sandbox stops where there is no sandbox (see ``sandboxed``)."""
    if not sandboxed:
        pytest.skip("the grading sandbox (bubblewrap) cannot run here")


def flat_loss(model, x, y, temperature: float = 1.0):
    """The mean cross-entropy of ``model(x) / temperature`` as a function of its prunable weights
    flattened into one vector (in their order), and that vector: for exact Hessians and gradients."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call

    from coursekit.core.masks import prunable_parameters

    weights = prunable_parameters(model)
    names, shapes = list(weights), [w.shape for w in weights.values()]
    others = {n: p.detach() for n, p in model.named_parameters() if n not in weights}

    def loss_of(flat):
        parts = dict(zip(names, (c.view(s) for c, s in zip(flat.split([s.numel() for s in shapes]), shapes,
                                                                 strict=True)), strict=True))
        return F.cross_entropy(functional_call(model, parts | others, (x,)) / temperature, y)

    return loss_of, torch.cat([w.detach().flatten() for w in weights.values()])


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test drew (pyplot keeps every figure open until closed)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
