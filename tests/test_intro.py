import pytest

from coursekit import claims, intro, runtime


@pytest.mark.trained
@pytest.mark.parametrize("seed", claims.seeds(default=(0,)))
def test_presets_cover_every_scale_and_train(digits, seed):
    settings = runtime.settings_for(intro.PRESETS, "ci", epochs=2, width=0.25)
    assert settings.epochs == 2 and settings.width == 0.25
    result = intro.train_lenet(digits, settings, seed=seed, progress=False)
    claims.check("test_intro", [claims.Claim("LeNet's final test accuracy on digits",
                                             result.history["test_acc"].iloc[-1], ">", 0.5)])
    hist = result.history
    assert len(hist) >= 1 + 2 * 4  # evaluated about four times per epoch
    assert hist["epoch"].iloc[-1] == 2.0  # and at the very end
