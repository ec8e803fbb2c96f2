import dataclasses
import math

import pandas as pd
import pytest
import torch

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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_low_frequency_is_learned_first(seed):
    """Lecture 05's check at ci scale, three seeds (Rahaman et al.): the lowest frequency is
    learned, and the highest later or not at all."""
    settings = dataclasses.replace(sb.PRESETS["ci"], seed=seed)
    spectrum = sb.fit_spectrum(settings, progress=False)
    learned = sb.learned_at(spectrum, 0.1)
    low, high = min(settings.frequencies), max(settings.frequencies)
    assert not math.isnan(learned[low])
    assert math.isnan(learned[high]) or learned[high] > learned[low]
    assert spectrum["loss"].iloc[-1] < 0.1 * spectrum["loss"].iloc[0]


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
