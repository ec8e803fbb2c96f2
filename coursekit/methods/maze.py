"""The deceptive maze of novelty search and its robot (slide 13; Lehman & Stanley 2011).

A round robot (radius 8) starts in one corner of a maze of wall segments and has 400
ticks to reach the goal. It senses the walls with six rangefinders (at −90°, −45°, 0°,
45°, 90° and 180° from its heading, range 100, read as distance / range) and the goal with
four pie-slice radars (front, left, back, right: 1 in the slice that holds the goal). Its
controller's two outputs ``o ∈ [0, 1]²`` are accelerations: the angular velocity changes
by ``o₁ − ½`` degrees per tick and the speed by ``o₂ − ½``, both clamped to ±3; a move
that would bring the robot within its radius of a wall is not taken. A robot within
``goal_radius`` (5) of the goal has solved the maze and stops there. The *behaviour* that
novelty search compares is where the robot ends up.

:data:`MEDIUM` and :data:`HARD` are the two maps of the paper (from Lehman's published
code). Fitness (closeness to the goal) is deceptive on both: the straight path leads into
a dead end. :class:`Robot` is the readable one-robot simulation, :func:`simulate` its
vectorised form that moves a whole population one tick at a time (the two are tested
equal).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RADIUS = 8.0
RANGE = 100.0
RANGEFINDERS = (-90.0, -45.0, 0.0, 45.0, 90.0, -180.0)  # degrees from the heading
RADARS = ("front", "left", "back", "right")  # 90° slices centred on 0°, 90°, 180°, 270°
N_INPUTS = len(RANGEFINDERS) + len(RADARS)
N_OUTPUTS = 2
MAX_SPEED = 3.0

Controller = Callable[[np.ndarray], np.ndarray]  # (robots, N_INPUTS) → (robots, N_OUTPUTS) in [0, 1]


@dataclass(frozen=True)
class Maze:
    """Wall segments ``(x₁, y₁, x₂, y₂)``, the robot's start and heading (degrees) and the goal."""

    walls: np.ndarray
    start: tuple[float, float]
    heading: float
    goal: tuple[float, float]
    name: str = "maze"

    def __post_init__(self) -> None:
        walls = np.asarray(self.walls, dtype=np.float64)
        if walls.ndim != 2 or walls.shape[1] != 4 or len(walls) == 0:
            raise ValueError(f"{self.name}: walls must be (segments ≥ 1, 4), got shape {walls.shape}")
        object.__setattr__(self, "walls", walls)
        if wall_distance(self, *self.start) < RADIUS:
            raise ValueError(f"{self.name}: the start {self.start} is inside a wall (closer than the robot's "
                             f"radius {RADIUS} to one); move it into the open")

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(x_min, y_min, x_max, y_max)`` of the walls."""
        xs, ys = self.walls[:, [0, 2]], self.walls[:, [1, 3]]
        return xs.min(), ys.min(), xs.max(), ys.max()


def parse_maze(text: str, name: str = "maze") -> Maze:
    """A maze from lines ``start x y``, ``heading deg``, ``goal x y`` and ``wall x1 y1 x2 y2`` (``#`` comments)."""
    found: dict[str, list[float]] = {}
    walls = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        key, values = line[0], line[1:]
        want = {"start": 2, "goal": 2, "heading": 1, "wall": 4}.get(key)
        if want is None or len(values) != want:
            raise ValueError(f"{name}, line {number}: {raw.strip()!r} is not one of 'start x y', 'heading deg', "
                             f"'goal x y', 'wall x1 y1 x2 y2'")
        try:
            numbers = [float(v) for v in values]
        except ValueError as e:
            raise ValueError(f"{name}, line {number}: {raw.strip()!r} has a value that is not a number") from e
        if key == "wall":
            walls.append(numbers)
        else:
            found[key] = numbers
    missing = [k for k in ("start", "goal") if k not in found]
    if missing or not walls:
        raise ValueError(f"{name}: a maze needs a start, a goal and at least one wall; missing "
                         f"{', '.join(missing) or 'walls'}")
    return Maze(np.array(walls), tuple(found["start"]), found.get("heading", [0.0])[0], tuple(found["goal"]), name)


def load_maze(path: str | Path) -> Maze:
    """Read a maze file (the format of :func:`parse_maze`)."""
    path = Path(path)
    return parse_maze(path.read_text(), path.stem)


def wall_distance(maze: Maze, x, y):
    """Distance from each point ``(x, y)`` (scalars or arrays of one shape) to the nearest wall."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ax, ay, bx, by = (c.reshape(-1, *[1] * x.ndim) for c in maze.walls.T)  # walls first: min over axis 0
    dx, dy = bx - ax, by - ay
    u = np.clip(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(ax + u * dx - x, ay + u * dy - y).min(0)


def sensors(maze: Maze, x: np.ndarray, y: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """The ``(robots, 10)`` inputs: six rangefinders (distance / range, 1 when nothing is in range), four radars."""
    h = np.radians(heading)[:, None]
    offsets = np.radians(RANGEFINDERS)
    rays = np.stack([np.cos(h + offsets).ravel(), np.sin(h + offsets).ravel()]) * RANGE  # (2, robots·6)
    # With r a ray, w = b − a a wall and p the robot, the crossing is at p + t·r = a + u·w with
    # t = (a − p) × w / (r × w) and u = (a − p) × r / (r × w). Each cross product splits into a
    # matrix product (walls × rays) and a per-wall or per-ray term; arrays are (walls, robots·6)
    # so that the nearest wall is a reduction over the first axis, which numpy does fastest.
    ax, ay, bx, by = maze.walls.T
    cross_w = np.stack([by - ay, ax - bx], 1)  # (walls, 2): cross_w @ v = v × w
    cross_a = np.stack([-ay, ax], 1)  # cross_a @ v = a × v
    rays_per_robot = len(RANGEFINDERS)
    position = np.stack([x, y])
    with np.errstate(divide="ignore", invalid="ignore"):
        denominator = cross_w @ rays  # 0 when parallel; then t and u are inf or nan and miss
        t_top = (cross_w @ maze.walls[:, :2].T).diagonal()[:, None] - cross_w @ position  # (walls, robots)
        t = np.repeat(t_top, rays_per_robot, axis=1) / denominator
        u = (cross_a @ rays - (np.repeat(x, rays_per_robot) * rays[1] - np.repeat(y, rays_per_robot) * rays[0])) \
            / denominator
        hit = (np.abs(t - 0.5) < 0.5) & (np.abs(u - 0.5) < 0.5)  # both strictly inside (0, 1)
    ranges = np.where(hit, t, 1.0).min(0).reshape(len(x), rays_per_robot)
    bearing = (np.degrees(np.arctan2(maze.goal[1] - y, maze.goal[0] - x)) - heading) % 360.0
    slice_ = (((bearing + 45.0) % 360.0) // 90.0).astype(int)  # 0 front, 1 left, 2 back, 3 right
    radars = np.eye(len(RADARS))[slice_]
    return np.concatenate([ranges, radars], axis=1)


@dataclass
class Trajectories:
    """Where each robot was at every tick (``positions``: robots × (ticks + 1) × 2) and whether it solved the maze."""

    positions: np.ndarray
    solved: np.ndarray

    @property
    def final(self) -> np.ndarray:
        """Each robot's behaviour: where it ended up, ``(robots, 2)``."""
        return self.positions[:, -1]


def simulate(maze: Maze, controller: Controller, robots: int, ticks: int = 400,
             goal_radius: float = 5.0) -> Trajectories:
    """Run ``robots`` robots together for ``ticks`` ticks, one vectorised step per tick.

    ``controller`` maps the ``(robots, 10)`` sensor readings to ``(robots, 2)`` outputs in
    ``[0, 1]`` — e.g. a :class:`coursekit.methods.neuroevolution.PopulationNet`.
    """
    if robots < 1 or ticks < 1 or not goal_radius > 0:
        raise ValueError(f"need robots ≥ 1, ticks ≥ 1 and goal_radius > 0, got {robots}, {ticks}, {goal_radius}")
    x, y = np.full(robots, maze.start[0]), np.full(robots, maze.start[1])
    heading, speed, turn = np.full(robots, float(maze.heading)), np.zeros(robots), np.zeros(robots)
    gx, gy = maze.goal
    solved = np.hypot(x - gx, y - gy) < goal_radius
    positions = np.empty((robots, ticks + 1, 2))
    positions[:, 0] = np.stack([x, y], 1)
    for tick in range(1, ticks + 1):
        out = np.asarray(controller(sensors(maze, x, y, heading)), dtype=np.float64)
        if out.shape != (robots, N_OUTPUTS):
            raise ValueError(f"the controller must return ({robots}, {N_OUTPUTS}) outputs, got {out.shape}")
        turn = np.clip(turn + out[:, 0] - 0.5, -MAX_SPEED, MAX_SPEED)
        speed = np.clip(speed + out[:, 1] - 0.5, -MAX_SPEED, MAX_SPEED)
        rad = np.radians(heading)
        nx, ny = x + np.cos(rad) * speed, y + np.sin(rad) * speed
        heading = (heading + turn) % 360.0
        move = ~solved & (wall_distance(maze, nx, ny) >= RADIUS)
        x, y = np.where(move, nx, x), np.where(move, ny, y)
        solved |= np.hypot(x - gx, y - gy) < goal_radius
        positions[:, tick] = np.stack([x, y], 1)
    return Trajectories(positions, solved)


class Robot:
    """One robot, simulated step by step in plain Python: the readable version of :func:`simulate`."""

    def __init__(self, maze: Maze, goal_radius: float = 5.0):
        self.maze, self.goal_radius = maze, goal_radius
        self.x, self.y = maze.start
        self.heading, self.speed, self.turn = float(maze.heading), 0.0, 0.0
        self.solved = math.dist((self.x, self.y), maze.goal) < goal_radius

    def _wall_distance(self, x: float, y: float) -> float:
        best = math.inf
        for ax, ay, bx, by in self.maze.walls.tolist():
            dx, dy = bx - ax, by - ay
            u = min(1.0, max(0.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
            best = min(best, math.hypot(ax + u * dx - x, ay + u * dy - y))
        return best

    def sensors(self) -> list[float]:
        """Six rangefinder readings, then four radars."""
        readings = []
        for angle in RANGEFINDERS:
            a = math.radians(self.heading + angle)
            rx, ry = math.cos(a) * RANGE, math.sin(a) * RANGE
            nearest = 1.0
            for ax, ay, bx, by in self.maze.walls.tolist():
                wx, wy, px, py = bx - ax, by - ay, ax - self.x, ay - self.y
                den = rx * wy - ry * wx
                if den != 0:
                    t, u = (px * wy - py * wx) / den, (px * ry - py * rx) / den
                    if 0 < t < 1 and 0 < u < 1:
                        nearest = min(nearest, t)
            readings.append(nearest)
        gx, gy = self.maze.goal
        bearing = (math.degrees(math.atan2(gy - self.y, gx - self.x)) - self.heading) % 360.0
        slice_ = int(((bearing + 45.0) % 360.0) // 90.0)
        return readings + [1.0 if i == slice_ else 0.0 for i in range(len(RADARS))]

    def step(self, outputs: list[float]) -> None:
        """Apply the controller's two outputs for one tick."""
        self.turn = min(MAX_SPEED, max(-MAX_SPEED, self.turn + outputs[0] - 0.5))
        self.speed = min(MAX_SPEED, max(-MAX_SPEED, self.speed + outputs[1] - 0.5))
        rad = math.radians(self.heading)
        nx, ny = self.x + math.cos(rad) * self.speed, self.y + math.sin(rad) * self.speed
        self.heading = (self.heading + self.turn) % 360.0
        if not self.solved and self._wall_distance(nx, ny) >= RADIUS:
            self.x, self.y = nx, ny
        self.solved = self.solved or math.dist((self.x, self.y), self.maze.goal) < self.goal_radius


def coverage(maze: Maze, points: np.ndarray, cells: int = 20) -> np.ndarray:
    """Which of a ``cells × cells`` grid over the maze's bounds the ``(n, 2)`` points visit (a bool grid, y first)."""
    x0, y0, x1, y1 = maze.bounds
    ix = np.clip(((points[:, 0] - x0) / (x1 - x0) * cells).astype(int), 0, cells - 1)
    iy = np.clip(((points[:, 1] - y0) / (y1 - y0) * cells).astype(int), 0, cells - 1)
    grid = np.zeros((cells, cells), dtype=bool)
    grid[iy, ix] = True
    return grid


MEDIUM = parse_maze("""
# Lehman & Stanley (2011), the medium map (medium_maze.txt of Lehman's code)
start 30 22
heading 0
goal 270 100
wall 293 7 289 130
wall 289 130 6 134
wall 6 134 8 5
wall 8 5 292 7
wall 241 130 58 65
wall 114 7 73 42
wall 130 91 107 46
wall 196 8 139 51
wall 219 122 182 63
wall 267 9 214 63
wall 271 129 237 88
""", "medium")

HARD = parse_maze("""
# Lehman & Stanley (2011), the hard map (hard_maze.txt of Lehman's code)
start 36 184
heading 0
goal 31 20
wall 41 5 3 8
wall 3 8 4 49
wall 4 49 57 53
wall 4 49 7 202
wall 7 202 195 198
wall 195 198 186 8
wall 186 8 39 5
wall 56 54 56 157
wall 57 106 158 162
wall 77 201 108 164
wall 6 80 33 121
wall 192 146 87 91
wall 56 55 133 30
""", "hard")

MAZES = {"medium": MEDIUM, "hard": HARD}
