"""The course's arc: one topic per lecture slide group, its notebook, and the modules that are its code.

``TOPICS`` is the single list the index notebook, ``coursekit list`` and ``make course``
read, so adding a topic means adding one :class:`Topic` here, its notebook under
``lectures/`` and its modules under ``coursekit/methods/`` and ``coursekit/lectures/``
(see ``docs/architecture.md``). :func:`layout_problems` checks the folders' rules.
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

import coursekit

REPO = Path(__file__).resolve().parents[2]
LECTURES = REPO / "lectures"
LABS = REPO / "labs"
# The folders of the package: what each holds and which others it may import.
SHARED = ("core", "tooling")  # used by every topic, claimed by none
MAY_IMPORT = {"core": {"core"}, "methods": {"core", "methods"}, "lectures": {"core", "methods", "lectures"},
              "tooling": {"core", "methods", "lectures", "tooling"}}


@dataclass(frozen=True)
class Topic:
    number: int
    slug: str
    title: str
    slides: str
    papers: str
    modules: tuple[str, ...] = ()  # its code: short names of modules in coursekit/methods/ and coursekit/lectures/

    @property
    def notebook(self) -> Path:
        return LECTURES / f"{self.number:02d}_{self.slug}.ipynb"


TOPICS = (
    Topic(0, "index", "Course overview and a first network", "1", "—", ("intro",)),
    Topic(1, "why_sparsity", "Why sparsity: storage and compute", "1–2",
          "Hoefler et al. 2021; Blalock et al. 2020", ("why_sparsity", "sparse_speed", "compress")),
    Topic(2, "lottery_tickets", "The Lottery Ticket Hypothesis (IMP, rewinding)", "3",
          "Frankle & Carbin 2019; Frankle et al. 2020", ("lottery_tickets", "lottery", "rewind")),
    Topic(3, "pruning_basics", "Masks, weight protocols and schedules", "4",
          "Zhou et al. 2019; Zhu & Gupta 2017", ("pruning_basics", "criteria", "schedules", "supermask")),
    Topic(4, "critical_periods", "Critical periods, Fisher information, information plane", "5",
          "Achille et al. 2019; Shwartz-Ziv & Tishby 2017",
          ("critical", "information_plane", "spectra", "mutual_info")),
    Topic(5, "early_bird", "Early-Bird tickets and spectral bias", "6",
          "You et al. 2020; Rahaman et al. 2019", ("early_bird", "spectral_bias", "slimming")),
    Topic(6, "data_oblivious", "Structured, low-rank pruning and compression", "7",
          "Han et al. 2015, 2016; Li et al. 2017; Denton et al. 2014",
          ("data_oblivious", "structured", "lowrank", "coding")),
    Topic(7, "saliency", "Data-dependent saliency: OBD, OBS, Taylor, SNIP, movement", "8",
          "LeCun et al. 1990; Hassibi & Stork 1993; Lee et al. 2019; Sanh et al. 2020",
          ("data_dependent", "saliency")),
    Topic(8, "gating", "Hebbian pruning, redundancy and gates", "9",
          "Suau et al. 2020; Dai et al. 2018; Louizos et al. 2018", ("gating", "hebbian", "pfa", "gates")),
    Topic(9, "layer_collapse", "Sparsity vs depth: layer collapse and budgets", "10",
          "Tanaka et al. 2020; Wang et al. 2020; Evci et al. 2020", ("layer_collapse", "budgets", "at_init", "connectivity")),
    Topic(10, "set", "Sparse Evolutionary Training", "11", "Mocanu et al. 2018; Evci et al. 2020",
          ("sparse_evolution", "dynamic_sparse")),
    Topic(11, "kwinners", "Permutations, dimension and k-winners", "12",
          "Ahmad & Scheinkman 2019; Ainsworth et al. 2023",
          ("sparse_representations", "permutations", "overlap", "kwinners")),
    Topic(12, "novelty", "Novelty search", "13", "Lehman & Stanley 2011",
          ("novelty_search", "novelty", "maze", "neuroevolution")),
    Topic(13, "sparse_architectures", "Architectures sparsified by hand", "14",
          "Iandola et al. 2016; Howard et al. 2017", ("sparse_architectures",)),
    Topic(14, "double_descent", "Sparse double descent", "14", "He et al. 2022",
          ("sparse_double_descent", "double_descent")),
    Topic(15, "sloppy_spectra", "Sloppy spectra and low-dimensional training", "14",
          "Yang, Mao & Chaudhari 2022; Mao et al. 2024", ("sloppy_spectra",)),
    Topic(16, "summary", "Summary and open directions", "15", "—", ("directions",)),
)


def topics() -> pd.DataFrame:
    """All topics, one row each, with the notebook's path, whether it exists yet and its modules."""
    rows = []
    for t in TOPICS:
        row = asdict(t)
        row["notebook"] = str(t.notebook.relative_to(REPO))
        row["available"] = t.notebook.is_file()
        row["modules"] = [coursekit.modules()[m].removeprefix("coursekit.") for m in t.modules]
        rows.append(row)
    return pd.DataFrame(rows).set_index("number")


