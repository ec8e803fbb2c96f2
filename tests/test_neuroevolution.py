"""NEAT controllers for the maze (coursekit.methods.neuroevolution): the config, the population's packed
networks, and novelty vs fitness search."""

import neat
import numpy as np
import pytest
from neat.nn import FeedForwardNetwork

from coursekit.methods import maze as mz
from coursekit.methods import neuroevolution as ne

SMALL = ne.SearchSettings(pop_size=40, generations=12, stop_when_solved=False)


def evolved_genomes(config, generations=15):
    """Genomes after some mutation: hidden nodes, disabled and deleted connections."""
    population = neat.Population(config, seed=3)

    def score(genomes, _):
        for i, (_, g) in enumerate(genomes):
            g.fitness = float(i % 7)

    population.run(score, generations)
    return list(population.population.values())


def test_population_net_computes_what_neat_computes():
    config = ne.neat_config(30)
    config.genome_config.activation_options = ["sigmoid", "tanh", "relu", "identity"]
    config.genome_config.activation_mutate_rate = 0.3
    genomes = evolved_genomes(config)
    assert any(len(g.nodes) > mz.N_OUTPUTS for g in genomes), "mutation should have added hidden nodes"
    net = ne.PopulationNet(genomes, config)
    assert net.depth > 1 and len(set(net.activation.ravel())) > 1
    x = np.random.default_rng(0).uniform(0, 1, (len(genomes), mz.N_INPUTS))
    expected = [FeedForwardNetwork.create(g, config).activate(list(row)) for g, row in zip(genomes, x, strict=True)]
    np.testing.assert_allclose(net(x), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"need \(30, 10\) inputs"):
        net(x[:, :5])


def test_neat_config_checks_the_robot_interface(tmp_path):
    config = ne.neat_config(20)
    assert config.pop_size == 20 and config.genome_config.num_inputs == mz.N_INPUTS
    wrong = tmp_path / "wrong.ini"
    wrong.write_text(ne.CONFIG.format(pop_size=20, inputs=5, outputs=2))
    with pytest.raises(ValueError, match=r"needs num_inputs = 10 .* the config has 5, 2"):
        ne.neat_config(path=wrong)
    gaussian = tmp_path / "gauss.ini"
    gaussian.write_text(ne.CONFIG.format(pop_size=20, inputs=10, outputs=2).replace(
        "activation_options      = sigmoid", "activation_options      = sigmoid gauss"))
    with pytest.raises(ValueError, match=r"allows .*gauss"):
        ne.neat_config(path=gaussian)
    with pytest.raises(ValueError, match="pop_size must be ≥ 2"):
        ne.neat_config(1)


@pytest.mark.parametrize("change, message", [
    ({"maze": "easy"}, "maze must be one of"),
    ({"generations": 0}, "must be ≥ 1"),
])
def test_bad_search_settings(change, message):
    with pytest.raises(ValueError, match=message):
        ne.SearchSettings(**change)


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="objective must be one of"):
        ne.search(SMALL, "curiosity")


@pytest.fixture(scope="module")
def both():
    return {objective: ne.search(SMALL, objective, seed=0) for objective in ne.OBJECTIVES}


def test_search_is_reproducible_and_records_each_generation(both):
    again = ne.search(SMALL, "novelty", seed=0)
    assert again.history.equals(both["novelty"].history)
    for result in both.values():
        h = result.history
        assert list(h.index) == list(range(SMALL.generations))
        assert h["coverage"].is_monotonic_increasing and len(result.finals) == SMALL.generations
        assert result.best_path.shape == (SMALL.ticks + 1, 2)
        assert np.hypot(*(result.best_path[-1] - mz.MEDIUM.goal)) == pytest.approx(h["closest"].min())
    assert both["novelty"].history["archive"].iloc[-1] > 0 and both["fitness"].history["archive"].eq(0).all()


def test_novelty_covers_more_of_the_maze_than_fitness_at_one_budget(both):
    """Lehman & Stanley 2011: fitness crowds into the dead end nearest the goal; novelty spreads out."""
    gap = both["novelty"].history["coverage"].iloc[-1] - both["fitness"].history["coverage"].iloc[-1]
    assert gap > 0  # 0.04–0.12 for seeds 0–5


def test_search_stops_when_solved():
    near = ne.SearchSettings(pop_size=20, generations=5, goal_radius=400.0)  # every robot starts "at" the goal
    result = ne.search(near, "fitness", seed=0)
    assert result.solved_at == 0 and len(result.history) == 1
