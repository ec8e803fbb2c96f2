"""Running, checking and rendering the course's notebooks.

* :func:`run` executes a notebook with papermill at a scale (its ``parameters``
  cell receives ``SCALE``), in the notebook's own folder, into an executed copy.
* :func:`problems` lists what breaks the notebook contract of ``DESIGN.md``
  (committed outputs, no ``parameters`` cell).
* :func:`build_course` executes every lecture into ``build/<scale>/`` and renders HTML.
* :func:`record_expected` / :func:`expected_outputs`: notebooks are committed
  without outputs, so the expected outputs of cells marked ``# NBVAL_CHECK_OUTPUT``
  live beside the tests (``tests/expected_outputs/<name>.json``, keyed by cell id);
  the root ``conftest.py`` hands them to nbval.
"""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from coursekit.core.progress import tqdm
from coursekit.core.runtime import SCALES
from coursekit.tooling.course import REPO, lecture_notebooks
from coursekit.tooling.polling import patient_polling

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
EXPECTED_DIR = REPO / "tests" / "expected_outputs"
_VOLATILE = ("image/png", "image/jpeg", "application/vnd.jupyter.widget-view+json")


def _read(path: str | Path) -> nbformat.NotebookNode:
    path = Path(path)
    if path.suffix != ".ipynb":
        raise ValueError(f"{path} is not a notebook; expected a .ipynb file")
    if not path.is_file():
        raise FileNotFoundError(f"notebook {path} does not exist")
    return nbformat.read(path, as_version=4)


def problems(path: str | Path) -> list[str]:
    """What in the notebook at ``path`` breaks the course's notebook contract (empty: none)."""
    nb = _read(path)
    found = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    if dirty:
        found.append(f"code cells {dirty} carry outputs or execution counts (commit without outputs)")
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    if len(params) != 1:
        found.append(f"needs exactly one cell tagged 'parameters', found {len(params)}")
    elif "SCALE" not in params[0].source or "SEED" not in params[0].source:
        found.append("the parameters cell must define SCALE and SEED")
    if not nb.cells or nb.cells[0].cell_type != "markdown" or not nb.cells[0].source.startswith("# "):
        found.append("the first cell must be a markdown cell opening with a '# ' title")
    return found


