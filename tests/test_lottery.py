import pandas as pd
import pytest

from conftest import fashion_headline
from coursekit import claims, data, lottery, lottery_tickets

FAST = lottery.LotterySettings(model="mlp", epochs=2, rounds=3, prune_fraction_of_remaining=0.5,
                               lr=1e-2, batch_size=64, seeds=(0,), protocols=("init",))


def test_imp_table_has_a_row_per_seed_variant_round(digits):
    df = lottery.run_imp(FAST, digits, progress=False)
    assert len(df) == 1 * 3 * (1 + 3)
    assert set(df["variant"]) == {"init", "random_reinit", "random_mask"}
    densities = df[df["variant"] == "init"].set_index("round")["density"]
    assert densities[0] == 1.0 and densities.is_monotonic_decreasing
    # layer-wise 50 % per round, the output layer (10×100 of the 7400 weights) at half the rate
    assert densities[3] == pytest.approx((6400 * 0.5**3 + 1000 * 0.75**3) / 7400, abs=1e-3)
    same = df.groupby("round")["density"].nunique()
    assert (same == 1).all()  # the controls share the ticket's per-layer densities
    assert df["test_acc_early_stop"].between(0, 1).all()


def test_resume_after_an_interruption_gives_the_same_table(digits, tmp_path, monkeypatch):
    """Acceptance: interrupt after round 2, resume, compare with an uninterrupted run."""
    uninterrupted = lottery.run_imp(FAST, digits, tmp_path / "a", progress=False)

    calls = {"n": 0}
    real = lottery._train_jobs

    def stop_in_round_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # one call per round: dense, rounds 1 and 2, then stop
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(lottery, "_train_jobs", stop_in_round_3)
    with pytest.raises(KeyboardInterrupt):
        lottery.run_imp(FAST, digits, tmp_path / "b", progress=False)
    assert sorted(p.name for p in (tmp_path / "b" / "seed0").iterdir()) == [
        "round00.pt", "round01.pt", "round02.pt"]
    monkeypatch.setattr(lottery, "_train_jobs", real)

    resumed = lottery.run_imp(FAST, digits, tmp_path / "b", progress=False)
    pd.testing.assert_frame_equal(resumed, uninterrupted)
    pd.testing.assert_frame_equal(lottery.run_imp(FAST, digits, progress=False), uninterrupted)


def test_batched_run_gives_the_same_table(digits):
    """Acceptance (issue 6): batch=True trains each round's networks together, same results."""
    two_seeds = lottery.LotterySettings(**{**FAST.__dict__, "seeds": (0, 1)})
    alone = lottery.run_imp(two_seeds, digits, progress=False)
    together = lottery.run_imp(two_seeds, digits, progress=False, batch=True)
    pd.testing.assert_frame_equal(alone, together, check_exact=False, atol=2e-3, rtol=1e-3)


def test_other_settings_on_an_existing_run_folder_are_refused(digits, tmp_path):
    lottery.run_imp(FAST, digits, tmp_path, progress=False)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    other = lottery.LotterySettings(**{**FAST.__dict__, "lr": 0.5})
    with pytest.raises(ValueError, match=r"other settings or data.*'settings.lr': \(0.01, 0.5\)"):
        lottery.run_imp(other, digits, tmp_path, progress=False)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before  # checkpoints kept


@pytest.mark.parametrize(("other_data", "differs"), [
    (lambda: data.load("digits", "ci", "cpu", split_seed=1), "data.train.labels_sha256"),
    (lambda: data.load("digits", "ci", "cpu", sizes=data.Sizes(train=None, val=100, test=None)),
     "data.val.examples"),
    (lambda: data.load("digits", "ci", "cpu", sizes=data.Sizes(train=None, val=200, test=100)),
     "data.test.examples"),
])
def test_a_run_folder_refuses_other_data(digits, tmp_path, other_data, differs):
    """The same name and settings but another split seed or split size is another experiment."""
    one_round = lottery.LotterySettings(**{**FAST.__dict__, "rounds": 1})
    lottery.run_imp(one_round, digits, tmp_path, progress=False)
    with pytest.raises(ValueError, match=f"'{differs}'"):
        lottery.run_imp(one_round, other_data(), tmp_path, progress=False)


def test_a_run_folder_without_its_record_or_with_a_gap_or_a_broken_file_is_refused(digits, tmp_path):
    lottery.run_imp(FAST, digits, tmp_path, progress=False)
    (tmp_path / "settings.json").unlink()
    with pytest.raises(ValueError, match=r"holds checkpoints but no settings\.json"):
        lottery.run_imp(FAST, digits, tmp_path, progress=False)
    assert not (tmp_path / "settings.json").exists()  # nothing rewritten

    lottery.run_imp(FAST, digits, tmp_path / "gap", progress=False)
    (tmp_path / "gap" / "seed0" / "round01.pt").unlink()
    with pytest.raises(ValueError, match=r"lacks round\(s\) \[1\] but holds later ones \[0, 2, 3\]"):
        lottery.run_imp(FAST, digits, tmp_path / "gap", progress=False)

    lottery.run_imp(FAST, digits, tmp_path / "broken", progress=False)
    last = tmp_path / "broken" / "seed0" / "round03.pt"
    last.write_bytes(last.read_bytes()[:1000])  # truncated, as by a full disk
    with pytest.raises(ValueError, match=r"checkpoint .*round03.pt cannot be read .*truncated or corrupted"):
        lottery.run_imp(FAST, digits, tmp_path / "broken", progress=False)


