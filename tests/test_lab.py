"""Acceptance: `make lab` starts JupyterLab serving lectures/00_index.ipynb."""

import json
import os
import secrets
import urllib.request

import pytest
from servers import free_port, serving

from coursekit.tooling.course import REPO


def _get(url: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read(), resp.url


@pytest.mark.slow
def test_make_lab_serves_the_index_notebook(tmp_path):
    port, token = free_port(), secrets.token_hex(8)
    args = f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.token={token}"
    env = os.environ | {"JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    base = f"http://127.0.0.1:{port}"
    with serving(["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"], f"{base}/api/status?token={token}",
                 tmp_path / "lab.log", timeout=90, cwd=REPO, env=env):
        _, body, _ = _get(f"{base}/api/contents/lectures?token={token}")
        assert "00_index.ipynb" in [item["name"] for item in json.loads(body)["content"]]
        status, page, url = _get(f"{base}/?token={token}")  # the landing page opens the index
        assert status == 200 and b"JupyterLab" in page
        assert url.split("?")[0].endswith("/lab/tree/lectures/00_index.ipynb")
