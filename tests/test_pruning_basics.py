import pandas as pd
import pytest

from conftest import fashion_headline
from coursekit import claims, data, pruning_basics, supermask

SMALL = pruning_basics.BasicsSettings(model="mlp", epochs=2, lr=1e-2, batch_size=64, density=0.2,
                              densities=(0.5, 0.2), criteria=("large_final", "small_final", "random"),
                              protocols=("init", "constant", "sign_flip"), iterative_rounds=2)


@pytest.fixture(scope="module")
def dense(digits):
    return pruning_basics.train_dense(SMALL, digits, seed=0)


def test_dense_run_records_init_final_and_names(dense):
    assert dense.names == ["1.weight", "3.weight"]
    assert not (dense.init["1.weight"] == dense.final["1.weight"]).all()


@pytest.mark.trained
@pytest.mark.parametrize("seed", claims.seeds(default=(0,)))
def test_dense_network_learns_digits(digits, seed):
    run = pruning_basics.train_dense(SMALL, digits, seed=seed)
    claims.check("test_pruning_basics", [claims.Claim("dense MLP's test accuracy on digits", run.test_acc, ">", 0.8)])


def test_criterion_protocol_grid_covers_every_pair(digits, dense):
    grid = pruning_basics.criterion_protocol_grid(SMALL, digits, dense, progress=False)
    assert len(grid) == 3 * 3 and set(grid["protocol"]) == set(SMALL.protocols)
    assert (grid["density"] - 0.2).abs().max() < 0.01


def test_criterion_density_grid_reuses_the_known_column(digits, dense, monkeypatch):
    grid = pruning_basics.criterion_protocol_grid(SMALL, digits, dense, progress=False)
    calls = []
    real = pruning_basics.retrain
    monkeypatch.setattr(pruning_basics, "retrain", lambda *a, **k: calls.append(a[-1]) or real(*a, **k))
    table, masks = pruning_basics.criterion_density_grid(SMALL, digits, dense, known=grid, progress=False)
    assert len(calls) == 3  # only density 0.5 is trained; 0.2 comes from the grid
    assert set(masks) == {(c, d) for c in SMALL.criteria for d in SMALL.densities}
    reused = table[table["density"] == 0.2].set_index("criterion")["test_acc"]
    known = grid[grid["protocol"] == "init"].set_index("criterion")["test_acc"]
    assert reused.equals(known)


def test_schedules_end_at_the_same_density(digits, dense):
    table = pruning_basics.schedule_comparison(SMALL, digits, dense, progress=False)
    assert list(table["schedule"]) == ["one-shot", "iterative (2 rounds)", "gradual (cubic)"]
    assert (table["density"] - 0.2).abs().max() < 0.01
    assert list(table["trainings"]) == [2, 3, 2]  # gradual prunes the trained network while training it again
    fig = pruning_basics.plot_schedules(table, dense.test_acc)
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlim()[0] > 0.05  # titled, and zoomed to the differences
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table["schedule"])


def test_scope_comparison_protects_small_layers_only_when_layerwise(dense):
    scopes = pruning_basics.scope_comparison(SMALL, dense, 0.1)
    assert scopes.loc["3.weight", "layerwise"] == pytest.approx(0.1)
    assert scopes.loc["1.weight", "layerwise"] == pytest.approx(0.1)
    assert scopes["global"].std() > 0  # global spends the budget unevenly


@fashion_headline
def test_lecture_03_headlines(seed):
    """Lecture 03's headline for a seed the notebook does not run."""
    ds = data.load("fashion_mnist", "ci")
    settings = pruning_basics.PRESETS["ci"]
    dense = pruning_basics.train_dense(settings, ds, seed=seed)
    grid = pruning_basics.criterion_protocol_grid(settings, ds, dense, batch=True, progress=False)
    supers = pruning_basics.supermask_accuracies(settings, ds, dense)
    _, learned = supermask.train_supermask(pruning_basics.untrained(settings, ds, seed), ds, density=0.5,
                                           epochs=settings.supermask_epochs, seed=seed, progress=False)
    claims.check("test_pruning_basics", pruning_basics.headline(grid, supers, learned))


def test_batched_grid_matches_the_one_at_a_time_grid(digits, dense):
    alone = pruning_basics.criterion_protocol_grid(SMALL, digits, dense, progress=False)
    together = pruning_basics.criterion_protocol_grid(SMALL, digits, dense, progress=False, batch=True)
    pd.testing.assert_frame_equal(alone, together, check_exact=False, atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize(("change", "message"), [
    ({"density": 1.5}, r"BasicsSettings.density must lie in \(0, 1\], got 1.5"),
    ({"densities": ()}, "at least one density"),
    ({"criteria": ("large_finall",)}, "no such criterion 'large_finall'"),
    ({"protocols": ("rewind",)}, "protocol 'rewind' needs a rewind point"),
    ({"iterative_rounds": 0}, "iterative_rounds >= 1"),
    ({"scope": "Global"}, "scope must be one of"),
])
def test_bad_settings_are_refused_before_training(change, message):
    with pytest.raises(ValueError, match=message):
        pruning_basics.BasicsSettings(**{**SMALL.__dict__, **change})


def test_a_known_grid_of_another_density_is_not_reused(digits, dense):
    grid = pruning_basics.criterion_protocol_grid(SMALL, digits, dense, progress=False)
    other = pruning_basics.BasicsSettings(**{**SMALL.__dict__, "density": 0.5, "densities": (0.5,)})
    with pytest.raises(ValueError, match=r"known was computed at density \[0.2\] but settings.density is 0.5"):
        pruning_basics.criterion_density_grid(other, digits, dense, known=grid, progress=False)
