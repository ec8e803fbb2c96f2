"""A server for a test (JupyterLab, here): started on a free loopback port, awaited, always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(cmd: list[str], ready_url: str, log: Path, timeout: float = 120, **popen) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` in a session of its own, wait until ``ready_url`` answers, and stop the whole session after.

    A server that exits or is not up within ``timeout`` seconds fails the test with the end of ``log``.
    """
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(ready_url, timeout=5):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"{cmd[0]} did not start serving {ready_url.split('?')[0]}:\n"
                                    + log.read_text()[-3000:])
                    time.sleep(0.5)
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
