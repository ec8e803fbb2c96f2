"""`make site`: executed notebooks, labs and docs built into an offline website whose links all resolve."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import site
from coursekit.tooling.course import LABS

pytestmark = pytest.mark.slow


def _notebook(folder, name, *markdown):
    nb = new_notebook(cells=[new_markdown_cell(f"# {name}\n\n## Part one"), *map(new_markdown_cell, markdown)])
    p = new_code_cell("SCALE = None\nSEED = 0")
    p.metadata["tags"] = ["parameters"]
    nb.cells += [p, new_code_cell("print('ran at', SCALE)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / name)
    return folder / name


def test_the_site_holds_every_page_with_search_and_working_links(tmp_path):
    first = _notebook(tmp_path, "a.ipynb", "Next: [the second](b.ipynb#Part-one).")
    second = _notebook(tmp_path, "b.ipynb", "Back to [the first](a.ipynb).")
    out = tmp_path / "build" / "site"
    report = site.build_site("ci", out, notebooks=[first, second], labs=[LABS / "lab01_lottery"],
                             docs=[site.DOCS / "grading.md"])  # instructor.md links every lecture
    assert list(report["status"]) == ["ok", "ok"]
    page = (out / "lectures" / "a.html").read_text()
    assert "href=\"b.html#part-one\"" in page and "ran at ci" in page  # executed, linked to the page
    lab = (out / "labs" / "lab01_lottery.html").read_text()
    assert "raise NotImplementedError" in lab and "BEGIN SOLUTION" not in lab  # as students receive it
    assert (out / "docs" / "grading.html").is_file()
    titles = {d["location"].split("#")[0] for d in json.loads((out / "search" / "search_index.json").read_text())["docs"]}
    assert {"lectures/a.html", "labs/lab01_lottery.html", "docs/grading.html"} <= titles
    assert site.broken_links(out) == []


def test_a_link_to_a_missing_notebook_or_anchor_fails_the_build(tmp_path, capsys):
    lone = _notebook(tmp_path, "a.ipynb", "See [the missing one](gone.ipynb) and [this](#No-such-part).")
    with pytest.raises(RuntimeError, match="2 broken link") as err:
        site.build_site("ci", tmp_path / "build" / "site", notebooks=[lone], labs=[], docs=[])
    assert "lectures/a.html: gone.html" in str(err.value) and "#no-such-part (no such anchor)" in str(err.value)
