"""A real browser on a real JupyterLab: Debian's Chromium driven by Selenium (no browser download).

The server runs on loopback with a copy of ``lectures/`` (a browser run saves outputs; the committed
notebooks must stay clean) and notebook windowing off, so every cell's widgets are in the page.
Everything skips, saying why, where Chromium, its driver or Selenium is missing (``make setup``
installs them where it can).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys

import pytest
from servers import free_port, serving

from coursekit.tooling.course import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SHOTS = REPO / "build" / "ui"


def _missing() -> str | None:
    if CHROMIUM is None or DRIVER is None:
        return "Chromium or chromium-driver is not installed (Debian: apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


@pytest.fixture(scope="session")
def browser():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1100",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_script_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """(base URL with token, served folder): JupyterLab on loopback serving a copy of the lectures."""
    if _missing():
        pytest.skip(_missing())
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(REPO / "lectures", root / "lectures")
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    news = root / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port, token = free_port(), secrets.token_hex(8)
    env = os.environ | {"JUPYTERLAB_SETTINGS_DIR": str(root / "settings"), "COURSEKIT_SCALE": "ci",
                        "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),  # no tabs restored from before
                        "COURSEKIT_RUNS": str(root / "runs"), "JUPYTER_RUNTIME_DIR": str(root / "runtime")}
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--ServerApp.disable_check_xsrf=True"] + (["--allow-root"] if os.geteuid() == 0 else [])
    with serving(cmd, f"http://127.0.0.1:{port}/api/status?token={token}", root / "lab.log", cwd=root, env=env):
        yield f"http://127.0.0.1:{port}", token, root