def test_late_rewinding_and_its_errors(digits):
    late = lottery.LotterySettings(**{**FAST.__dict__, "protocols": ("rewind",), "rewind_step": 5,
                                      "controls": (), "rounds": 1})
    df = lottery.run_imp(late, digits, progress=False)
    assert list(df["variant"]) == ["rewind", "rewind"]
    never = lottery.LotterySettings(**{**late.__dict__, "rewind_step": 10_000})
    with pytest.raises(ValueError, match=r"rewind_step 10000 is never reached: dense training has \d+ steps"):
        lottery.run_imp(never, digits, progress=False)


def test_masks_can_be_read_back(digits, tmp_path):
    lottery.run_imp(FAST, digits, tmp_path, progress=False)
    masks = lottery.load_masks(tmp_path, 0, "init")
    assert sorted(masks) == [0, 1, 2, 3] and masks[3].density < masks[1].density
    with pytest.raises(ValueError, match="not in this run"):
        lottery.load_masks(tmp_path, 0, "constant")
    with pytest.raises(FileNotFoundError):
        lottery.load_masks(tmp_path, 7, "init")


@pytest.mark.parametrize(("change", "message"), [
    ({"criterion": "biggest"}, "no such criterion"),
    ({"protocols": ("reset",)}, "no such protocol"),
    ({"controls": ("shuffled",)}, "unknown controls"),
    ({"prune_fraction_of_remaining": 1.2}, r"prune_fraction_of_remaining must lie in \(0, 1\)"),
    ({"scope": "blockwise"}, "scope must be"),
    ({"model": "resnet"}, "unknown model"),
    ({"seeds": (0, 0)}, r"seeds must not repeat an entry, got \(0, 0\)"),
    ({"seeds": 3}, r"seeds must be tuple\[int, \.\.\.\], got 3"),
    ({"seeds": (-1,)}, r"seeds must be non-negative ints"),
    ({"protocols": "init"}, r"protocols must be tuple\[str, \.\.\.\] \(e.g. \('init',\)\), got 'init'"),
    ({"epochs": 2.5}, "epochs must be int, got 2.5"),
    ({"lr": float("nan")}, "lr must be float, got nan"),
    ({"scope": "global", "last_layer_rate": 0.5}, "last_layer_rate applies to scope='layerwise' only"),
    ({"last_layer_rate": 3.0}, r"last_layer_rate × prune_fraction_of_remaining must lie in \(0, 1\)"),
    ({"rewind_step": 10}, r"rewind_step=10 is used by the 'rewind' protocol only"),
    ({"early_stop": "test_acc"}, "early_stop must be one of"),
    ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
])
def test_bad_settings(change, message):
    with pytest.raises(ValueError, match=message):
        lottery.LotterySettings(**{**FAST.__dict__, **change})


@fashion_headline
def test_winning_tickets_beat_both_controls(seed):
    """Lecture 02's headline for a seed the notebook does not run."""
    settings = lottery.LotterySettings(**{**lottery_tickets.PRESETS["ci"].__dict__, "seeds": (seed,)})
    claims.check("test_lottery", lottery_tickets.headline(lottery.run_imp(settings, data.load("fashion_mnist", "ci"),
                                                                  progress=False, batch=True), settings))


def test_a_protocol_that_is_also_a_control_and_a_mismatched_headline_are_refused(digits):
    with pytest.raises(ValueError, match=r"\['random_reinit'\] are both protocols and controls.*controls=\('random_mask',\)"):
        lottery.LotterySettings(**{**FAST.__dict__, "protocols": ("init", "random_reinit")})
    one_round = lottery.LotterySettings(**{**FAST.__dict__, "rounds": 1})
    table = lottery.run_imp(one_round, digits, progress=False)
    with pytest.raises(ValueError, match=r"results hold rounds \[0, 1\].*ask for round 3"):
        lottery_tickets.headline(table, FAST)


def test_pixel_usage_relates_kept_weights_to_how_much_pixels_vary():
    import torch

    images = torch.zeros(50, 2, 2)
    images[:, 0, 0] = torch.linspace(0, 1, 50)  # pixel 0 varies, the others are constant
    images[:, 1, 1] = torch.linspace(0, 0.5, 50)  # pixel 3 varies a little
    keep = torch.tensor([[1, 0, 0, 1], [1, 0, 1, 0]], dtype=torch.bool)
    usage = lottery_tickets.pixel_usage(keep, images)
    assert list(usage["kept"]) == [2.0, 0.0, 1.0, 1.0] and usage["spread"].idxmax() == 0
    said = lottery_tickets.describe_pixel_usage(usage, quiet=0.5)
    assert "vary least keep **0.50×**" in said and "Rank correlation" in said
    with pytest.raises(ValueError, match="the mask has 4 inputs but the images have 9 pixels"):
        lottery_tickets.pixel_usage(keep, torch.zeros(3, 3, 3))
    fig = lottery_tickets.plot_input_masks({0: {"w": keep}}, "w", image_shape=(2, 2), images=images)
    assert "varies" in fig.axes[0].get_title()
