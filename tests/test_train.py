import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from coursekit import claims, data, models, train


def _mlp(ds, seed=0):
    return models.build("mlp", ds.input_shape, ds.num_classes, seed=seed, hidden=(32,))


@pytest.mark.trained
@pytest.mark.parametrize("seed", claims.seeds(default=(0,)))
def test_fit_learns_digits(digits, seed):
    result = train.fit(_mlp(digits, seed), digits, epochs=5, lr=0.1, batch_size=32, progress=False,
                       eval_test=True, seed=seed)
    hist = result.history
    assert list(hist.columns) == ["step", "epoch", "train_loss", "val_loss", "val_acc",
                                  "test_loss", "test_acc"]
    assert hist["step"].iloc[0] == 0 and len(hist) == 6
    claims.check("test_train", [claims.Claim("final validation accuracy", hist["val_acc"].iloc[-1], ">", 0.85),
                                claims.Claim("untrained validation accuracy", hist["val_acc"].iloc[0], "<", 0.85)])
    assert result.best_val_acc == hist["val_acc"].max()
    assert hist.loc[hist["step"] == result.best_step, "val_acc"].item() == result.best_val_acc


def test_same_seed_same_history(digits):
    """Acceptance: the same seed gives the same history DataFrame on CPU."""
    runs = [train.fit(_mlp(digits), digits, epochs=2, optimizer="adam", lr=1e-2, seed=4,
                      progress=False).history for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0], runs[1])
    other = train.fit(_mlp(digits), digits, epochs=2, optimizer="adam", lr=1e-2, seed=5,
                      progress=False).history
    assert not other.equals(runs[0])  # the seed sets the minibatch order


def test_hooks_run_after_every_step(digits):
    seen = []
    train.fit(_mlp(digits), digits, epochs=2, batch_size=100, progress=False,
              hooks=[lambda ctx: seen.append((ctx.step, ctx.epoch, ctx.loss.ndim))])
    steps = -(-len(digits.y_train) // 100)
    assert [s for s, _, _ in seen] == list(range(1, 2 * steps + 1))
    assert {e for _, e, _ in seen} == {0, 1} and {d for _, _, d in seen} == {0}


def test_hook_can_constrain_weights(digits):
    """A hook that zeroes a weight after each step keeps it zero through training."""
    model = _mlp(digits)
    w = model[1].weight

    def zero_first_row(ctx):
        with torch.no_grad():
            w[0].zero_()

    train.fit(model, digits, epochs=1, optimizer="sgd", momentum=0.9, progress=False,
              hooks=[zero_first_row])
    assert torch.count_nonzero(w[0]) == 0


def test_eval_every_and_epoch_column(digits):
    hist = train.fit(_mlp(digits), digits, epochs=1, batch_size=100, eval_every=3,
                     progress=False).history
    assert list(hist["step"]) == [0, 3, 6, 9, 11]  # the last step is always evaluated
    assert hist["epoch"].iloc[1] == pytest.approx(3 / 11)


def test_resume_from_checkpoint_gives_the_same_history(digits, tmp_path):
    full = train.fit(_mlp(digits), digits, epochs=4, optimizer="adam", lr=1e-2, seed=1,
                     progress=False)
    ckpt = tmp_path / "run.pt"
    train.fit(_mlp(digits), digits, epochs=2, optimizer="adam", lr=1e-2, seed=1, progress=False,
              checkpoint=ckpt)  # "interrupted" after two epochs
    resumed_model = _mlp(digits, seed=99)  # whatever it holds, the checkpoint replaces it
    resumed = train.fit(resumed_model, digits, epochs=4, optimizer="adam", lr=1e-2, seed=1,
                        progress=False, checkpoint=ckpt)
    pd.testing.assert_frame_equal(resumed.history, full.history)
    assert not list(tmp_path.glob("*.tmp"))


def test_patience_stops_early(digits):
    result = train.fit(_mlp(digits), digits, epochs=50, lr=1e-6, batch_size=500, eval_every=1,
                       patience=2, progress=False)
    assert result.stopped_early and len(result.history) < 10


def test_evaluate_matches_cross_entropy(digits):
    model = _mlp(digits)
    metrics = train.evaluate(model, digits.x_val, digits.y_val, batch_size=50)
    with torch.no_grad():
        logits = model(digits.x_val)
    assert metrics["loss"] == pytest.approx(F.cross_entropy(logits, digits.y_val).item(), rel=1e-5)
    assert metrics["acc"] == pytest.approx((logits.argmax(1) == digits.y_val).float().mean().item())
    assert model.training  # evaluate restores the mode


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"epochs": 0}, "epochs must be a positive int"),
    ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'.*adamw"),
    ({"lr": 0}, "lr must be a positive finite number, got 0"),
    ({"lr": float("inf")}, "lr must be a positive finite number, got inf"),
    ({"eval_every": 0}, "eval_every"),
    ({"lr_decay": 0}, r"lr_decay must be in \(0, 1\]"),
    ({"patience": 0}, "patience must be a positive int or None, got 0"),
    ({"batch_size": 0}, "batch_size must be a positive int, got 0"),
    ({"seed": 1.5}, r"seeds must be non-negative ints, got \[1.5\]"),
    ({"optimizer": "adam", "momentum": 0.9}, "momentum applies to optimizer='sgd' only"),
    ({"momentum": 1.0}, r"momentum must lie in \[0, 1\)"),
    ({"hooks": print}, "hooks must be a list of callables"),
])
def test_bad_arguments(digits, kwargs, message):
    """Each is refused before anything trains."""
    with pytest.raises(ValueError, match=message):
        train.fit(_mlp(digits), digits, progress=False, **kwargs)


