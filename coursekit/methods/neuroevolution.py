"""Evolving maze controllers with NEAT, by fitness or by novelty (slide 13; Lehman & Stanley 2011).

NEAT (Stanley & Miikkulainen 2002; here ``neat-python``) evolves the controllers'
weights *and* topology. Each generation every genome drives one robot through the maze
(:func:`coursekit.methods.maze.simulate`): :class:`PopulationNet` packs the whole
population's networks into padded arrays so one vectorised call per tick runs them all.
The search then scores each genome either by **fitness** (minus its final distance to the
goal) or by **novelty** (:func:`coursekit.methods.novelty.novelty_scores` of its final
position against the population and the archive) — :func:`search` does one run,
recording per generation how close the best robot got, how much of the maze the final
positions have covered so far, and whether one reached the goal.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import neat
import numpy as np
import pandas as pd
import torch
from neat.nn import FeedForwardNetwork

from coursekit.methods import maze as mazes
from coursekit.methods.novelty import Archive, novelty_scores

OBJECTIVES = ("novelty", "fitness")

# neat-python's activations (neat/activations.py), vectorised with the same scaling and clamping.
ACTIVATIONS = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-np.clip(5.0 * z, -60.0, 60.0))),
    "tanh": lambda z: np.tanh(np.clip(2.5 * z, -60.0, 60.0)),
    "relu": lambda z: np.maximum(z, 0.0),
    "identity": lambda z: z,
}

CONFIG = """
[NEAT]
fitness_criterion     = max
fitness_threshold     = 1e9
no_fitness_termination = True
pop_size              = {pop_size}
reset_on_extinction   = True

[DefaultGenome]
num_inputs              = {inputs}
num_hidden              = 0
num_outputs             = {outputs}
initial_connection      = full_direct
feed_forward            = True
compatibility_disjoint_coefficient = 1.0
compatibility_weight_coefficient   = 0.5
conn_add_prob           = 0.3
conn_delete_prob        = 0.1
node_add_prob           = 0.1
node_delete_prob        = 0.05
single_structural_mutation = false
structural_mutation_surer = default
activation_default      = sigmoid
activation_options      = sigmoid
activation_mutate_rate  = 0.0
aggregation_default     = sum
aggregation_options     = sum
aggregation_mutate_rate = 0.0
bias_init_type          = gaussian
bias_init_mean          = 0.0
bias_init_stdev         = 1.0
bias_replace_rate       = 0.1
bias_mutate_rate        = 0.7
bias_mutate_power       = 0.5
bias_max_value          = 30.0
bias_min_value          = -30.0
response_init_type      = gaussian
response_init_mean      = 1.0
response_init_stdev     = 0.0
response_replace_rate   = 0.0
response_mutate_rate    = 0.0
response_mutate_power   = 0.0
response_max_value      = 30.0
response_min_value      = -30.0
weight_init_type        = gaussian
weight_init_mean        = 0.0
weight_init_stdev       = 1.0
weight_max_value        = 30
weight_min_value        = -30
weight_mutate_rate      = 0.8
weight_replace_rate     = 0.1
weight_mutate_power     = 0.5
enabled_default         = True
enabled_mutate_rate     = 0.01
enabled_rate_to_true_add = 0.0
enabled_rate_to_false_add = 0.0

[DefaultSpeciesSet]
compatibility_threshold = 3.0

[DefaultStagnation]
species_fitness_func = max
max_stagnation       = 20
species_elitism      = 2

