"""Acceptance: `make lab` starts JupyterLab serving lectures/00_index.ipynb."""

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from coursekit.tooling.course import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read(), resp.url


@pytest.mark.slow
def test_make_lab_serves_the_index_notebook(tmp_path):
    port, token = _free_port(), secrets.token_hex(8)
    args = f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.token={token}"
    env = os.environ | {"JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"], cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, listing = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                _, body, _ = _get(f"{base}/api/contents/lectures?token={token}")
                listing = json.loads(body)
                break
            except OSError:
                time.sleep(0.5)
        assert listing is not None, (tmp_path / "lab.log").read_text()[-2000:]
        assert "00_index.ipynb" in [item["name"] for item in listing["content"]]
        status, page, url = _get(f"{base}/?token={token}")  # the landing page opens the index
        assert status == 200 and b"JupyterLab" in page
        assert url.split("?")[0].endswith("/lab/tree/lectures/00_index.ipynb")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
