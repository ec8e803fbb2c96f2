"""Debian packages the course installs for itself when it can: as root, with apt.

Used for Fashion-MNIST (``dataset-fashion-mnist``) and for the grading sandbox
(``bubblewrap``). Anywhere else (no root, no apt) nothing is installed and the caller
says what to do by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def apt_install(package: str) -> bool:
    """Install ``package`` when running as root with apt; say whether it worked."""
    if getattr(os, "geteuid", lambda: -1)() != 0 or shutil.which("apt-get") is None:
        return False
    install = ["apt-get", "install", "-y", "-q", package]
    if subprocess.run(install, capture_output=True).returncode == 0:
        return True
    subprocess.run(["apt-get", "update", "-q"], capture_output=True)  # a new machine has no lists
    return subprocess.run(install, capture_output=True).returncode == 0
