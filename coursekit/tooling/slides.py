"""The lectures as slides: live in JupyterLab with ``jupyterlab-rise`` (a running kernel, working widgets),
or exported as static reveal.js pages (``make slides``).

Each cell's ``metadata.slideshow.slide_type`` places it: ``slide`` and ``subslide`` start a new slide,
``fragment`` and ``-`` (or none) add to the current one, ``skip`` and ``notes`` are left out. A lecture
opens with a title slide (its ``# `` heading), and no slide may hold more than a screenful:
:func:`slide_lines` estimates a slide's height in lines of text at RISE's default scale.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from pathlib import Path

import nbformat

SCREEN_LINES = 30  # what a 1080p projector shows at RISE's default 1280×720 scaled to fit
WRAP = 100  # characters per line of prose at that scale
OUTPUT_LINES = {"figure": 14, "table": 8, "text": 3}  # room a code cell's output takes
CDN_REVEAL = "https://unpkg.com/reveal.js@4.0.2"
_FIGURE = re.compile(r"(^|\.)(plot\w*|bars|image_grid|learning_curves|accuracy_heatmap|interactive_plot|"
                     r"RunComparer|mask_and_accuracy)\(|display\(", re.M)


def slide_type(cell: nbformat.NotebookNode) -> str:
    return cell.metadata.get("slideshow", {}).get("slide_type") or "-"


def slides(nb: nbformat.NotebookNode) -> list[list[nbformat.NotebookNode]]:
    """The cells of each slide, in order (``skip`` and ``notes`` cells left out)."""
    grouped: list[list[nbformat.NotebookNode]] = []
    for cell in nb.cells:
        kind = slide_type(cell)
        if kind in ("skip", "notes"):
            continue
        if kind in ("slide", "subslide") or not grouped:
            grouped.append([])
        grouped[-1].append(cell)
    return grouped


def cell_lines(cell: nbformat.NotebookNode) -> int:
    """Estimated height of a cell on a slide, in lines: wrapped prose (a heading counts twice), or the code
    and room for its output (a figure, a table, or a line or two of text)."""
    if cell.cell_type == "markdown":
        lines = 0
        for line in cell.source.splitlines():
            if line.startswith("#"):
                lines += 2
            elif line.startswith("|"):  # a table row: its cells wrap within their columns
                lines += 1 + len(line) // (2 * WRAP)
            else:
                lines += max(1, len(textwrap.wrap(line, WRAP)))
        return lines
    if cell.cell_type != "code" or not cell.source.strip():
        return 0
    code = cell.source.strip()
    if _FIGURE.search(code):
        output = OUTPUT_LINES["figure"]
    elif not code.endswith(";") and not code.splitlines()[-1].startswith((" ", "#")) and "=" not in code.splitlines()[-1]:
        output = OUTPUT_LINES["table"]  # a last expression: its value (often a DataFrame) is shown
    else:
        output = OUTPUT_LINES["text"]
    return len(code.splitlines()) + output


def slide_lines(cells: Iterable[nbformat.NotebookNode]) -> int:
    return sum(cell_lines(c) for c in cells)


def problems(path: str | Path, screen: int = SCREEN_LINES) -> list[str]:
    """What keeps the notebook at ``path`` from presenting well (empty: nothing)."""
    nb = nbformat.read(path, as_version=4)
    found = []
    first = nb.cells[0] if nb.cells else None
    if first is None or slide_type(first) != "slide" or not first.source.startswith("# "):
        found.append("the first cell must be the title slide: a markdown cell opening with '# ', "
                     "slide_type 'slide'")
    for number, cells in enumerate(slides(nb), start=1):
        lines = slide_lines(cells)
        if lines > screen:
            head = cells[0].source.strip().splitlines()[0][:60] if cells[0].source.strip() else "(empty)"
            found.append(f"slide {number} ({head!r}) is about {lines} lines, more than a screenful ({screen}): "
                         "start a subslide at one of its cells")
    return found


def split(nb: nbformat.NotebookNode, screen: int = SCREEN_LINES) -> int:
    """Start a subslide wherever a slide would outgrow ``screen`` lines (a cell never splits); return
    how many were started. Run it after editing a lecture, then look at the slides."""
    started = 0
    for cells in slides(nb):
        used = 0
        for cell in cells:
            lines = cell_lines(cell)
            if used and used + lines > screen:
                cell.metadata.setdefault("slideshow", {})["slide_type"] = "subslide"
                started, used = started + 1, 0
            used += lines
    return started


def executed_lectures(scale: str, build: str | Path = "build", timeout: int | None = None,
                      notebook_timeout: int | None = None) -> list[Path]:
    """Each lecture's executed copy in ``build/<scale>/``: reused when newer than the lecture, else run."""
    from coursekit.tooling.course import lecture_notebooks
    from coursekit.tooling.notebooks import build_course

    folder = Path(build) / scale
    stale = [nb for nb in lecture_notebooks() if not (folder / nb.name).is_file()
             or (folder / nb.name).stat().st_mtime < nb.stat().st_mtime]
    if stale:
        report = build_course(scale, build, stale, timeout=timeout, notebook_timeout=notebook_timeout)
        failed = report[report["status"] != "ok"]
        if len(failed):
            raise RuntimeError("lectures failed to run:\n" + failed.to_string(index=False))
    return [folder / nb.name for nb in lecture_notebooks()]


def export(notebooks: Iterable[Path], out: str | Path, reveal_prefix: str = CDN_REVEAL) -> list[Path]:
    """Static reveal.js slides of each notebook into ``out`` (nbconvert's slides exporter).

    reveal.js loads from ``reveal_prefix``: a CDN by default (the pages then need a network), or a
    local copy of reveal.js 4 for a talk offline. Widgets show their static figure (the saved widget
    state is dropped, as for the site). Live slides need no export: open the notebook in JupyterLab and
    press the RISE button (or Alt-R).
    """
    from nbconvert import SlidesExporter

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exporter = SlidesExporter(reveal_url_prefix=reveal_prefix, reveal_scroll=True)
    written = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nb.metadata.pop("widgets", None)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": Path(path).stem}})
        page = out / f"{Path(path).stem}.slides.html"
        page.write_text(body, encoding="utf-8")
        written.append(page)
    return written