def contents_markdown(topics: tuple[Topic, ...] = TOPICS) -> str:
    """The index notebook's table of contents: a link to every lecture notebook after the index, relative
    to ``lectures/`` (``tests/test_course.py`` checks that ``00_index.ipynb`` holds exactly this text)."""
    rows = ["| # | lecture | slides | papers |", "|---|---|---|---|"]
    rows += [f"| {t.number:02d} | [{t.title}]({t.notebook.name}) | {t.slides} | {t.papers} |"
             for t in topics if t.number]
    return "\n".join(rows)


def lecture_notebooks() -> list[Path]:
    """The lecture notebooks that exist, in course order (unlisted ones last, by name)."""
    listed = [t.notebook for t in TOPICS if t.notebook.is_file()]
    extra = sorted(p for p in LECTURES.glob("*.ipynb") if p not in listed)
    return listed + extra


# --------------------------------------------------------------------------- the layout's rules

def _folder(module: str) -> str | None:
    """``core``, ``methods``, ``lectures`` or ``tooling`` for ``coursekit.<folder>.…``; else ``None``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "coursekit" and parts[1] in MAY_IMPORT else None


def _imports(path: Path, module: str, short: dict[str, str]) -> set[str]:
    """The coursekit modules that the file ``path`` (module ``module``) imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("coursekit.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "coursekit":
                found |= {short.get(a.name, f"coursekit.{a.name}") for a in node.names}
            elif node.module.startswith("coursekit."):
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in short.values() else node.module
                          for a in node.names}
    return {m for m in found if m != module}


def layout_problems(root: Path | None = None, topics: tuple[Topic, ...] = TOPICS) -> list[str]:
    """Every breach of the package's layout (``docs/architecture.md``); ``[]`` when there is none.

    Every module lives in one of the four folders; one in ``methods/`` or ``lectures/``
    is claimed by exactly one topic (``Topic.modules``), one in ``core/`` or ``tooling/``
    by none; core imports only core, methods only core and methods, and a lecture's
    module no other topic's lecture module.
    """
    root = Path(root or Path(coursekit.__file__).parent)
    short: dict[str, str] = {}
    files: dict[str, Path] = {}
    problems = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = ".".join(("coursekit", *parts))
        files[module] = path
        if len(parts) == 2:
            short[parts[1]] = module
        if parts and parts[0] not in MAY_IMPORT:
            problems.append(f"{module}: outside the folders {tuple(MAY_IMPORT)}")
    owners: dict[str, list[int]] = {}
    for t in topics:
        for name in t.modules:
            owners.setdefault(name, []).append(t.number)
            if name not in short:
                problems.append(f"topic {t.number} claims {name!r}, which is no module of {tuple(MAY_IMPORT)}")
    for name, module in sorted(short.items()):
        folder, claimed = _folder(module), owners.get(name, [])
        if folder in SHARED and claimed:
            problems.append(f"{module}: in {folder}/, shared by all topics, but claimed by topic(s) {claimed}")
        elif folder not in SHARED and len(claimed) != 1:
            problems.append(f"{module}: claimed by {len(claimed)} topics {claimed}; a module in {folder}/ "
                            "belongs to exactly one (course.TOPICS)")
    topic_of = {short[n]: t.number for t in topics for n in t.modules if n in short}
    for module, path in sorted(files.items()):
        folder = _folder(module)
        for target in sorted(_imports(path, module, short)):
            other = _folder(target)
            if folder is None or other is None:
                continue
            if other not in MAY_IMPORT[folder]:
                problems.append(f"{module} imports {target}: {folder}/ may import only {sorted(MAY_IMPORT[folder])}")
            elif folder == other == "lectures" and topic_of.get(module) != topic_of.get(target):
                problems.append(f"{module} imports {target}, the lecture module of another topic")
    return problems