[DefaultReproduction]
elitism            = 2
survival_threshold = 0.2
min_species_size   = 2
"""


def neat_config(pop_size: int = 150, path: str | Path | None = None) -> neat.Config:
    """NEAT's settings for the maze controllers: coursekit's (``CONFIG``) or a config file at ``path``.

    The networks must have the maze robot's 10 inputs and 2 outputs and be feed-forward.
    """
    if path is None:
        if pop_size < 2:
            raise ValueError(f"pop_size must be ≥ 2, got {pop_size}")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "neat.ini"
            path.write_text(CONFIG.format(pop_size=pop_size, inputs=mazes.N_INPUTS, outputs=mazes.N_OUTPUTS))
            config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                                 neat.DefaultStagnation, str(path))
    else:
        config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                             neat.DefaultStagnation, str(path))
    g = config.genome_config
    if (g.num_inputs, g.num_outputs) != (mazes.N_INPUTS, mazes.N_OUTPUTS) or not g.feed_forward:
        raise ValueError(f"the maze robot's controller needs num_inputs = {mazes.N_INPUTS} (6 rangefinders, "
                         f"4 radars), num_outputs = {mazes.N_OUTPUTS} and feed_forward = True; the config has "
                         f"{g.num_inputs}, {g.num_outputs} and {g.feed_forward}")
    unsupported = set(g.activation_options) - set(ACTIVATIONS)
    if unsupported or set(g.aggregation_options) != {"sum"}:
        raise ValueError(f"PopulationNet runs activations {sorted(ACTIVATIONS)} with sum aggregation; the config "
                         f"allows {sorted(g.activation_options)} and {sorted(g.aggregation_options)}")
    return config


class PopulationNet:
    """Every genome's feed-forward network, evaluated for the whole population in one call.

    Node values live in a ``(genomes, inputs + slots)`` array; each genome's evaluated nodes
    take the slots in NEAT's layer order, with their incoming weights in a padded
    ``(genomes, slots, inputs + slots)`` array. Recomputing every slot from the current
    values as many times as the deepest network has layers gives exactly what
    ``neat.nn.FeedForwardNetwork.activate`` computes one node at a time (tested).
    """

    def __init__(self, genomes: list, config: neat.Config):
        g = config.genome_config
        self.inputs = g.num_inputs
        nets = [FeedForwardNetwork.create(genome, config) for genome in genomes]
        slots = max(1, max(len(n.node_evals) for n in nets))
        n, width = len(nets), self.inputs + slots
        self.depth = 1
        self.weights = np.zeros((n, slots, width))
        self.bias = np.zeros((n, slots))
        self.activation = np.full((n, slots), g.activation_default, dtype=object)  # padding: any will do
        self.outputs = np.full((n, g.num_outputs), -1)  # slot of each output, −1: never computed (reads 0)
        for i, net in enumerate(nets):
            index = {key: j for j, key in enumerate(g.input_keys)}
            index.update({node: self.inputs + j for j, (node, *_) in enumerate(net.node_evals)})
            level = dict.fromkeys(g.input_keys, 0)  # a node's layer: one past its deepest input's
            for j, (node, _act, _agg, bias, response, links) in enumerate(net.node_evals):
                level[node] = 1 + max((level[source] for source, _ in links), default=0)
                self.depth = max(self.depth, level[node])
                self.bias[i, j] = bias
                self.activation[i, j] = genomes[i].nodes[node].activation
                for source, w in links:  # act(bias + response · Σ w·v) = act(bias + Σ (response·w)·v)
                    self.weights[i, j, index[source]] += response * w
            self.outputs[i] = [index.get(key, -1) for key in g.output_keys]
        self._masks = {name: self.activation == name for name in set(self.activation.ravel())}
        self._single = next(iter(self._masks)) if len(self._masks) == 1 else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``(genomes, inputs)`` → ``(genomes, outputs)``."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.weights.shape[0], self.inputs):
            raise ValueError(f"need ({self.weights.shape[0]}, {self.inputs}) inputs (one row per genome), "
                             f"got {x.shape}")
        values = np.zeros((x.shape[0], self.weights.shape[2]))
        values[:, : self.inputs] = x
        for _ in range(self.depth):
            z = self.bias + (self.weights @ values[..., None])[..., 0]
            if self._single is not None:
                values[:, self.inputs:] = ACTIVATIONS[self._single](z)
                continue
            out = np.empty_like(z)
            for name, mask in self._masks.items():
                out[mask] = ACTIVATIONS[name](z[mask])
            values[:, self.inputs:] = out
        padded = np.concatenate([values, np.zeros((x.shape[0], 1))], axis=1)  # index −1 reads the 0
        return np.take_along_axis(padded, self.outputs, axis=1)


@dataclass(frozen=True)
class SearchSettings:
    """One search's knobs: the map, NEAT's population and generations, the simulation and novelty's ``k`` and archive."""

    maze: str = "medium"
    generations: int = 200
    pop_size: int = 150
    ticks: int = 400
    goal_radius: float = 5.0
    k: int = 15
    archive_threshold: float = 6.0
    cells: int = 20
    stop_when_solved: bool = True

    def __post_init__(self) -> None:
        if self.maze not in mazes.MAZES:
            raise ValueError(f"maze must be one of {sorted(mazes.MAZES)}, got {self.maze!r}")
        if self.generations < 1 or self.ticks < 1 or self.cells < 1:
            raise ValueError(f"generations, ticks and cells must be ≥ 1, got {self.generations}, {self.ticks}, "
                             f"{self.cells}")


@dataclass
class SearchResult:
    """One run: ``history`` (one row per generation), every generation's final positions, and the best robot's path."""

    objective: str
    seed: int
    history: pd.DataFrame
    finals: list[np.ndarray] = field(repr=False)
    best_path: np.ndarray = field(repr=False)

    @property
    def solved_at(self) -> int | None:
        """The first generation in which a robot reached the goal, or ``None``."""
        hit = self.history.index[self.history["solved"]]
        return int(hit[0]) if len(hit) else None


def search(settings: SearchSettings, objective: str = "novelty", seed: int = 0) -> SearchResult:
    """Evolve maze controllers by ``objective`` ("novelty" or "fitness") from ``seed``.

    neat-python draws from Python's global ``random``; it is seeded here and restored after.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    maze = mazes.MAZES[settings.maze]
    config = neat_config(settings.pop_size)
    archive = Archive(settings.archive_threshold)
    rows, finals = [], []
    visited = np.zeros((settings.cells, settings.cells), dtype=bool)
    best = {"distance": np.inf, "path": None}

    def evaluate(genomes, cfg):
        run = mazes.simulate(maze, PopulationNet([g for _, g in genomes], cfg), len(genomes), settings.ticks,
                             settings.goal_radius)
        final = run.final
        distance = np.hypot(*(final - np.array(maze.goal)).T)
        if objective == "fitness":
            scores = -distance
        else:
            behaviours = torch.from_numpy(final)
            scores = novelty_scores(behaviours, archive.behaviours if len(archive) else None, settings.k).numpy()
            archive.update(behaviours, torch.from_numpy(scores))
        for (_, genome), score in zip(genomes, scores, strict=True):
            genome.fitness = float(score)
        visited[mazes.coverage(maze, final, settings.cells)] = True
        i = int(distance.argmin())
        if distance[i] < best["distance"]:
            best["distance"], best["path"] = float(distance[i]), run.positions[i]
        finals.append(final)
        rows.append({"generation": len(rows), "closest": float(distance.min()), "solved": bool(run.solved.any()),
                     "coverage": float(visited.mean()), "archive": len(archive)})

    state = random.getstate()
    try:
        population = neat.Population(config, seed=seed)
        for _ in range(settings.generations):
            population.run(evaluate, 1)
            if settings.stop_when_solved and rows[-1]["solved"]:
                break
    finally:
        random.setstate(state)
    return SearchResult(objective, seed, pd.DataFrame(rows).set_index("generation"), finals, best["path"])
