"""What the vectorised maze simulation buys: a whole population per call against one robot at a time.

A NEAT population of the paper's size (250 genomes, mutated for a few generations so that
the networks have hidden nodes) drives robots through the medium maze for 100 ticks:
``maze.simulate`` with ``neuroevolution.PopulationNet`` moves all of them with one call per
tick; the baseline steps each robot in plain Python (``maze.Robot``) with its own
``neat.nn.FeedForwardNetwork`` (a sample of 25 robots, scaled to the population), and the
vectorised code itself called for one robot at a time (``simulate`` with one genome: what
vectorising over the population buys on its own). All are timed side by side
(``sparse_speed.time_interleaved``). Also: generations per second of the
whole novelty search (simulation, novelty, archive and NEAT's reproduction) at 400 ticks.
Last line (JSON): robot-steps per second of each, the ratios, and generations per second.
"""

from __future__ import annotations

import json

import neat
from neat.nn import FeedForwardNetwork

from coursekit import maze, neuroevolution, sparse_speed

POPULATION, SAMPLE, TICKS, REPEATS = 250, 25, 100, 5


def main() -> None:
    config = neuroevolution.neat_config(POPULATION)
    population = neat.Population(config, seed=0)

    def spread(genomes, _):
        for i, (_, g) in enumerate(genomes):
            g.fitness = float(i % 11)

    population.run(spread, 10)  # grow some hidden nodes
    genomes = list(population.population.values())
    nets = [FeedForwardNetwork.create(g, config) for g in genomes[:SAMPLE]]
    singles = [neuroevolution.PopulationNet([g], config) for g in genomes[:SAMPLE]]

    def vectorised():
        maze.simulate(maze.MEDIUM, neuroevolution.PopulationNet(genomes, config), len(genomes), TICKS)

    def one_at_a_time():
        for net in nets:
            robot = maze.Robot(maze.MEDIUM)
            for _ in range(TICKS):
                robot.step(net.activate(robot.sensors()))

    def vectorised_one_at_a_time():
        for net in singles:
            maze.simulate(maze.MEDIUM, net, 1, TICKS)

    times = sparse_speed.time_interleaved({"vectorised": vectorised, "python": one_at_a_time,
                                           "numpy_single": vectorised_one_at_a_time}, repeats=REPEATS, number=1)
    per_robot_python = [t / SAMPLE for t in times["python"]]
    per_robot_single = [t / SAMPLE for t in times["numpy_single"]]
    per_robot_vectorised = [t / len(genomes) for t in times["vectorised"]]
    speedup = sparse_speed.paired_ratio(per_robot_python, per_robot_vectorised)

    settings = neuroevolution.SearchSettings(pop_size=150, generations=10, stop_when_solved=False)
    search = sparse_speed.time_interleaved({"search": lambda: neuroevolution.search(settings, "novelty", 0)},
                                           repeats=3, number=1)["search"]
    result = {
        "robot_steps_per_s_vectorised": round(TICKS / sorted(per_robot_vectorised)[REPEATS // 2]),
        "robot_steps_per_s_python": round(TICKS / sorted(per_robot_python)[REPEATS // 2]),
        "robot_steps_per_s_numpy_one_robot": round(TICKS / sorted(per_robot_single)[REPEATS // 2]),
        "speedup_over_python": round(speedup, 1),
        "speedup_over_numpy_one_robot": round(sparse_speed.paired_ratio(per_robot_single, per_robot_vectorised), 1),
        "generations_per_s_pop150": round(settings.generations / sorted(search)[1], 2),
    }
    for name, value in result.items():
        print(f"{name:30s} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
