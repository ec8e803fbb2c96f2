"""The grading sandbox on its own: what a process inside it can read, write and reach."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import coursekit
from coursekit.tooling.course import LABS
from coursekit.tooling.grading import sandbox


def _inside(tmp_path, code: str) -> dict:
    """Run ``code`` (which sets ``result``) in the sandbox with ``tmp_path`` as its folder."""
    script = "import json\n" + textwrap.dedent(code) + "\nprint(json.dumps(result))\n"
    proc = subprocess.run(sandbox.command([sys.executable, "-c", script], tmp_path), capture_output=True,
                          text=True, timeout=120, env=sandbox.environment())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("pythonpath", [None, str(LABS.parent)])
def test_only_python_coursekit_and_the_data_are_mounted(pythonpath, monkeypatch):
    """Asked of a fresh interpreter, not of this one (pytest put the course's folders on sys.path);
    with the course's own folder on PYTHONPATH, only its package is mounted."""
    if pythonpath:
        monkeypatch.setenv("PYTHONPATH", pythonpath)
    sandbox.readable_paths.cache_clear()
    mounted = sandbox.readable_paths()
    sandbox.readable_paths.cache_clear()
    assert not any(LABS.resolve().is_relative_to(p) for p in mounted), mounted  # no lab source
    assert not any(Path(__file__).resolve().is_relative_to(p) for p in mounted), mounted  # no tests
    package = Path(coursekit.__file__).parent.resolve()
    assert any(package.is_relative_to(p) for p in mounted), mounted


def test_the_sandbox_hides_files_and_blocks_writes_and_network(tmp_path, needs_sandbox):
    outside = tmp_path.parent / "outside.txt"  # a file the grader can see, beside the scratch folder
    outside.write_text("private")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    mounted = [str(p) for p in sandbox.readable_paths()]  # read-only, possibly under /tmp (a clone there)
    code = f"""
    import os, pathlib, socket, coursekit
    result = {{}}
    result["labs"] = os.path.exists({str(LABS)!r})
    result["outside"] = os.path.exists({str(outside)!r})
    result["home"] = os.environ["HOME"]
    pathlib.Path("mine.txt").write_text("ok")
    result["scratch"] = pathlib.Path("mine.txt").read_text()
    result["tmp"] = [os.path.join(d, f) for d, _, files in os.walk("/tmp") for f in files
                     if not any(os.path.join(d, f).startswith(p + "/") for p in {mounted!r})]
    try:
        open(coursekit.__file__, "a").close()
        result["package"] = "writable"
    except OSError as err:
        result["package"] = type(err).__name__
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
        result["socket"] = "connected"
    except OSError as err:
        result["socket"] = type(err).__name__
    result["secret"] = os.environ.get("COURSEKIT_TEST_SECRET")
    """
    import os

    os.environ["COURSEKIT_TEST_SECRET"] = "s3cret"
    try:
        result = _inside(tmp_path, code)
    finally:
        del os.environ["COURSEKIT_TEST_SECRET"]
        server.close()
    mine = str(tmp_path.resolve() / "mine.txt")
    assert result == {"labs": False, "outside": False, "tmp": [mine], "home": str(tmp_path.resolve()),
                      "scratch": "ok", "package": "OSError", "socket": "ConnectionRefusedError",
                      "secret": None}


def test_nothing_outlives_the_sandbox(tmp_path, needs_sandbox):
    marker = f"coursekit-orphan-{tmp_path.name}"
    code = f"""
    import subprocess, sys
    subprocess.Popen([sys.executable, "-c", "import time\\n# {marker}\\nwhile True: time.sleep(0.05)"],
                     start_new_session=True)
    result = "started"
    """
    assert _inside(tmp_path, code) == "started"
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    for pid in left:
        subprocess.run(["kill", "-9", pid])
    assert not left, f"processes outlived the sandbox: {left}"


def test_no_bwrap_is_a_clear_refusal(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(sandbox.SandboxUnavailable, match=r"not installed; install bubblewrap.*--no-sandbox"):
        sandbox.command(["true"], tmp_path)
    monkeypatch.setattr(sandbox, "problem", lambda: "bwrap cannot run here (no namespaces)")
    with pytest.raises(sandbox.SandboxUnavailable, match=r"cannot grade in a sandbox: bwrap cannot run here.*--no-sandbox"):
        sandbox.require()
