"""The course's arc: one topic per lecture slide group, and where its notebook lives.

``topics()`` is the single list the index notebook, ``coursekit list`` and
``make course`` read, so adding a topic means adding one :class:`Topic` here and
its notebook under ``lectures/`` (see ``docs/architecture.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
LECTURES = REPO / "lectures"
LABS = REPO / "labs"


@dataclass(frozen=True)
class Topic:
    number: int
    slug: str
    title: str
    slides: str
    papers: str

    @property
    def notebook(self) -> Path:
        return LECTURES / f"{self.number:02d}_{self.slug}.ipynb"


TOPICS = (
    Topic(0, "index", "Course overview and a first network", "1", "—"),
    Topic(1, "why_sparsity", "Why sparsity: storage and compute", "1–2",
          "Hoefler et al. 2021; Blalock et al. 2020"),
    Topic(2, "lottery_tickets", "The Lottery Ticket Hypothesis (IMP, rewinding)", "3",
          "Frankle & Carbin 2019; Frankle et al. 2020"),
    Topic(3, "pruning_basics", "Masks, weight protocols and schedules", "4",
          "Zhou et al. 2019; Zhu & Gupta 2017"),
    Topic(4, "critical_periods", "Critical periods, Fisher information, information plane", "5",
          "Achille et al. 2019; Shwartz-Ziv & Tishby 2017"),
    Topic(5, "early_bird", "Early-Bird tickets and spectral bias", "6",
          "You et al. 2020; Rahaman et al. 2019"),
    Topic(6, "data_oblivious", "Structured, low-rank pruning and compression", "7",
          "Han et al. 2015, 2016; Li et al. 2017; Denton et al. 2014"),
    Topic(7, "saliency", "Data-dependent saliency: OBD, OBS, Taylor, SNIP, movement", "8",
          "LeCun et al. 1990; Hassibi & Stork 1993; Lee et al. 2019; Sanh et al. 2020"),
    Topic(8, "gating", "Hebbian pruning, redundancy and gates", "9",
          "Suau et al. 2020; Dai et al. 2018; Louizos et al. 2018"),
    Topic(9, "layer_collapse", "Sparsity vs depth: layer collapse and budgets", "10",
          "Tanaka et al. 2020; Wang et al. 2020; Evci et al. 2020"),
    Topic(10, "set", "Sparse Evolutionary Training", "11", "Mocanu et al. 2018; Evci et al. 2020"),
    Topic(11, "kwinners", "Permutations, dimension and k-winners", "12",
          "Ahmad & Scheinkman 2019; Ainsworth et al. 2023"),
    Topic(12, "novelty", "Novelty search", "13", "Lehman & Stanley 2011"),
    Topic(13, "sparse_architectures", "Architectures sparsified by hand", "14",
          "Iandola et al. 2016; Howard et al. 2017"),
    Topic(14, "double_descent", "Sparse double descent", "14", "He et al. 2022"),
    Topic(15, "sloppy_spectra", "Sloppy spectra and low-dimensional training", "14",
          "Yang, Mao & Chaudhari 2022; Mao et al. 2024"),
    Topic(16, "summary", "Summary and open directions", "15", "—"),
)


def topics() -> pd.DataFrame:
    """All topics, one row each, with the notebook's path and whether it exists yet."""
    rows = []
    for t in TOPICS:
        row = asdict(t)
        row["notebook"] = str(t.notebook.relative_to(REPO))
        row["available"] = t.notebook.is_file()
        rows.append(row)
    return pd.DataFrame(rows).set_index("number")


def lecture_notebooks() -> list[Path]:
    """The lecture notebooks that exist, in course order (unlisted ones last, by name)."""
    listed = [t.notebook for t in TOPICS if t.notebook.is_file()]
    extra = sorted(p for p in LECTURES.glob("*.ipynb") if p not in listed)
    return listed + extra
