"""coursekit: the reference library of the course on network pruning and the Lottery Ticket Hypothesis.

Four folders (``docs/architecture.md``):

- ``core/``: what every lecture uses: scales and seeds, data, models, training, masks, scores → mask, claims, figures;
- ``methods/``: the reusable methods of the slides: criteria, protocols, schedules, IMP, saliencies, surgery, compression, spectra;
- ``lectures/``: each lecture's experiments with their checks and figures;
- ``tooling/``: the CLI, the topics, notebook execution and grading.

Every module also answers to its short name, so a notebook imports what it needs in
one line: ``from coursekit import data, lottery, lottery_tickets, runtime``. Short
names are unique across the folders (``tests/test_layout.py`` checks it).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

__version__ = "0.1.0"
FOLDERS = ("core", "methods", "lectures", "tooling")


@cache
def modules() -> dict[str, str]:
    """Short name → full module name, for every module and subpackage of the four folders."""
    found: dict[str, str] = {}
    for folder in FOLDERS:
        package = importlib.import_module(f"{__name__}.{folder}")
        for info in pkgutil.iter_modules(package.__path__):
            if info.name in found:
                raise ImportError(f"coursekit.{folder}.{info.name} and {found[info.name]} share a short name")
            found[info.name] = f"{__name__}.{folder}.{info.name}"
    return found


def __getattr__(name: str) -> ModuleType:
    full = modules().get(name)
    if full is None:
        raise AttributeError(f"module 'coursekit' has no attribute {name!r}")
    return importlib.import_module(full)


def __dir__() -> list[str]:
    return sorted([*globals(), *modules()])
