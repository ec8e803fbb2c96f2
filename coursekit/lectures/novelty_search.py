"""Lecture 12's experiments: novelty search against fitness in the deceptive maze (slide 13).

Lehman & Stanley (2011) evolve maze-navigating robots with NEAT twice: rewarded for
ending close to the goal (fitness) or for ending somewhere new (novelty). :func:`runs`
does both for several seeds at one budget (:func:`coursekit.methods.neuroevolution.search`),
:func:`success` reads when each run first reached the goal, :func:`novelty_grid` varies
novelty's ``k`` and archive threshold (what the widget browses), and :func:`headline`
states the lecture's checks. The figures are here too (``plot_*``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from coursekit.core.claims import Claim
from coursekit.core.plots import percent, styled
from coursekit.core.progress import tqdm
from coursekit.methods import maze as mazes
from coursekit.methods.neuroevolution import OBJECTIVES, SearchResult, SearchSettings, search

COLORS = {"novelty": "C0", "fitness": "C3"}


@dataclass(frozen=True)
class NoveltyLectureSettings(SearchSettings):
    """``lectures/12_novelty.ipynb``'s knobs: one search's (:class:`SearchSettings`), how many ``seeds`` each
    search runs for, and the widget's grid of novelty neighbours ``ks`` × archive ``thresholds``, run for
    ``widget_generations``."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    ks: tuple[int, ...] = (3, 15)
    thresholds: tuple[float, ...] = (3.0, 12.0)
    widget_generations: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.seeds or not self.ks or not self.thresholds or self.widget_generations < 1:
            raise ValueError("seeds, ks and thresholds need at least one value each and widget_generations ≥ 1")


PRESETS = {
    "ci": NoveltyLectureSettings(pop_size=60, generations=30, seeds=(0, 1), widget_generations=10,
                                 stop_when_solved=False),
    "cpu": NoveltyLectureSettings(pop_size=150, generations=120, seeds=tuple(range(8)), ks=(1, 3, 15, 50),
                                  thresholds=(2.0, 6.0, 18.0), widget_generations=40, stop_when_solved=False),
    "gpu": NoveltyLectureSettings(pop_size=250, generations=250, seeds=tuple(range(20)), ks=(1, 3, 15, 50),
                                  thresholds=(2.0, 6.0, 18.0), widget_generations=80, stop_when_solved=False),
}


def runs(settings: NoveltyLectureSettings, seeds: tuple[int, ...] | None = None,
         progress: bool = True) -> dict[tuple[str, int], SearchResult]:
    """Novelty and fitness search for every seed (``settings.seeds`` unless given), keyed ``(objective, seed)``."""
    jobs = [(objective, seed) for seed in (seeds or settings.seeds) for objective in OBJECTIVES]
    return {job: search(settings, *job) for job in tqdm(jobs, desc="searches", disable=not progress)}


def history(results: dict[tuple[str, int], SearchResult]) -> pd.DataFrame:
    """Every run's generations in one table: ``objective``, ``seed``, ``generation``, ``closest``, ``coverage``, …"""
    return pd.concat([r.history.reset_index().assign(objective=o, seed=s) for (o, s), r in results.items()],
                     ignore_index=True)


def success(results: dict[tuple[str, int], SearchResult]) -> pd.DataFrame:
    """One row per objective: runs, how many reached the goal, the fraction, and the median generation it took."""
    rows = []
    for objective in OBJECTIVES:
        found = [r.solved_at for (o, _), r in results.items() if o == objective]
        hits = [g for g in found if g is not None]
        rows.append({"objective": objective, "runs": len(found), "solved": len(hits),
                     "success rate": len(hits) / len(found),
                     "median generation": float(np.median(hits)) if hits else float("nan")})
    return pd.DataFrame(rows).set_index("objective")


def novelty_grid(settings: NoveltyLectureSettings, seed: int = 0,
                 progress: bool = True) -> dict[tuple[int, float], SearchResult]:
    """Novelty search for every ``k`` × archive threshold of the settings, ``widget_generations`` each."""
    pairs = [(k, t) for k in settings.ks for t in settings.thresholds]
    short = replace(settings, generations=settings.widget_generations)
    return {(k, t): search(replace(short, k=k, archive_threshold=t), "novelty", seed)
            for k, t in tqdm(pairs, desc="novelty k × threshold", disable=not progress)}


def headline(results: dict[tuple[str, int], SearchResult]) -> list[Claim]:
    """Lecture 12's check (Lehman & Stanley 2011), a weak form that holds at ``ci`` scale.

    At the same budget, novelty search's end points cover more of the maze than fitness
    search's (on average over the seeds run; 6 to 20 points per seed at ``ci`` scale, seeds
    0–5). Its best robot does not yet end closer to the goal at ``ci`` scale in every run, and
    reaching the goal more often needs more generations: the notebook shows both at ``cpu``
    scale.
    """
    frame = history(results)
    last = frame.sort_values("generation").groupby(["objective", "seed"]).last()
    gap = (last.loc["novelty", "coverage"] - last.loc["fitness", "coverage"]).mean()
    return [Claim("novelty minus fitness: maze cells covered (mean over seeds)", gap, ">", 0.0)]


# ------------------------------------------------------------------ figures

