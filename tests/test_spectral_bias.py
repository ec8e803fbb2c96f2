import dataclasses
import math

import pandas as pd
import pytest
import torch

from coursekit import claims
from coursekit import spectral_bias as sb


def test_target_has_one_unit_coefficient_per_frequency():
    settings = sb.SpectralSettings(frequencies=(3, 9), points=64)
    coeffs = sb.fourier_coefficients(sb.target(settings), tuple(range(1, 32)))
    amplitudes = coeffs.abs()
    assert amplitudes[[2, 8]].tolist() == pytest.approx([1.0, 1.0])
    assert amplitudes.sum().item() == pytest.approx(2.0, abs=1e-5)  # nothing elsewhere


def test_fourier_coefficient_carries_the_phase():
    x = torch.arange(50) / 50
    a = sb.fourier_coefficients(torch.sin(2 * math.pi * 4 * x), (4,))
    b = sb.fourier_coefficients(torch.sin(2 * math.pi * 4 * x + 1.0), (4,))
    assert abs(a.abs() - b.abs()) < 1e-6 and (a - b).abs() > 0.9


def test_learned_at_takes_the_first_crossing():
    table = pd.DataFrame({"step": [0, 10, 20, 30] * 2, "frequency": [1] * 4 + [5] * 4,
                          "error": [0.9, 0.05, 0.2, 0.01, 0.9, 0.9, 0.9, 0.5]})
    learned = sb.learned_at(table, tolerance=0.1)
    assert learned[1] == 10 and math.isnan(learned[5])


@pytest.mark.headline
@pytest.mark.parametrize("seed", claims.seeds(default=(1, 2)))
def test_low_frequency_is_learned_first(seed):
    """Lecture 05's spectral-bias headline (Rahaman et al.) for seeds the notebook does not run."""
    settings = dataclasses.replace(sb.PRESETS["ci"], seed=seed)
    claims.check("test_spectral_bias", sb.headline(sb.fit_spectrum(settings, progress=False), settings))


def test_headline_counts_a_frequency_never_learned_as_after_the_end():
    settings = sb.SpectralSettings(frequencies=(1, 5), steps=20, record_every=10)
    spectrum = pd.DataFrame({"step": [0, 10, 20] * 2, "frequency": [1] * 3 + [5] * 3,
                             "error": [0.9, 0.05, 0.0, 0.9, 0.9, 0.9], "loss": [1.0, 0.5, 0.01] * 2})
    table = claims.check("unit", sb.headline(spectrum, settings))
    assert table["value"].tolist()[:2] == [10, 30 - 10]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"frequencies": (40,), "points": 64}, "Nyquist"),
    ({"frequencies": (0,)}, "from 1 to below"),
    ({"depth": 0}, "must be positive"),
])
def test_bad_spectral_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sb.fit_spectrum(sb.SpectralSettings(**kwargs), progress=False)


def test_learned_at_rejects_a_bad_tolerance():
    with pytest.raises(ValueError, match=r"tolerance must be in \(0, 1\)"):
        sb.learned_at(pd.DataFrame({"step": [0], "frequency": [1], "error": [0.0]}), 0)


@pytest.mark.parametrize(("call", "message"), [
    (lambda x: sb.fourier_coefficients(x, (-44,)), r"frequencies must be distinct integers from 1 to below points/2 = 50.0"),
    (lambda x: sb.fourier_coefficients(x, (0,)), "from 1 to below"),
    (lambda x: sb.fourier_coefficients(x, (50,)), "Nyquist"),
    (lambda x: sb.fourier_coefficients(x, (7, 7)), "distinct"),
    (lambda x: sb.SpectralSettings(amplitude=-1.0), "amplitude must be positive, got -1.0"),
    (lambda x: sb.SpectralSettings(frequencies=()), "frequencies must be distinct integers"),
])
def test_frequencies_that_alias_or_double_and_negative_amplitudes_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.sin(2 * math.pi * 7 * torch.arange(100) / 100))
