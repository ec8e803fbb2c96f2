"""Lecture 16: the map of the course and its open questions (slide 15, "Summary of important directions").

:func:`course_map` lists every lecture with its slides, papers and link; :data:`PROMPTS` holds
the open questions of the slides (slide 2's two, slide 6's "not well studied and understood",
and those the later slides raise), each pointing at the sections of the notebooks where the
course gives material for the discussion. :func:`pointer_problems` checks every pointer
against the notebooks' headings, so a renamed section cannot leave a dead link.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import pandas as pd

from coursekit.core.claims import Claim


class Topic(Protocol):
    """What this module reads of a course topic (:class:`coursekit.tooling.course.Topic`)."""

    number: int
    title: str
    slides: str
    papers: str

    @property
    def notebook(self) -> Path: ...


@dataclass(frozen=True)
class Prompt:
    """An open question for discussion: where the slides raise it, and ``(notebook stem, section heading)``
    pointers to the material in the course."""

    question: str
    slide: str
    pointers: tuple[tuple[str, str], ...]


PROMPTS = (
    Prompt("How do we pick the optimal architecture for a given task? Is pruning a search over architectures, "
           "and is it a good one?", "2",
           (("02_lottery_tickets", "Where does a ticket keep its weights?"),
            ("09_layer_collapse", "Where does each method put its weights?"),
            ("13_sparse_architectures", "Pruned alike: the compact net breaks first"))),
    Prompt("Can sparsity make a network explainable? What does a pruned network's mask tell us about the data "
           "and the task?", "2",
           (("02_lottery_tickets", "Where does a ticket keep its weights?"),
            ("08_gating", "Mutual information with the label"),
            ("03_pruning_basics", "The supermask: accuracy with no training"))),
    Prompt("How do the rate, precision and aggressiveness of a pruning schedule scale with the network and the "
           "data? (\"not well studied and understood\")", "6",
           (("03_pruning_basics", "When to prune: one-shot, iterative, gradual"),
            ("05_early_bird", "Searching for the Early-Bird"),
            ("04_critical_periods", "A cataract for a network"))),
    Prompt("Why can winning tickets be drawn so early — is connectivity fixed first and fine-tuned later, and "
           "what has the network learned by then?", "5–6",
           (("05_early_bird", "Spectral bias: low frequencies first"),
            ("04_critical_periods", "The Fisher information: how strongly weights are connected"),
            ("02_lottery_tickets", "The headline: accuracy vs weights remaining"))),
    Prompt("Sensitivity measures are local: how should a criterion see the global effect of a deep neuron, and "
           "how should the budget be split across layers?", "10",
           (("07_saliency", "One expansion, many saliencies"),
            ("09_layer_collapse", "Five ways to spend a budget"),
            ("07_saliency", "Optimal Brain Surgeon: remove, then repair"))),
    Prompt("Should we prune at all, or train sparse from the start? What does a dense network have that a "
           "sparse one trained from scratch lacks?", "11–12",
           (("10_set", "Sparse from the start, and evolving"),
            ("11_kwinners", "3 · Dense and sparse networks under noise"),
            ("03_pruning_basics", "Global or layer-wise?"))),
    Prompt("When does pruning help generalisation rather than cost it, and how should we choose the sparsity "
           "when accuracy can fall and rise again?", "14",
           (("14_double_descent", "Why: what the network still fits"),
            ("15_sloppy_spectra", "Effective dimension ≪ parameters"))),
    Prompt("Is the loss the right thing to follow? Could exploring many different solutions (masks, tickets, "
           "basins) beat optimising one?", "13",
           (("12_novelty", "Coverage, closeness and success over seeds"),
            ("11_kwinners", "1 · Permutations: many networks, one function"))),
    Prompt("Real data is sloppy and training is low-dimensional: can we prune along the few stiff directions "
           "directly, or train only in them?", "14",
           (("15_sloppy_spectra", "Training moves along a few directions"),
            ("06_data_oblivious", "Three methods at the same budgets"),
            ("08_gating", "Redundant populations: the spectrum of a layer"))),
)


def headings(notebook: Path) -> list[str]:
    """The section headings of a notebook's markdown cells, without the ``#`` marks."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [line.lstrip("#").strip() for cell in cells if cell["cell_type"] == "markdown"
            for line in "".join(cell["source"]).splitlines() if line.startswith("#")]


