"""Debian packages the course installs for itself when it can: as root, with apt.

Used for Fashion-MNIST (``dataset-fashion-mnist``) and for the grading sandbox
(``bubblewrap``). Anywhere else (no root, no apt) nothing is installed and the caller
says what to do by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def apt_install(package: str) -> bool:
    """Install ``package`` when running as root with apt; say whether it worked."""
    if getattr(os, "geteuid", lambda: -1)() != 0 or shutil.which("apt-get") is None:
        return False
    install = ["apt-get", "install", "-y", "-q", package]
    if subprocess.run(install, capture_output=True).returncode == 0:
        return True
    subprocess.run(["apt-get", "update", "-q"], capture_output=True)  # a new machine has no lists
    return subprocess.run(install, capture_output=True).returncode == 0


def main(packages: list[str]) -> int:
    """``python -m coursekit.core.debian PACKAGE…``: install what is missing; exit 1 (saying so) if any failed."""
    failed = [p for p in packages if not apt_install(p)]
    for p in failed:
        print(f"could not install {p} (needs root and apt-get); install it by hand to use it", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
