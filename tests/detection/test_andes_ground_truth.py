"""Ringdown estimation against ANDES eigenvalues on the Kundur two-area system."""

from __future__ import annotations

import numpy as np
import pytest

from wams.detection.analytics.oscillation import estimate_ringdown_modes

andes = pytest.importorskip("andes")

RATE_HZ = 60.0


def kundur_ringdown() -> tuple[complex, np.ndarray, np.ndarray, np.ndarray]:
    """Return the inter-area eigenvalue and t, rotor angles (deg), speeds (Hz) after a line blink.

    Line_8 opens at 2.0 s (the case's own toggle) and closes at 2.1 s, so the grid rings down
    around the operating point whose eigenvalues ANDES computes.
    """
    andes.config_logger(stream_level=40)
    system = andes.load(andes.get_case("kundur/kundur_full.xlsx"), no_output=True, default_config=True, setup=False)
    system.add("Toggle", {"model": "Line", "dev": "Line_8", "t": 2.1})
    system.setup()
    system.PFlow.run()
    system.EIG.run()
    mu = np.asarray(system.EIG.mu)
    frequency_hz = mu.imag / (2 * np.pi)
    candidates = mu[(frequency_hz > 0.2) & (frequency_hz < 0.9)]
    inter_area = complex(candidates[np.argmin(-candidates.real / np.abs(candidates))])
    system.TDS.config.tf = 22.0
    system.TDS.config.tstep = 1.0 / RATE_HZ
    system.TDS.config.no_tqdm = 1
    system.TDS.run()
    series = system.dae.ts
    return inter_area, series.t, series.x[:, system.GENROU.delta.a], series.x[:, system.GENROU.omega.a]


def test_ringdown_estimate_matches_the_andes_inter_area_eigenvalue() -> None:
    eigenvalue, t, delta_rad, omega_pu = kundur_ringdown()
    truth_hz = eigenvalue.imag / (2 * np.pi)
    truth_pct = 100.0 * -eigenvalue.real / abs(eigenvalue)
    assert 0.5 < truth_hz < 0.8  # the textbook 0.6-0.7 Hz inter-area mode
    grid = np.arange(2.5, t[-1], 1.0 / RATE_HZ)  # from just after the line recloses
    angle_deg = np.column_stack([np.interp(grid, t, delta_rad[:, k]) for k in range(delta_rad.shape[1])]) * 180 / np.pi
    frequency_hz = np.column_stack([np.interp(grid, t, omega_pu[:, k]) for k in range(omega_pu.shape[1])]) * 60.0
    rng = np.random.default_rng(0)
    relative = angle_deg - angle_deg.mean(axis=1, keepdims=True)
    signals = np.hstack(
        [relative + rng.normal(0.0, 0.57, relative.shape), frequency_hz + rng.normal(0.0, 0.005, frequency_hz.shape)]
    )
    found = estimate_ringdown_modes(signals, RATE_HZ)
    mode = min(found, key=lambda m: abs(m.frequency_hz - truth_hz))
    assert mode.frequency_hz == pytest.approx(truth_hz, rel=0.01)
    assert mode.damping_pct == pytest.approx(truth_pct, abs=1.0)
    together, against = mode.groups([f"g{k}:angle_deg" for k in range(4)] + [f"g{k}:frequency_hz" for k in range(4)])
    # Generators 1-2 (area 1) swing against generators 3-4 (area 2), in whichever quantity
    # (angle or speed) sees the mode best.
    generators = {frozenset(c % 4 for c in together), frozenset(c % 4 for c in against)}
    assert generators == {frozenset({0, 1}), frozenset({2, 3})}