def test_a_checkpoint_cannot_shrink_or_be_a_folder(digits, tmp_path):
    ckpt = tmp_path / "run.pt"
    train.fit(_mlp(digits), digits, epochs=2, progress=False, checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"already holds 2 epochs but epochs=1 was asked"):
        train.fit(_mlp(digits), digits, epochs=1, progress=False, checkpoint=ckpt)
    with pytest.raises(ValueError, match="is a folder"):
        train.fit(_mlp(digits), digits, epochs=1, progress=False, checkpoint=tmp_path)


def test_settings_refuse_what_fit_would_refuse():
    with pytest.raises(ValueError, match="momentum applies to optimizer='sgd' only"):
        train.SGDSettings(optimizer="adam")
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        train.TrainSettings(model="resnet")
    with pytest.raises(ValueError, match=r"SGDSettings.width must be positive"):
        train.SGDSettings(width=0.0)


def test_model_and_data_that_do_not_fit_together(digits):
    lenet = models.build("lenet300_100", (1, 28, 28), 10)
    with pytest.raises(ValueError, match=r"does not accept inputs of shape \(1, 8, 8\) from 'digits'"):
        train.fit(lenet, digits, progress=False)
    three_classes = models.build("mlp", digits.input_shape, 3)
    with pytest.raises(ValueError, match=r"outputs shape \(3,\) per example but 'digits' has 10 classes"):
        train.fit(three_classes, digits, progress=False)


