"""Shared fixtures: tiny CPU data and models with fixed seeds, no downloads."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from coursekit import data


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
