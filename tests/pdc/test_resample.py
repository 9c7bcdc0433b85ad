"""Reporting-rate conversion: the anti-alias filter on known tones."""

from __future__ import annotations

import numpy as np
import pytest

from wams.pdc.resample import StreamingDecimator, decimate, design_decimation_filter

IN_RATE_FPS = 30
FACTOR = 3  # 30 fps -> 10 fps, new Nyquist 5 Hz


def tone(frequency_hz: float, n: int) -> np.ndarray:
    """Return a unit rotating phasor sampled at 30 fps -> (n,) complex."""
    k = np.arange(n)
    return np.exp(2j * np.pi * frequency_hz * k / IN_RATE_FPS)


@pytest.mark.parametrize("factor", [2, 3, 5, 6])
def test_filter_has_odd_length_and_unit_gain_at_dc(factor: int) -> None:
    taps = design_decimation_filter(factor)
    assert len(taps) % 2 == 1
    np.testing.assert_allclose(taps.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(taps, taps[::-1], atol=1e-15)  # linear phase


def test_tone_in_the_pass_band_keeps_amplitude_and_phase_at_its_time_stamps() -> None:
    x = tone(1.0, 900)
    indices, y = decimate(x, FACTOR)
    assert np.all(indices % FACTOR == 0)
    # Passband ripple of a 60 dB Kaiser design is about 1e-3: check within 2e-3 of the true phasor.
    np.testing.assert_allclose(y[:, 0], x[indices], atol=2e-3)


def test_tone_above_the_new_nyquist_frequency_is_suppressed_instead_of_aliased() -> None:
    x = tone(7.0, 900)  # would alias to 3 Hz at 10 fps
    _, y = decimate(x, FACTOR)
    assert np.max(np.abs(y)) < 2e-3  # at least 54 dB down


def test_real_frequency_signal_passes_the_filter_unchanged_when_constant() -> None:
    x = np.full(300, 59.98)
    _, y = decimate(x, FACTOR)
    np.testing.assert_allclose(y.real, 59.98, atol=1e-9)


def test_factor_one_passes_every_sample_through() -> None:
    decimator = StreamingDecimator(1, 1)
    outputs = [decimator.push(k, [k]) for k in range(5)]
    assert [o[0][0] for o in outputs] == [0, 1, 2, 3, 4]


def test_streaming_decimator_holds_the_last_value_across_a_short_gap() -> None:
    decimator = StreamingDecimator(FACTOR, 1)
    out: dict[int, complex] = {}
    for k in [*range(0, 100), *range(103, 200)]:  # instants 100..102 missing
        for index, value in decimator.push(k, [2.0]):
            out[index] = complex(value[0])
    assert 102 in out  # the gap's output instant is still produced (from held values)
    np.testing.assert_allclose(list(out.values()), 2.0, atol=1e-9)


def test_streaming_decimator_restarts_after_a_long_gap() -> None:
    decimator = StreamingDecimator(FACTOR, 1)
    for k in range(100):
        decimator.push(k, [1.0])
    outputs = decimator.push(100 + 10 * decimator.n_taps, [5.0])
    assert outputs == [] or all(index >= 100 + 10 * decimator.n_taps for index, _ in outputs)
    assert decimator.last_index == 100 + 10 * decimator.n_taps


def test_out_of_order_input_is_ignored() -> None:
    decimator = StreamingDecimator(FACTOR, 1)
    decimator.push(10, [1.0])
    assert decimator.push(9, [1.0]) == []
    assert decimator.last_index == 10
