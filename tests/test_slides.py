"""Slides: every lecture opens with a title slide and no slide holds more than a screenful; the export works."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import slides
from coursekit.tooling.course import LECTURES


@pytest.mark.parametrize("path", sorted(LECTURES.glob("*.ipynb")), ids=lambda p: p.name)
def test_each_lecture_has_a_title_slide_and_screenful_slides(path):
    assert slides.problems(path) == [], "run slides.split on the notebook, then look at its slides"
    assert nbformat.read(path, as_version=4).metadata.get("rise", {}).get("scroll") is True


def _deck(*cells):
    nb = new_notebook(cells=[new_markdown_cell("# Title"), *cells])
    nb.cells[0].metadata["slideshow"] = {"slide_type": "slide"}
    return nb


def test_split_starts_a_subslide_where_a_slide_would_overflow():
    prose = "\n".join(f"line {i}" for i in range(12))
    nb = _deck(new_markdown_cell(prose), new_markdown_cell(prose), new_code_cell("plots.bars(t, 'a', 'b');"))
    assert slides.slide_lines(nb.cells) == 2 + 12 + 12 + 1 + slides.OUTPUT_LINES["figure"]
    assert slides.split(nb, screen=30) == 1
    assert [slides.slide_type(c) for c in nb.cells] == ["slide", "-", "-", "subslide"]
    assert [len(s) for s in slides.slides(nb)] == [3, 1] and slides.split(nb, screen=30) == 0


def test_problems_name_the_missing_title_and_the_overfull_slide(tmp_path):
    nb = new_notebook(cells=[new_markdown_cell("No title\n" + "x\n" * 40)])
    nbformat.write(nb, tmp_path / "nb.ipynb")
    found = slides.problems(tmp_path / "nb.ipynb")
    assert "title slide" in found[0] and "more than a screenful (30)" in found[1]


def test_export_writes_reveal_slides_that_load_reveal_from_the_prefix(tmp_path):
    from nbformat.v4 import new_output

    view = "application/vnd.jupyter.widget-view+json"
    shown = new_code_cell("display(explorer)", outputs=[new_output(
        "display_data", data={view: {"model_id": "m1", "version_major": 2, "version_minor": 0},
                              "image/png": "iVBORw0KGgo=", "text/plain": "VBox()"})])
    nb = _deck(new_markdown_cell("## Second"), shown)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"m1": {}}}}
    nb.cells[1].metadata["slideshow"] = {"slide_type": "slide"}
    nbformat.write(nb, tmp_path / "deck.ipynb")
    (page,) = slides.export([tmp_path / "deck.ipynb"], tmp_path / "out", reveal_prefix="reveal")
    text = page.read_text()
    assert page.name == "deck.slides.html" and text.count("<section") >= 2 and '"reveal/dist/reveal.js"' in text
    assert "data:image/png;base64,iVBORw0KGgo=" in text and view not in text  # the widget as its figure
