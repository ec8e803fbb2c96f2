"""The code base stays ruff-clean (the rules are in pyproject.toml)."""

import subprocess
import sys

from coursekit.tooling.course import REPO


def test_ruff_check_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
