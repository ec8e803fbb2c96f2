"""The package's layout: every module has one home, and imports follow the folders' rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import coursekit
from coursekit import course


def test_the_package_keeps_its_layout():
    assert course.layout_problems() == []


def test_short_names_are_unique_and_cover_every_module():
    package = Path(coursekit.__file__).parent
    on_disk = {p.stem for folder in coursekit.FOLDERS for p in (package / folder).glob("*")
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert set(coursekit.modules()) == on_disk
    assert coursekit.lottery is coursekit.methods.lottery  # a short name is the module itself
    with pytest.raises(AttributeError, match="no attribute 'plots_sparse'"):
        coursekit.plots_sparse  # noqa: B018


@pytest.fixture
def scratch(tmp_path):
    """A copy of the package to break."""
    root = tmp_path / "coursekit"
    shutil.copytree(Path(coursekit.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_an_unclaimed_module_is_reported(scratch):
    (scratch / "methods" / "orphan.py").write_text('"""A method no topic claims."""\n')
    (scratch / "loose.py").write_text('"""A module outside the folders."""\n')
    assert course.layout_problems(scratch) == [
        "coursekit.loose: outside the folders ('core', 'methods', 'lectures', 'tooling')",
        "coursekit.methods.orphan: claimed by 0 topics []; a module in methods/ belongs to exactly one "
        "(course.TOPICS)"]


def test_forbidden_imports_are_reported(scratch):
    masks = scratch / "core" / "masks.py"
    masks.write_text(masks.read_text() + "\n\ndef _late():\n    from coursekit.core.train import fit\n"
                     "    from coursekit import lottery\n")
    rewind = scratch / "methods" / "rewind.py"
    rewind.write_text(rewind.read_text() + "\nfrom coursekit.lectures import critical  # noqa\n")
    eb = scratch / "lectures" / "early_bird.py"
    eb.write_text(eb.read_text() + "\nfrom coursekit.lectures.lottery_tickets import headline  # noqa\n"
                  "from coursekit.lectures import spectral_bias  # noqa: same topic, allowed\n")
    assert course.layout_problems(scratch) == [
        "coursekit.core.masks imports coursekit.methods.lottery: core/ may import only ['core']",
        "coursekit.lectures.early_bird imports coursekit.lectures.lottery_tickets, the lecture module of "
        "another topic",
        "coursekit.methods.rewind imports coursekit.lectures.critical: methods/ may import only "
        "['core', 'methods']"]


def test_a_topic_cannot_claim_what_is_shared_or_missing():
    topics = (*course.TOPICS, course.Topic(99, "x", "x", "x", "x", ("plots", "nonexistent")))
    assert course.layout_problems(topics=topics) == [
        "topic 99 claims 'nonexistent', which is no module of ('core', 'methods', 'lectures', 'tooling')",
        "coursekit.core.plots: in core/, shared by all topics, but claimed by topic(s) [99]"]
