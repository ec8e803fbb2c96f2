"""The notebook contract of DESIGN.md, and the papermill runner behind `coursekit run`."""

import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import cli, notebooks
from coursekit.tooling.course import LABS, LECTURES, REPO

ALL_NOTEBOOKS = sorted(LECTURES.glob("*.ipynb")) + sorted(LABS.glob("*/*.ipynb"))


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO)))
def test_committed_notebook_keeps_the_contract(path):
    assert notebooks.problems(path) == []


@pytest.mark.parametrize("path", sorted(LECTURES.glob("*.ipynb")), ids=lambda p: p.name)
def test_lecture_has_the_template(path):
    """Learning goals, a widget, what to take away, exercises, and a checks cell (claims with margins)."""
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    for needed in ("Learning goals", "What to take away", "Exercises", "widgets.", "claims.check("):
        assert needed in text, f"{path.name} lacks {needed!r}"
    assert any("slideshow" in c.metadata for c in nb.cells), "no slide metadata"
    assert notebooks.import_problems(path) == []


def test_import_problems_finds_extra_imports_and_private_names(tmp_path):
    good = _notebook(tmp_path, "from coursekit import data, plots\n%matplotlib inline\nplots.styled()")
    assert notebooks.import_problems(good) == []
    bad = _notebook(tmp_path, "from coursekit import data, plots\nfrom coursekit.core.train import fit",
                    "import coursekit.core.plots\nplots._secret()", name="bad.ipynb")
    assert notebooks.import_problems(bad) == [
        "imports coursekit in 3 statements (1 of them `from coursekit import …`); use one: "
        "`from coursekit import <the modules it needs>`", "reaches into private names ['plots._secret']"]


def _notebook(tmp_path, *cells, params=True, name="nb.ipynb"):
    nb = new_notebook(cells=[new_markdown_cell("# Title")])
    if params:
        p = new_code_cell("SCALE = None\nSEED = 0")
        p.metadata["tags"] = ["parameters"]
        nb.cells.append(p)
    nb.cells += [new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_problems_finds_outputs_and_missing_parameters(tmp_path):
    path = _notebook(tmp_path, "1 + 1", params=False)
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="2")]
    nbformat.write(nb, path)
    found = notebooks.problems(path)
    assert any("outputs" in f for f in found) and any("parameters" in f for f in found)


def test_run_injects_scale_and_writes_an_executed_copy(tmp_path):
    path = _notebook(tmp_path, "print('scale is', SCALE)")
    out = notebooks.run(path, tmp_path / "out" / "nb.ipynb", scale="cpu")
    text = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells
                   for o in c.get("outputs", []))
    assert "scale is cpu" in text
    assert notebooks.to_html(out).read_text().count("scale is cpu") >= 1


def test_build_course_reports_a_failing_notebook_and_goes_on(tmp_path):
    good = _notebook(tmp_path, "x = 1", name="a.ipynb")
    bad = _notebook(tmp_path, "raise RuntimeError('boom')", name="b.ipynb")
    report = notebooks.build_course("ci", tmp_path / "build", notebooks=[good, bad])
    assert list(report["status"].str[:6]) == ["ok", "failed"]
    assert "boom" in report["status"].iloc[1]
    assert (tmp_path / "build" / "ci" / "a.html").is_file()
    assert (tmp_path / "build" / "ci" / "b.html").is_file()  # the partial copy is kept
    index = (tmp_path / "build" / "ci" / "index.html").read_text()
    assert 'href="a.html"' in index and "boom" in index


def test_a_cell_past_its_limit_stops_the_run_and_names_the_cell(tmp_path, capsys):
    """No run waits for ever: a hanging cell ends with the cell named and the copy kept."""
    path = _notebook(tmp_path, "x = 1", "import time\ntime.sleep(600)  # the hang", "print('never')")
    out = tmp_path / "out.ipynb"
    start = time.monotonic()
    assert cli.main(["run", str(path), "-o", str(out), "--timeout", "2"]) == 1
    assert time.monotonic() - start < 120
    said = capsys.readouterr().err
    assert "the cell's limit" in said and "time.sleep(600)  # the hang" in said and str(out) in said
    assert out.is_file()


def test_a_notebook_past_its_limit_stops_whatever_cell_it_is_in(tmp_path):
    path = _notebook(tmp_path, *["import time\ntime.sleep(2)"] * 4)
    with pytest.raises(notebooks.RunTimeout, match="the notebook's limit"):
        notebooks.run(path, tmp_path / "out.ipynb", notebook_timeout=3, progress=False)


@pytest.mark.parametrize("limits", [{"timeout": 0}, {"notebook_timeout": -5}, {"timeout": 1.5},
                                    {"timeout": True}])
def test_limits_must_be_positive_whole_seconds(tmp_path, limits):
    with pytest.raises(ValueError, match="must be a positive number of seconds"):
        notebooks.run(_notebook(tmp_path, "x = 1"), tmp_path / "out.ipynb", **limits)


@pytest.mark.slow
def test_coursekit_run_executes_the_index(tmp_path, capsys):
    """Acceptance: `coursekit run lectures/00_index.ipynb --scale ci` writes an executed copy."""
    out = tmp_path / "00_index.ipynb"
    assert cli.main(["run", str(LECTURES / "00_index.ipynb"), "--scale", "ci", "-o", str(out)]) == 0
    executed = nbformat.read(out, as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)


@pytest.mark.parametrize("path", sorted(LECTURES.glob("*.ipynb")), ids=lambda p: p.name)
def test_every_checked_cell_has_a_recorded_expected_output(path):
    nb = nbformat.read(path, as_version=4)
    expected = notebooks.expected_outputs(path)
    missing = [c.id for c in notebooks.checked_cells(nb) if c.id not in expected]
    assert not missing, f"run `coursekit record-outputs {path.relative_to(REPO)}`"


def test_record_expected_keeps_text_and_drops_volatile_parts(tmp_path):
    path = _notebook(tmp_path, "# NBVAL_CHECK_OUTPUT\nprint(6 * 7)", "print('unchecked')")
    out = notebooks.run(path, tmp_path / "executed.ipynb")
    store = notebooks.record_expected(out, path, store=tmp_path / "expected").parent
    expected = notebooks.expected_outputs(path, store=store)
    (outputs,) = expected.values()
    assert outputs == [{"name": "stdout", "output_type": "stream", "text": "42\n"}]


def test_html_shows_a_widgets_figure_not_a_dead_widget(tmp_path):
    path = _notebook(tmp_path, "import ipywidgets as W, matplotlib.pyplot as plt\nfrom coursekit import widgets\n"
                     "def plot(a):\n    fig, ax = plt.subplots()\n    ax.set_title(f'a is {a}')\n    return fig\n"
                     "display(widgets.interactive_plot(plot, a=W.IntSlider(value=3)))")
    out = notebooks.run(path, tmp_path / "executed.ipynb", progress=False)
    (cell,) = [c for c in nbformat.read(out, as_version=4).cells if "interactive_plot" in c.source]
    (shown,) = [o for o in cell.outputs if o.output_type == "display_data"]
    assert {"application/vnd.jupyter.widget-view+json", "image/png"} <= set(shown.data)  # live, and its copy
    html = notebooks.to_html(out).read_text()
    assert html.count("<img ") == 1 and "widget-view+json" not in html
