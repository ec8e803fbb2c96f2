"""The deceptive maze and its robot (coursekit.methods.maze): map files, sensors, moves, the vectorised simulation."""

import math

import numpy as np
import pytest

from coursekit.methods import maze as mz

BOX = mz.parse_maze("start 50 50\nheading 0\ngoal 80 50\nwall 0 0 100 0\nwall 100 0 100 100\n"
                    "wall 100 100 0 100\nwall 0 100 0 0", "box")


def test_the_paper_maps_load_with_their_start_and_goal(tmp_path):
    assert (mz.MEDIUM.start, mz.MEDIUM.goal, len(mz.MEDIUM.walls)) == ((30, 22), (270, 100), 11)
    assert (mz.HARD.start, mz.HARD.goal, len(mz.HARD.walls)) == ((36, 184), (31, 20), 13)
    path = tmp_path / "box.txt"
    path.write_text("# a comment\nstart 50 50\ngoal 80 50  # the goal\nwall 0 0 100 0\nwall 0 100 100 100\n")
    box = mz.load_maze(path)
    assert box.name == "box" and box.heading == 0 and box.walls.shape == (2, 4)


@pytest.mark.parametrize("text, message", [
    ("start 50 50\nwall 0 0 100 0", "missing goal"),
    ("goal 5 5\nwall 0 0 100 0", "missing start"),
    ("start 50 50\ngoal 5 5", "missing walls"),
    ("start 50 50\ngoal 5 5\nwall 0 0 100", "line 3: 'wall 0 0 100' is not one of"),
    ("start 50 fifty\ngoal 5 5\nwall 0 0 100 0", "not a number"),
    ("start 50 3\ngoal 5 5\nwall 0 0 100 0", r"the start \(50.0, 3.0\) is inside a wall"),
])
def test_bad_maze_files_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        mz.parse_maze(text)


def test_rangefinders_and_radars_read_the_walls_and_the_goal():
    # facing +x at (50, 50) in a 100 × 100 box: walls 50 away ahead, behind, left and right
    readings = mz.sensors(BOX, np.array([50.0]), np.array([50.0]), np.array([0.0]))[0]
    diagonal = min(1.0, 50 * math.sqrt(2) / mz.RANGE)  # the ±45° rays reach the corners
    np.testing.assert_allclose(readings[:6], [0.5, diagonal, 0.5, diagonal, 0.5, 0.5])
    assert readings[6:].tolist() == [1, 0, 0, 0]  # the goal is straight ahead
    # turn by 90°, 180°, 270°: the goal moves to the right, back and left slices
    turned = mz.sensors(BOX, np.full(3, 50.0), np.full(3, 50.0), np.array([90.0, 180.0, 270.0]))
    assert turned[:, 6:].tolist() == [[0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]]
    near = mz.sensors(BOX, np.array([90.0]), np.array([50.0]), np.array([0.0]))[0]
    assert near[2] == pytest.approx(0.1) and near[5] == pytest.approx(0.9)  # walls 10 ahead, 90 behind
    far = mz.parse_maze("start 50 50\ngoal 0 0\nwall 0 300 300 300", "far")
    assert mz.sensors(far, np.array([50.0]), np.array([50.0]), np.array([0.0]))[0, :6].tolist() == [1.0] * 6
    # the one-robot version reads the same
    robot = mz.Robot(BOX)
    np.testing.assert_allclose(robot.sensors(), readings, rtol=1e-12)


def linear_controller(seed):
    w = np.random.default_rng(seed).normal(size=(mz.N_INPUTS, mz.N_OUTPUTS))
    return lambda x: 1 / (1 + np.exp(-(x - 0.5) @ w))


def test_vectorised_simulation_equals_one_robot_at_a_time():
    controllers = [linear_controller(s) for s in range(6)]
    together = mz.simulate(mz.MEDIUM, lambda x: np.stack([c(x[i:i + 1])[0] for i, c in enumerate(controllers)]),
                           robots=6, ticks=150)
    for i, controller in enumerate(controllers):
        robot = mz.Robot(mz.MEDIUM)
        path = [(robot.x, robot.y)]
        for _ in range(150):
            robot.step(controller(np.array([robot.sensors()]))[0].tolist())
            path.append((robot.x, robot.y))
        np.testing.assert_allclose(together.positions[i], path, rtol=0, atol=1e-9)
        assert together.solved[i] == robot.solved
    assert together.final.shape == (6, 2) and np.ptp(together.final, axis=0).max() > 5  # they went places


def test_robots_never_enter_walls_and_stop_at_the_goal():
    run = mz.simulate(mz.MEDIUM, linear_controller(7), robots=1, ticks=10)
    assert run.positions.shape == (1, 11, 2)
    flat = mz.simulate(mz.MEDIUM, lambda x: np.ones((len(x), 2)), robots=3, ticks=300)  # full speed, spinning
    distances = mz.wall_distance(mz.MEDIUM, flat.positions[..., 0], flat.positions[..., 1])
    assert distances.min() >= mz.RADIUS
    speed = np.linalg.norm(np.diff(flat.positions, axis=1), axis=-1)
    assert speed.max() <= mz.MAX_SPEED + 1e-9
    at_goal = mz.parse_maze("start 78 50\ngoal 80 50\nwall 0 0 100 0", "near")
    stuck = mz.simulate(at_goal, lambda x: np.ones((len(x), 2)), robots=2, ticks=20)
    assert stuck.solved.all() and np.allclose(stuck.positions, [78, 50])  # solved at the start: never moves


def test_bad_simulation_arguments():
    with pytest.raises(ValueError, match="robots ≥ 1"):
        mz.simulate(BOX, linear_controller(0), robots=0)
    with pytest.raises(ValueError, match=r"must return \(2, 2\) outputs, got \(2, 3\)"):
        mz.simulate(BOX, lambda x: np.zeros((len(x), 3)), robots=2, ticks=3)


def test_coverage_marks_the_cells_the_points_reach():
    grid = mz.coverage(BOX, np.array([[0.0, 0.0], [99.0, 99.0], [100.0, 100.0], [55.0, 5.0]]), cells=10)
    assert grid.sum() == 3 and grid[0, 0] and grid[9, 9] and grid[0, 5]