def import_problems(path: str | Path) -> list[str]:
    """What breaks a lecture's import rule: coursekit comes in one line, ``from coursekit import …``
    of short module names (see ``docs/architecture.md``), and no private name is reached into."""
    code = "\n".join(c.source for c in _read(path).cells if c.cell_type == "code")
    tree = ast.parse("\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))))
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
               and any((getattr(n, "module", None) or a.name).split(".")[0] == "coursekit" for a in n.names)]
    flat = [n for n in imports if isinstance(n, ast.ImportFrom) and n.module == "coursekit"]
    found = []
    if len(flat) != 1 or len(imports) != 1:
        found.append(f"imports coursekit in {len(imports)} statements ({len(flat)} of them `from coursekit "
                     "import …`); use one: `from coursekit import <the modules it needs>`")
    names = {a.asname or a.name for n in flat for a in n.names}
    private = sorted({f"{n.value.id}.{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                      and isinstance(n.value, ast.Name) and n.value.id in names and n.attr.startswith("_")}
                     | {a.name for n in flat for a in n.names if a.name.startswith("_")})
    if private:
        found.append(f"reaches into private names {private}")
    return found


# Seconds a cell, and a whole notebook, may run at each scale before `run` stops it (the CLI's
# --timeout and --notebook-timeout change them). Generous: a limit is there to end a hang, not to judge speed.
CELL_TIMEOUT = {"ci": 300, "cpu": 3600, "gpu": 3 * 3600}
NOTEBOOK_TIMEOUT = {"ci": 900, "cpu": 6 * 3600, "gpu": 12 * 3600}


class RunTimeout(TimeoutError):
    """A notebook run stopped at a time limit; the executed copy up to that cell is kept."""


def run(path: str | Path, out: str | Path | None = None, scale: str = "ci",
        parameters: Mapping[str, Any] | None = None, timeout: int | None = None,
        notebook_timeout: int | None = None, progress: bool = True) -> Path:
    """Execute the notebook at ``path`` with papermill at ``scale``; return the executed copy.

    The copy goes to ``out`` (default: ``build/<scale>/<name>``) and the kernel runs in the
    notebook's folder. A cell may run ``timeout`` seconds and the whole notebook ``notebook_timeout``
    (defaults: :data:`CELL_TIMEOUT`, :data:`NOTEBOOK_TIMEOUT` of the scale); past either, the kernel is
    stopped and :class:`RunTimeout` names the cell. ``progress`` shows a bar over the cells.
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError

    path = Path(path)
    _read(path)
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")
    for name, value in (("timeout", timeout), ("notebook_timeout", notebook_timeout)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    per_cell, whole = timeout or CELL_TIMEOUT[scale], notebook_timeout or NOTEBOOK_TIMEOUT[scale]
    out = Path(out) if out is not None else Path("build") / scale / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + whole

    def cell_limit(cell: nbformat.NotebookNode) -> int:  # the cell's limit, or what is left of the notebook's
        return max(1, int(min(per_cell, deadline - time.monotonic())))

    patient_polling()
    try:
        papermill.execute_notebook(str(path), str(out), parameters={"SCALE": scale, **(parameters or {})},
                                   cwd=str(path.parent), progress_bar=progress, kernel_name="python3",
                                   timeout_func=cell_limit)
    except CellTimeoutError as err:
        which = "the notebook's limit" if time.monotonic() >= deadline - 1 else "the cell's limit"
        preview = str(err).split("-------------------")[1].strip()[:300] if "----" in str(err) else ""
        raise RunTimeout(f"{path} ran past {which} ({whole} s per notebook, {per_cell} s per cell at "
                         f"{scale} scale) in the cell\n{preview}\nThe copy up to that cell: {out}. "
                         "Raise the limits with --timeout / --notebook-timeout.") from None
    return out


def to_html(path: str | Path, out: str | Path | None = None) -> Path:
    """Render the notebook at ``path`` (usually an executed copy) as standalone HTML, widgets as their figures."""
    from nbconvert import HTMLExporter

    path = Path(path)
    out = Path(out) if out is not None else path.with_suffix(".html")
    nb = _read(path)
    # Without the widgets' saved state nbconvert draws each widget's static copy (widgets.snapshot):
    # a page with no kernel shows the figure, not controls that cannot move and need a CDN script.
    nb.metadata.pop("widgets", None)
    body, _ = HTMLExporter().from_notebook_node(nb)
    out.write_text(body, encoding="utf-8")
    return out


def build_course(scale: str = "ci", out_dir: str | Path = "build",
                 notebooks: Iterable[Path] | None = None, timeout: int | None = None,
                 notebook_timeout: int | None = None) -> pd.DataFrame:
    """Execute every lecture at ``scale`` into ``out_dir/<scale>/`` and render each as HTML.

    A failing or timed-out notebook does not stop the build: its row says so and its
    partial copy is still rendered. Returns one row per notebook (seconds, status, html).
    ``timeout`` and ``notebook_timeout`` are :func:`run`'s limits.
    """
    target = Path(out_dir) / scale
    rows = []
    for nb in tqdm(list(notebooks or lecture_notebooks()), desc=f"course at {scale} scale"):
        start, status = time.perf_counter(), "ok"
        executed = target / nb.name
        try:
            run(nb, executed, scale, timeout=timeout, notebook_timeout=notebook_timeout)
        except Exception as err:  # papermill raises PapermillExecutionError and kernel errors
            status = f"failed: {type(err).__name__}: {str(err).strip().splitlines()[-1][:200]}"
        html = to_html(executed) if executed.is_file() else None
        rows.append({"notebook": nb.name, "seconds": round(time.perf_counter() - start, 1),
                     "status": status, "html": str(html) if html else None})
    report = pd.DataFrame(rows)
    _write_index(report, target / "index.html", scale)
    return report


def _write_index(report: pd.DataFrame, path: Path, scale: str) -> None:
    """A landing page linking every rendered notebook, with its run time and status."""
    items = "\n".join(
        f'<tr><td><a href="{Path(r.html).name}">{r.notebook}</a></td><td>{r.seconds}</td>'
        f"<td>{r.status}</td></tr>" if r.html else
        f"<tr><td>{r.notebook}</td><td>{r.seconds}</td><td>{r.status}</td></tr>"
        for r in report.itertuples())
    path.write_text(f"<!doctype html><meta charset='utf-8'><title>coursekit ({scale})</title>"
                    f"<h1>Network pruning and the Lottery Ticket Hypothesis — {scale} scale</h1>"
                    f"<table><tr><th>notebook</th><th>seconds</th><th>status</th></tr>{items}</table>\n",
                    encoding="utf-8")


def checked_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The code cells whose output nbval compares (marked ``# NBVAL_CHECK_OUTPUT``)."""
    return [c for c in nb.cells if c.cell_type == "code" and CHECK_MARK in c.source]


def _stable(output: dict) -> dict:
    output = {k: v for k, v in output.items() if k not in ("execution_count", "metadata")}
    if "data" in output:
        output["data"] = {k: v for k, v in output["data"].items() if k not in _VOLATILE}
    return output


def record_expected(executed: str | Path, notebook: str | Path | None = None,
                    store: str | Path = EXPECTED_DIR) -> Path:
    """Save the outputs of the checked cells of an executed notebook as the expected ones.

    ``notebook`` names the committed notebook they belong to (default: same file name).
    """
    nb = _read(executed)
    name = Path(notebook or executed).stem
    expected = {c.id: [_stable(o) for o in c.outputs] for c in checked_cells(nb)}
    path = Path(store) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def expected_outputs(notebook: str | Path, store: str | Path = EXPECTED_DIR) -> dict[str, list]:
    """Cell id → expected outputs recorded for ``notebook`` (empty when none were)."""
    path = Path(store) / f"{Path(notebook).stem}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