def link(stem: str, heading: str | None = None) -> str:
    """A Markdown link to a notebook (and a section: JupyterLab's anchor is the heading with ``-`` for spaces,
    percent-encoded here), relative to ``lectures/``."""
    anchor = f"#{quote(heading.replace(' ', '-'), safe='-:')}" if heading else ""
    return f"[{heading or stem}]({stem}.ipynb{anchor})"


def pointer_problems(folder: Path, prompts: tuple[Prompt, ...] = PROMPTS) -> list[str]:
    """Every pointer whose notebook (in ``folder``) or section heading does not exist, in words (empty: all
    resolve)."""
    problems = []
    for prompt in prompts:
        for stem, heading in prompt.pointers:
            path = folder / f"{stem}.ipynb"
            if not path.is_file():
                problems.append(f"{prompt.question[:40]}…: no notebook {path.name}")
            elif heading not in headings(path):
                problems.append(f"{prompt.question[:40]}…: {path.name} has no section {heading!r}")
    return problems


def course_map(topics: Sequence[Topic]) -> pd.DataFrame:
    """One row per lecture (``coursekit.course.TOPICS``): number, title, slides, papers, and whether its
    notebook exists."""
    rows = [{"lecture": t.number, "title": t.title, "slides": t.slides, "papers": t.papers,
             "notebook": t.notebook.name, "written": t.notebook.is_file()} for t in topics]
    return pd.DataFrame(rows).set_index("lecture")


def map_markdown(topics: Sequence[Topic]) -> str:
    """The course map as a Markdown table, each title linking to its notebook."""
    lines = ["| # | lecture | slides | papers |", "|---|---|---|---|"]
    for t in topics:
        title = f"[{t.title}]({t.notebook.name})" if t.notebook.is_file() else t.title
        lines.append(f"| {t.number:02d} | {title} | {t.slides} | {t.papers} |")
    return "\n".join(lines)


def prompt_markdown(prompt: Prompt, number: int) -> str:
    """One prompt as a Markdown list item: the question, its slide, and links into the lectures."""
    pointers = "; ".join(f"{stem[:2]} · {link(stem, heading)}" for stem, heading in prompt.pointers)
    return f"{number}. **{prompt.question}** *(slide {prompt.slide})*  \n   Material: {pointers}"


def prompts_markdown(prompts: tuple[Prompt, ...] = PROMPTS) -> str:
    """The discussion prompts as a numbered Markdown list, each with its slide and links into the lectures."""
    return "\n".join(prompt_markdown(prompt, i) for i, prompt in enumerate(prompts, 1))


def lectures_markdown(topics: Sequence[Topic], stems: Sequence[str]) -> str:
    """The prompts that point into any of the notebooks ``stems`` (all prompts for none), for the widget."""
    chosen = [(i, p) for i, p in enumerate(PROMPTS, 1)
              if not stems or any(stem in stems for stem, _ in p.pointers)]
    names = {t.notebook.stem: t.title for t in topics}
    head = ", ".join(names.get(s, s) for s in stems) if stems else "all lectures"
    body = "\n".join(prompt_markdown(p, i) for i, p in chosen) or "*No prompt points there yet: write one.*"
    return f"**{len(chosen)} prompt(s) drawing on {head}:**\n\n{body}"


def headline(topics: Sequence[Topic], folder: Path) -> list[Claim]:
    """Lecture 16's checks: every lecture of the course map has its notebook, and every pointer of every
    discussion prompt reaches an existing section of a notebook in ``folder``."""
    missing = course_map(topics)["written"].eq(False).sum()
    return [Claim("lectures of the map without a notebook", int(missing), "<=", 0),
            Claim("prompt pointers that do not resolve", len(pointer_problems(folder)), "<=", 0)]