def _draw_maze(ax, maze: mazes.Maze) -> None:
    for x1, y1, x2, y2 in maze.walls:
        ax.plot([x1, x2], [y1, y2], color="0.15", lw=2.5, solid_capstyle="round")
    ax.plot(*maze.start, marker="o", ms=9, color="C2", ls="none", label="start")
    ax.plot(*maze.goal, marker="*", ms=16, color="gold", mec="0.2", ls="none", label="goal")
    ax.set_aspect("equal")
    ax.invert_yaxis()  # the maps' y axis points down, as on Lehman's screen
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_end_points(ax, result: SearchResult):
    """Every generation's end points, coloured by generation; returns the scatter (for a colour bar)."""
    generation = np.repeat(np.arange(len(result.finals)), [len(f) for f in result.finals])
    return ax.scatter(*np.concatenate(result.finals).T, c=generation, cmap="viridis", s=5, alpha=0.6)


def plot_mazes() -> Figure:
    """The medium and the hard map, with start, goal and the robot's size."""
    with styled():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained", width_ratios=[1.6, 1])
        for ax, (name, maze) in zip(axes, mazes.MAZES.items(), strict=True):
            _draw_maze(ax, maze)
            ax.add_patch(plt.Circle(maze.start, mazes.RADIUS, fill=False, color="C2"))
            ax.set_title(f"the {name} map", fontsize=10)
        axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, 0), ncol=3, fontsize="small", frameon=False)
    return fig


def plot_behaviours(results: dict[tuple[str, int], SearchResult], seed: int, maze: str = "medium") -> Figure:
    """Where every robot of every generation ended (colour: generation) and the best robot's path, per objective."""
    with styled():
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
        for ax, objective in zip(axes, OBJECTIVES, strict=True):
            result = results[(objective, seed)]
            _draw_maze(ax, mazes.MAZES[maze])
            dots = _draw_end_points(ax, result)
            ax.plot(*result.best_path.T, color=COLORS[objective], lw=2, label="the robot that got closest")
            solved = "reached the goal" if result.solved_at is not None else "did not reach the goal"
            ax.set_title(f"{objective} search: {dots.get_offsets().shape[0]:,} robots' end points ({solved})",
                         fontsize=10)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0), ncol=3, fontsize="small", frameon=False)
        fig.colorbar(dots, ax=axes, shrink=0.8, label="generation")
    return fig


def plot_progress(results: dict[tuple[str, int], SearchResult]) -> Figure:
    """Per generation, over seeds: the share of maze cells the end points have covered, the closest approach to the
    goal, and the share of runs that have reached it."""
    frame = history(results)
    with styled():
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
        for objective in OBJECTIVES:
            part = frame[frame["objective"] == objective]
            color = COLORS[objective]
            for column, ax in zip(("coverage", "closest"), axes[:2], strict=True):
                table = part.pivot(index="generation", columns="seed", values=column)
                if column == "closest":
                    table = table.cummin()  # the closest so far
                ax.plot(table.index, table.median(axis=1), color=color, lw=2, label=f"{objective} (median)")
                ax.fill_between(table.index, table.min(axis=1), table.max(axis=1), color=color, alpha=0.15)
            solved = part.pivot(index="generation", columns="seed", values="solved").cummax().mean(axis=1)
            axes[2].step(solved.index, solved, where="post", color=color, lw=2, label=objective)
        axes[0].set_ylabel("maze cells reached (share)")
        axes[1].set_ylabel("closest end point to the goal so far")
        axes[2].set_ylabel("runs that reached the goal")
        for ax in (axes[0], axes[2]):
            percent(ax.yaxis)
        axes[2].set_ylim(-0.03, 1.03)
        for ax in axes:
            ax.set_xlabel("generation")
        axes[0].legend(fontsize="small")
        fig.suptitle(f"{frame['seed'].nunique()} seeds per search; band: lowest to highest over seeds", fontsize=10)
    return fig


def plot_grid_choice(grid: dict[tuple[int, float], SearchResult], k: int, threshold: float,
                     maze: str = "medium") -> Figure:
    """The widget's figure: novelty search with ``k`` neighbours and the archive threshold — its end points, and
    its coverage beside every other choice's."""
    if (k, threshold) not in grid:
        raise ValueError(f"no run with k = {k}, threshold = {threshold}; the grid has {sorted(grid)}")
    chosen = grid[(k, threshold)]
    with styled():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.0), layout="constrained", width_ratios=[1.5, 1])
        _draw_maze(left, mazes.MAZES[maze])
        _draw_end_points(left, chosen)
        left.set_title(f"k = {k}, threshold = {threshold:g}: end points; archive of "
                       f"{chosen.history['archive'].iloc[-1]} behaviours", fontsize=10)
        for (kk, tt), result in grid.items():
            mine = (kk, tt) == (k, threshold)
            right.plot(result.history.index, result.history["coverage"], color="C0" if mine else "0.75",
                       lw=2.5 if mine else 1, zorder=3 if mine else 1, label="this choice" if mine else None)
        right.plot([], [], color="0.75", label="the other choices")
        right.set_xlabel("generation")
        right.set_ylabel("maze cells reached (share)")
        percent(right.yaxis)
        right.legend(fontsize="small", loc="lower right")
    return fig
