"""The set-up files agree with each other: pyproject.toml, environment.yml, Makefile, CI."""

import re
import tomllib

import yaml

from coursekit.tooling.course import REPO

CONDA_NAMES = {"torch": "pytorch"}  # PyPI name → conda-forge name where they differ


def _requirements(specs):
    out = {}
    for spec in specs:
        name, version = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", spec).groups()
        out[CONDA_NAMES.get(name.lower(), name.lower())] = version.replace(" ", "")
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = _requirements(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    listed = []
    for dep in env["dependencies"]:
        listed += dep["pip"] if isinstance(dep, dict) else [dep]
    have = _requirements(d for d in listed if d != "pip" and not d.startswith("python"))
    assert have == wanted, f"drift: only in pyproject {wanted.items() - have.items()}, " \
                           f"only in environment.yml {have.items() - wanted.items()}"


def test_makefile_pins_the_cpu_torch_and_ci_calls_make_test():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^TORCH_SPEC \?= torch==2\.13\.0$", makefile, re.M)
    for target in ("setup:", "lab:", "test:", "course:"):
        assert re.search(rf"^{target}", makefile, re.M), target
    ci = [line for line in (REPO / ".ci/run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    assert ci[-1] == "make test"


def test_readme_opens_with_the_two_commands():
    readme = (REPO / "README.md").read_text()
    head = readme[:2500]
    assert "make lab" in head and "make test" in head