def test_train_settings_give_fit_its_arguments(digits):
    settings = train.TrainSettings(model="mlp", epochs=1, lr=1e-2, batch_size=100)
    assert settings.fit_kwargs() == {"epochs": 1, "lr": 1e-2, "optimizer": "adam", "batch_size": 100}
    result = train.fit(_mlp(digits), digits, **settings.fit_kwargs(), progress=False)
    assert result.history["step"].iloc[-1] == -(-len(digits.y_train) // 100)


def test_sgd_settings_pass_momentum_decay_and_schedule(digits):
    settings = train.SGDSettings(epochs=2, lr=0.05, momentum=0.5, weight_decay=1e-3, lr_decay=0.5)
    assert settings.fit_kwargs() == {"epochs": 2, "lr": 0.05, "optimizer": "sgd", "batch_size": 64,
                                     "momentum": 0.5, "weight_decay": 1e-3, "lr_decay": 0.5}
    seen = []
    train.fit(_mlp(digits), digits, **settings.fit_kwargs(), progress=False, hooks=[
        lambda ctx: seen.append((ctx.epoch, *(ctx.optimizer.param_groups[0][k]
                                              for k in ("lr", "momentum", "weight_decay"))))])
    assert sorted(set(seen)) == [(0, 0.05, 0.5, 1e-3), (1, 0.025, 0.5, 1e-3)]


def test_transform_sees_each_minibatch_and_its_epoch(digits):
    """A deficit for the first epoch: the hook sees the epoch and end-of-epoch flags."""
    seen, ends = [], []
    train.fit(_mlp(digits), digits, epochs=2, batch_size=200, progress=False,
              transform=lambda xb, epoch: seen.append(epoch) or xb * 0 if epoch == 0 else xb,
              hooks=[lambda ctx: ends.append(ctx.end_of_epoch)])
    steps = -(-len(digits.y_train) // 200)
    assert seen == [0] * steps
    assert ends == ([False] * (steps - 1) + [True]) * 2


def test_lr_decay_anneals_per_epoch(digits):
    lrs = []
    train.fit(_mlp(digits), digits, epochs=3, lr=0.1, lr_decay=0.5, batch_size=500, progress=False,
              hooks=[lambda ctx: lrs.append(ctx.optimizer.param_groups[0]["lr"])])
    assert sorted(set(lrs), reverse=True) == pytest.approx([0.1, 0.05, 0.025])


@pytest.mark.trained
@pytest.mark.parametrize("seed", claims.seeds(default=(0,)))
def test_penalty_is_added_to_the_loss(digits, seed):
    plain, penalised = _mlp(digits, seed), _mlp(digits, seed)
    train.fit(plain, digits, epochs=2, lr=0.05, progress=False, seed=seed)
    train.fit(penalised, digits, epochs=2, lr=0.05, progress=False, seed=seed,
              penalty=lambda m: 5.0 * m[1].weight.pow(2).sum())
    # strong weight decay through the penalty shrinks the first layer more than twentyfold
    claims.check("test_train", [claims.Claim("penalised over plain mean |w| of the first layer",
                                             penalised[1].weight.abs().mean() / plain[1].weight.abs().mean(),
                                             "<", 0.05)])


def test_a_checkpoint_of_another_run_or_a_broken_one_is_refused(digits, tmp_path):
    ckpt = tmp_path / "run.pt"
    train.fit(_mlp(digits), digits, epochs=1, optimizer="adam", lr=1e-2, seed=1, progress=False, checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"written by another training run; .*'lr': \(0.01, 0.02\)"):
        train.fit(_mlp(digits), digits, epochs=2, optimizer="adam", lr=2e-2, seed=1, progress=False, checkpoint=ckpt)
    other = data.load("digits", "ci", "cpu", split_seed=3)
    with pytest.raises(ValueError, match=r"'data\.train\.labels_sha256'"):
        train.fit(_mlp(digits), other, epochs=2, optimizer="adam", lr=1e-2, seed=1, progress=False, checkpoint=ckpt)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"run\.pt cannot be read"):
        train.fit(_mlp(digits), digits, epochs=2, optimizer="adam", lr=1e-2, seed=1, progress=False, checkpoint=ckpt)


def test_a_nan_loss_stops_training_and_names_the_step(digits):
    calls = {"n": 0}

    def explode_at_step_7(model):
        calls["n"] += 1
        return torch.tensor(float("inf")) if calls["n"] == 7 else torch.zeros(())

    steps_per_epoch = -(-len(digits.y_train) // 60)
    with pytest.raises(FloatingPointError, match=r"became inf at step 7 \(in epoch 1\)"):
        train.fit(_mlp(digits), digits, epochs=2, penalty=explode_at_step_7, progress=False)
    assert steps_per_epoch > 7
    with pytest.raises(FloatingPointError, match=r"became nan at step 1 \(in epoch 1\)"):
        train.fit(_mlp(digits), digits, epochs=1, lr=1e30, progress=False,
                  penalty=lambda m: sum(p.sum() for p in m.parameters()) * float("nan"))


def test_early_stop_is_by_validation_loss_or_accuracy():
    history = pd.DataFrame({"step": [0, 10, 20, 30], "val_loss": [0.1, 0.9, 0.5, 0.6],
                            "val_acc": [0.1, 0.5, 0.7, 0.7]})
    result = train.FitResult(history, best_step=20, best_val_acc=0.7, stopped_early=False)
    assert result.early_stop()["step"] == 20  # the lowest loss after training started
    assert result.early_stop("val_acc")["step"] == 20  # ties: the earlier one
    with pytest.raises(ValueError, match="'val_loss' or 'val_acc'"):
        result.early_stop("test_acc")


def test_a_validation_loss_that_diverges_stops_training(digits):
    """One step per epoch: the step's own loss is finite, the weights it leaves are not."""
    with pytest.raises(FloatingPointError, match=r"validation loss became (nan|inf) at step 1: the weights diverged"):
        train.fit(_mlp(digits), digits, epochs=1, lr=1e30, batch_size=len(digits.y_train), progress=False)


def test_lr_scales_give_named_parameters_their_own_learning_rate(digits):
    seen = []
    train.fit(_mlp(digits), digits, epochs=2, lr=0.1, lr_decay=0.5, batch_size=500, progress=False,
              lr_scales={"3.": 10}, hooks=[lambda ctx: seen.append(
                  sorted((g["lr"], len(g["params"])) for g in ctx.optimizer.param_groups))])
    assert seen[0] == [(pytest.approx(0.1), 2), (pytest.approx(1.0), 2)]  # layer 1's two tensors; layer 3's two
    assert seen[-1] == [(pytest.approx(0.05), 2), (pytest.approx(0.5), 2)]  # both decay
    plain, fast = _mlp(digits), _mlp(digits)
    start = plain[3].weight.detach().clone()
    train.fit(plain, digits, epochs=1, lr=1e-3, optimizer="adam", progress=False)
    train.fit(fast, digits, epochs=1, lr=1e-3, optimizer="adam", progress=False, lr_scales={"3.": 20})
    assert (fast[3].weight - start).abs().mean() > 5 * (plain[3].weight - start).abs().mean()


@pytest.mark.parametrize("scales, message", [
    ({"gate": 10}, r"prefixes \['gate'\] match no parameter"),
    ({"1.": 0}, "positive factors"),
    ([("1.", 2)], "maps parameter-name prefixes"),
])
def test_bad_lr_scales_are_refused(digits, scales, message):
    with pytest.raises(ValueError, match=message):
        train.fit(_mlp(digits), digits, epochs=1, progress=False, lr_scales=scales)


def test_a_checkpoint_remembers_the_lr_scales(digits, tmp_path):
    ckpt = tmp_path / "run.pt"
    train.fit(_mlp(digits), digits, epochs=1, optimizer="adam", lr=1e-2, progress=False, checkpoint=ckpt,
              lr_scales={"3.": 5})
    with pytest.raises(ValueError, match="written by another training run"):
        train.fit(_mlp(digits), digits, epochs=2, optimizer="adam", lr=1e-2, progress=False, checkpoint=ckpt)


def test_a_checkpoint_written_before_lr_scales_still_resumes(digits, tmp_path):
    ckpt = tmp_path / "old.pt"
    train.fit(_mlp(digits), digits, epochs=1, optimizer="adam", lr=1e-2, progress=False, checkpoint=ckpt)
    state = torch.load(ckpt, weights_only=False)
    for group in state["optimizer"]["param_groups"]:
        del group["lr_scale"]  # as the optimiser groups were saved before fit took lr_scales
    torch.save(state, ckpt)
    result = train.fit(_mlp(digits), digits, epochs=2, optimizer="adam", lr=1e-2, progress=False, checkpoint=ckpt)
    assert result.history["epoch"].max() == 2
