"""The course as a static website: every lecture executed at a scale, the labs as students receive them,
and the docs, built with MkDocs (Material theme; notebooks by mkdocs-jupyter).

Why MkDocs: its three packages install from PyPI as pure-Python wheels, build offline in seconds, give
navigation and a client-side search index with no server, and ``--strict`` refuses a page that links to
a missing page. Search runs in the browser, over HTTP: ``python -m http.server -d build/site`` (pages and
figures also open straight from the files). Notebook cells are rendered by nbconvert inside mkdocs-jupyter, where MkDocs does not
look, so :func:`broken_links` then reads every built page and fails on any relative link or anchor that
leads nowhere. Widgets appear as their static figure (:func:`coursekit.core.widgets.snapshot`).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pandas as pd

from coursekit.tooling.course import LABS, REPO, TOPICS
from coursekit.tooling.grading import labfmt
from coursekit.tooling.notebooks import build_course

DOCS = REPO / "docs"
_NOTEBOOK_LINK = re.compile(r"\]\((?!https?:)([^)#\s]*?)(\.ipynb)?#([^)\s]*)\)|\]\((?!https?:)([^)#\s]+)\.ipynb\)")
_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")
_ID = re.compile(r"""\sid\s*=\s*["']([^"']+)["']""")


def _anchor(jupyter: str) -> str:
    """A JupyterLab heading anchor (``#Iterative-magnitude-pruning``, percent-encoded) as MkDocs' id of the
    same heading (``iterative-magnitude-pruning``: Python-Markdown's ``toc`` slug)."""
    from markdown.extensions.toc import slugify

    return slugify(unquote(jupyter).replace("-", " "), "-")


def _page_links(text: str) -> str:
    """Markdown links between notebooks, ``](x.ipynb#Heading)``, made to point at their pages and
    headings on the site, ``](x.html#heading)``; the same for ``](#Heading)`` within a notebook."""
    def page(m: re.Match) -> str:
        if m.group(4) is not None:  # x.ipynb, no anchor
            return f"]({m.group(4)}.html)"
        path = f"{m.group(1)}.html" if m.group(2) else m.group(1)
        return f"]({path}#{_anchor(m.group(3))})"

    return _NOTEBOOK_LINK.sub(page, text)


def _for_the_web(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A notebook ready to render: links between notebooks lead to pages, and no widget state is kept
    (without it nbconvert draws each widget's static figure instead of dead controls)."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _page_links(cell.source)
        for output in cell.get("outputs", []):
            if "text/markdown" in output.get("data", {}):
                output.data["text/markdown"] = _page_links(output.data["text/markdown"])
    return nb


def _lectures(report: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(number, title, file name) of each executed notebook, in course order; unlisted ones last."""
    known = {t.notebook.name: (f"{t.number:02d}", t.title, t.slides) for t in TOPICS}
    order = [t.notebook.name for t in TOPICS]
    names = sorted(report["notebook"], key=lambda n: (order.index(n) if n in order else len(order), n))
    return [(*known.get(n, ("", Path(n).stem, ""))[:2], n) for n in names]


def _title(page: Path) -> str:
    return page.stem.replace("_", " ").capitalize()


def _index(report: pd.DataFrame, scale: str, labs: list[str], docs: list[Path]) -> str:
    rows = [f"| # | lecture | slides | run at `{scale}` |", "|---|---|---|---|"]
    status = dict(zip(report["notebook"], report["status"], strict=True))
    seconds = dict(zip(report["notebook"], report["seconds"], strict=True))
    slides = {t.notebook.name: t.slides for t in TOPICS}
    for number, title, name in _lectures(report):
        state = f"{seconds[name]:.0f} s" if status[name] == "ok" else f"**{status[name]}**"
        rows.append(f"| {number} | [{title}](lectures/{name}) | {slides.get(name, '')} | {state} |")
    lab_rows = "\n".join(f"- [{lab}](labs/{lab}.ipynb)" for lab in labs)
    doc_links = "\n".join(f"- [{_title(p)}](docs/{p.name})" for p in docs)
    return (f"# Network pruning and the Lottery Ticket Hypothesis\n\n"
            f"A course in {len(rows) - 2} executed notebooks built on one lecture, with the `coursekit` library "
            f"behind every figure. These pages were run at the **`{scale}`** scale (`make site SCALE={scale}`); "
            "in JupyterLab every figure has its controls back (`make lab`).\n\n"
            "## Lectures\n\n" + "\n".join(rows) + "\n\n"
            "## Labs\n\nThe graded assignments, as students receive them (solutions removed; "
            "`coursekit release` and `coursekit grade`, see the docs):\n\n" + lab_rows + "\n\n"
            "## Docs\n\n" + doc_links + "\n")


def _config(scale: str, report: pd.DataFrame, labs: list[str], docs: list[Path]) -> str:
    def section(title: str, entries: list[str]) -> list[str]:
        return [f"  - {title}:", *entries] if entries else []

    lectures = [f"      - '{f'{n} · ' if n else ''}{title}': lectures/{name}" for n, title, name in _lectures(report)]
    lab_nav = [f"      - {lab}: labs/{lab}.ipynb" for lab in labs]
    doc_nav = [f"      - {_title(p)}: docs/{p.name}" for p in docs]
    return "\n".join([
        f"site_name: 'Network pruning and the Lottery Ticket Hypothesis ({scale})'",
        "use_directory_urls: false",
        "theme:",
        "  name: material",
        "  font: false  # no web fonts: the site works offline",
        "  features: [navigation.sections, navigation.top, search.highlight]",
        "plugins:",
        "  - search",
        "  - mkdocs-jupyter:",
        "      execute: false",
        "      include_source: true",
        "      ignore_h1_titles: true",
        "validation:",
        "  links: {not_found: warn, anchors: warn, absolute_links: warn, unrecognized_links: warn}",
        "nav:",
        "  - Home: index.md",
        *section("Lectures", lectures),
        *section("Labs", lab_nav),
        *section("Docs", doc_nav),
        "",
    ])


def stage(report: pd.DataFrame, executed: Path, scale: str, work: Path,
          labs: Iterable[Path] | None = None, docs: Iterable[Path] | None = None) -> Path:
    """Write the MkDocs project for the executed lectures in ``executed`` into ``work``; return its config.

    ``labs`` and ``docs`` default to every lab folder and every page of ``docs/``.
    """
    docs = sorted(docs if docs is not None else DOCS.glob("*.md"))
    if work.exists():
        shutil.rmtree(work)
    for folder in ("docs/lectures", "docs/labs", "docs/docs"):
        (work / folder).mkdir(parents=True)
    for name in report["notebook"]:
        path = executed / name
        if path.is_file():
            nbformat.write(_for_the_web(nbformat.read(path, as_version=4)), work / "docs/lectures" / name)
    lab_names = []
    for lab in sorted(labs if labs is not None else (p for p in LABS.iterdir() if (p / f"{p.name}.ipynb").is_file())):
        source, template = labfmt.read_source(lab / f"{lab.name}.ipynb")
        nbformat.write(_for_the_web(labfmt.student_notebook(source, template)), work / "docs/labs" / f"{lab.name}.ipynb")
        lab_names.append(lab.name)
    for page in docs:
        shutil.copy(page, work / "docs/docs" / page.name)
    (work / "docs/index.md").write_text(_index(report, scale, lab_names, docs), encoding="utf-8")
    config = work / "mkdocs.yml"
    config.write_text(_config(scale, report, lab_names, docs), encoding="utf-8")
    return config


def broken_links(site: Path) -> list[str]:
    """Every relative link or anchor in the built pages under ``site`` that leads nowhere, as
    ``"page: link"`` (empty: none). External links are not followed (the build is offline)."""
    pages = {p: p.read_text(encoding="utf-8", errors="replace") for p in site.rglob("*.html")}
    ids = {p: {html.unescape(i) for i in _ID.findall(text)} for p, text in pages.items()}
    broken = []
    for page, text in pages.items():
        for link in {html.unescape(x) for x in _LINK.findall(text)}:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("data:", "javascript:", "mailto:")):
                continue
            base = site if parts.path.startswith("/") else page.parent  # "/x": from the site's root
            target = page if not parts.path else (base / unquote(parts.path).lstrip("/")).resolve()
            if parts.path.endswith("/"):
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link}")
            elif parts.fragment and target.suffix == ".html" and target in ids \
                    and unquote(parts.fragment) not in ids[target]:
                broken.append(f"{page.relative_to(site)}: {link} (no such anchor)")
    return sorted(broken)


def build_site(scale: str = "ci", out: str | Path = "build/site", timeout: int | None = None,
               notebook_timeout: int | None = None, notebooks: Iterable[Path] | None = None,
               labs: Iterable[Path] | None = None, docs: Iterable[Path] | None = None) -> pd.DataFrame:
    """Execute every lecture at ``scale``, stage it with the labs and docs, build the site into ``out``.

    Returns :func:`coursekit.tooling.notebooks.build_course`'s report. Raises ``RuntimeError`` when
    MkDocs refuses the site or a built page links to nothing (the messages name each problem).
    """
    out = Path(out).resolve()
    build = out.parent
    report = build_course(scale, build, notebooks, timeout=timeout, notebook_timeout=notebook_timeout)
    config = stage(report, build / scale, scale, build / "site-src", labs, docs)
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "--config-file",
                           str(config), "--site-dir", str(out)], capture_output=True, text=True,
                          cwd=config.parent)  # mkdocs-jupyter caches into the working folder
    if done.returncode:
        raise RuntimeError(f"MkDocs refused the site:\n{done.stderr[-3000:]}")
    broken = broken_links(out)
    if broken:
        raise RuntimeError(f"{len(broken)} broken link(s) in the site:\n" + "\n".join(broken[:50]))
    return report
