"""Lecture 12's driver: novelty vs fitness over seeds, success, the k × threshold grid, checks and figures."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib.figure import Figure

from coursekit import claims, novelty_search

SMALL = novelty_search.NoveltyLectureSettings(pop_size=30, generations=6, seeds=(0, 1), ks=(3,),
                                              thresholds=(3.0, 12.0), widget_generations=3,
                                              stop_when_solved=False)


@pytest.fixture(scope="module")
def results():
    return novelty_search.runs(SMALL, progress=False)


def test_runs_cover_both_objectives_and_every_seed(results):
    assert set(results) == {(o, s) for o in ("novelty", "fitness") for s in (0, 1)}
    frame = novelty_search.history(results)
    assert len(frame) == 4 * SMALL.generations and {"objective", "seed", "coverage", "closest"} <= set(frame)


def test_success_counts_the_runs_that_reached_the_goal(results):
    patterns = {("novelty", 0): [0, 0, 1, 1, 1, 1], ("novelty", 1): [0, 0, 0, 0, 1, 1],
                ("fitness", 0): [0] * 6, ("fitness", 1): [0] * 6}
    fake = {key: dataclasses.replace(r, history=r.history.assign(solved=[bool(v) for v in patterns[key]]))
            for key, r in results.items()}
    table = novelty_search.success(fake)
    assert table.loc["novelty"].tolist() == [2, 2, 1.0, 3.0]  # runs, solved, rate, median of generations 2 and 4
    assert table.loc["fitness", "solved"] == 0 and table.loc["fitness", "success rate"] == 0


def test_headline_and_figures(results):
    found = novelty_search.headline(results)
    assert len(found) == 1 and all(isinstance(c, claims.Claim) for c in found)
    grid = novelty_search.novelty_grid(SMALL, progress=False)
    assert set(grid) == {(3, 3.0), (3, 12.0)} and all(len(r.history) == 3 for r in grid.values())
    figures = [novelty_search.plot_mazes(), novelty_search.plot_behaviours(results, 0),
               novelty_search.plot_progress(results), novelty_search.plot_grid_choice(grid, 3, 12.0)]
    assert all(isinstance(f, Figure) for f in figures)
    with pytest.raises(ValueError, match=r"no run with k = 5, threshold = 3.0; the grid has"):
        novelty_search.plot_grid_choice(grid, 5, 3.0)


def test_bad_lecture_settings():
    with pytest.raises(ValueError, match="at least one value each"):
        novelty_search.NoveltyLectureSettings(ks=())
