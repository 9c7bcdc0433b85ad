"""The analyses of oscillation monitoring: recent samples in, sightings out (numpy, no Django)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import signal as sps

from wams.detection.analytics.offline import SignalTable, json_ready, oscillation_channels
from wams.detection.analytics.oscillation import (
    DampingLevels,
    ForcedOscillation,
    Mode,
    OscillationConfig,
    OscillationMonitor,
    detect_forced_oscillations,
    estimate_ambient_modes,
)
from wams.detection.analytics.oscillation.forced import ForcedOscillationConfig, narrowband_peaks
from wams.detection.analytics.oscillation.pencil import decimate, detrend_linear, fill_gaps
from wams.detection.analytics.types import DetectionKind, DetectionPhase, FloatArray

POORLY_DAMPED = DetectionKind.POORLY_DAMPED_OSCILLATION.value
FORCED = DetectionKind.FORCED_OSCILLATION.value
KINDS = (POORLY_DAMPED, FORCED)
ANALYSIS_RATE_HZ = 10.0  # the estimators work at about this rate anyway; decimating first saves most of the cost


@dataclass(frozen=True)
class OscillationParams:
    """Windows, cadence and alarm levels of the worker's oscillation monitoring."""

    levels: DampingLevels = field(default_factory=DampingLevels)
    window_s: float = 120.0
    ambient_window_s: float = 300.0
    ambient_interval_s: float = 30.0
    ambient_confirmations: int = 3
    forced_step_s: float = 10.0
    min_energy_fraction: float = 0.1
    match_fraction: float = 0.15  # sightings within this share of an event's frequency are that event
    clear_after_s: float = 30.0


@dataclass(frozen=True)
class Channels:
    """Signals for mode analysis: times (n,), values (n, n_channel), names, owning PMU index per channel."""

    time_s: FloatArray
    values: FloatArray
    names: list[str]
    owners: list[int]
    rate_hz: float

    def last(self, seconds: float, end_offset_s: float = 0.0) -> FloatArray:
        """Return the rows of the `seconds` before (end - end_offset_s)."""
        end_s = self.time_s[-1] - end_offset_s
        keep = (self.time_s > end_s - seconds) & (self.time_s <= end_s + 1e-9)
        return self.values[keep]


@dataclass(frozen=True)
class Sighting:
    """One oscillation condition seen by one run."""

    kind: str
    severity: str
    frequency_hz: float
    start_time_s: float
    pmu_indices: tuple[int, ...]
    quantities: dict[str, Any] = field(default_factory=dict)


def make_channels(
    time_s: FloatArray, frequency_hz: FloatArray, angle_deg: FloatArray, names: Sequence[str]
) -> Channels:
    """Return the analysis channels of (n, n_pmu) data at about 10 Hz: angles and frequencies relative to the mean.

    Relative signals keep every electromechanical mode in which PMUs swing against each other and
    drop the common motion of the whole grid's frequency (governor response after a trip or a load
    step), which a ringdown fit would otherwise take for a slow, badly damped mode.
    """
    nan = np.full_like(frequency_hz, np.nan)
    reporting = np.isfinite(frequency_hz).sum(axis=1, keepdims=True)
    if frequency_hz.shape[1] >= 2:
        mean_hz = np.nansum(frequency_hz, axis=1, keepdims=True) / np.maximum(reporting, 1)
        frequency_hz = np.where(reporting >= 2, frequency_hz - mean_hz, np.nan)
    table = SignalTable(
        time_s=time_s,
        pmus=list(names),
        signals={"frequency_hz": frequency_hz, "rocof_hz_per_s": nan, "magnitude_pu": nan, "angle_deg": angle_deg},
    )
    values, channels, owners = oscillation_channels(table)
    rate_hz = table.rate_hz
    factor = round(rate_hz / ANALYSIS_RATE_HZ)
    if factor > 1 and values.shape[1]:
        # Detrended first: the FIR's edges would ring on the 60 Hz offset of the frequencies. A target a
        # little under rate / factor makes decimate() use exactly this factor despite rounding.
        values, rate_hz = decimate(detrend_linear(fill_gaps(values)), rate_hz, 0.999 * rate_hz / factor)
        time_s = time_s[: values.shape[0] * factor : factor]
    return Channels(time_s, values, channels, owners, rate_hz)


def tail_of(ch: Channels, seconds: float) -> tuple[FloatArray, FloatArray, list[str], list[int], float]:
    """Return the fields of the channels restricted to the last `seconds`."""
    keep = ch.time_s > ch.time_s[-1] - seconds
    return ch.time_s[keep], ch.values[keep], ch.names, ch.owners, ch.rate_hz


def _pmus_of(owners: Sequence[int], channels: Sequence[int]) -> tuple[int, ...]:
    return tuple(sorted({int(owners[c]) for c in channels}))


def _mode_quantities(mode: Mode, ch: Channels) -> dict[str, Any]:
    """Return the event quantities of a mode: frequency, damping, amplitude and shape."""
    shape = mode.to_dict(ch.names)
    return {
        "frequency_hz": mode.frequency_hz,
        "damping_pct": mode.damping_pct,
        "amplitude": mode.amplitude,
        "amplitude_channel": shape["amplitude_channel"],
        "energy_fraction": mode.energy_fraction,
        "mode_shape": {k: shape[k] for k in ("shape", "swing_together", "swing_against")},
    }


def ringdown_sightings(ch: Channels, params: OscillationParams) -> list[Sighting]:
    """Replay the channels through a monitor that only analyses ringdowns; return its raised conditions."""
    span_s = float(ch.time_s[-1] - ch.time_s[0]) + 10.0  # beyond the data: no ambient or forced analysis
    config = OscillationConfig(
        damping=params.levels,
        ambient_window_s=span_s,
        forced_window_s=span_s,
        min_energy_fraction=params.min_energy_fraction,
        match_fraction=params.match_fraction,
    )
    monitor = OscillationMonitor(ch.rate_hz, ch.values.shape[1], config, ch.owners, ch.names)
    step = max(round(ch.rate_hz), 1)
    found = []
    for begin in range(0, ch.time_s.size, step):
        found += monitor.update_block(ch.time_s[begin : begin + step], ch.values[begin : begin + step])
    sightings = []
    for det in found:
        if det.phase is not DetectionPhase.RAISED:
            continue
        frequency = det.quantities["mode_frequency_hz"]
        estimates = [
            e.mode
            for e in monitor.estimates
            if abs(e.mode.frequency_hz - frequency) <= params.match_fraction * frequency and e.source.startswith("ring")
        ]
        best = estimates[-1] if estimates else None  # the final estimate when there is one
        quantities: dict[str, Any] = _mode_quantities(best, ch) if best is not None else {"frequency_hz": frequency}
        if best is None:
            quantities["damping_pct"] = det.quantities.get("damping_pct")
        quantities["damping_min_pct"] = det.quantities.get("damping_min_pct", quantities["damping_pct"])
        quantities["analysis"] = "ringdown"
        sightings.append(
            Sighting(det.kind.value, det.severity.label, frequency, det.start_time_s, det.pmu_indices, quantities)
        )
    return sightings


def forced_sightings(ch: Channels, params: OscillationParams, pmu_names: Sequence[str]) -> list[Sighting]:
    """Return the forced oscillations of the channels that a scan forced_step_s earlier saw too.

    The earlier scan only looks for the spectral lines (cheap); the full test (damping, shape) runs
    on the later window when both show a line near the same frequency.
    """
    length_s = float(ch.time_s[-1] - ch.time_s[0]) - params.forced_step_s
    if length_s < 30.0:
        return []
    config = ForcedOscillationConfig()
    earlier = narrowband_peaks(fill_gaps(ch.last(length_s, params.forced_step_s)), ch.rate_hz, config)
    later = fill_gaps(ch.last(length_s))
    if not earlier or not narrowband_peaks(later, ch.rate_hz, config):
        return []
    sightings = []
    for f in detect_forced_oscillations(later, ch.rate_hz, config):
        tolerance_hz = max(0.05, params.match_fraction * f.frequency_hz / 3.0)
        if not any(abs(frequency - f.frequency_hz) <= tolerance_hz for frequency, _ in earlier):
            continue
        sightings.append(
            Sighting(
                FORCED,
                "warning",
                f.frequency_hz,
                _onset_s(ch, f),
                _forced_pmus(f, ch.owners),
                _forced_quantities(f, ch, pmu_names),
            )
        )
    return sightings


def _onset_s(ch: Channels, forced: ForcedOscillation, quiet_fraction: float = 0.25) -> float:
    """Return when a forced oscillation began: its envelope in the reference channel last rose from quiet.

    The envelope (band-passed around the frequency, Hilbert magnitude) is compared with its median
    over the last 20 s; the onset follows the last time it was below quiet_fraction of that level
    (the window start when it never was).
    """
    x = detrend_linear(fill_gaps(ch.values[:, [forced.reference_channel]]))[:, 0]
    f_hz = forced.frequency_hz
    half_hz = max(0.1, 0.2 * f_hz)
    band = [max(f_hz - half_hz, 0.01), min(f_hz + half_hz, 0.45 * ch.rate_hz)]
    sos = sps.butter(2, band, btype="bandpass", fs=ch.rate_hz, output="sos")
    envelope = np.abs(sps.hilbert(sps.sosfiltfilt(sos, x)))
    level = float(np.median(envelope[ch.time_s >= ch.time_s[-1] - 20.0]))
    quiet = np.flatnonzero(envelope < quiet_fraction * level)
    return float(ch.time_s[quiet[-1] + 1]) if quiet.size and quiet[-1] + 1 < ch.time_s.size else float(ch.time_s[0])


def _forced_pmus(f: ForcedOscillation, owners: Sequence[int]) -> tuple[int, ...]:
    """Return the PMUs where the forced oscillation has at least a tenth of its reference amplitude."""
    relative = f.amplitudes / max(f.amplitude, 1e-300)
    return _pmus_of(owners, [int(c) for c in np.flatnonzero(relative >= 0.1)])


def _forced_quantities(f: ForcedOscillation, ch: Channels, pmu_names: Sequence[str]) -> dict[str, Any]:
    shape = f.to_dict(ch.names)
    return {
        "frequency_hz": f.frequency_hz,
        "damping_pct": f.apparent_damping_pct,
        "amplitude": f.amplitude,
        "amplitude_channel": shape["amplitude_channel"],
        "peak_to_floor_db": f.peak_to_floor_db,
        "source_pmu": pmu_names[ch.owners[f.reference_channel]],
        "mode_shape": {"shape": shape["shape"]},
    }


def ambient_poorly_damped(ch: Channels, params: OscillationParams, pmu_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Estimate ambient modes over the channels; return the poorly damped ones with PMU ids and shapes."""
    out = []
    for mode in estimate_ambient_modes(ch.values, ch.rate_hz):
        if mode.energy_fraction < params.min_energy_fraction or not mode.damping_pct < params.levels.warning_pct:
            continue
        together, against = mode.groups(ch.names)
        quantities = _mode_quantities(mode, ch)
        quantities["severity"] = params.levels.severity(mode.damping_pct).label
        quantities["pmu_ids"] = [pmu_ids[i] for i in _pmus_of(ch.owners, together + against)]
        out.append(json_ready(quantities))
    return out


def after_last_gap(
    time_s: FloatArray, frequency_hz: FloatArray, angle_deg: FloatArray, gap_s: float = 1.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Keep only the rows after the last stretch of at least gap_s with no PMU reporting (e.g. a pdc restart).

    Interpolating across such a gap would make a step that the ringdown trigger takes for a disturbance.
    """
    if time_s.size < 2:
        return time_s, frequency_hz, angle_deg
    empty = np.isnan(frequency_hz).all(axis=1)
    if not empty.any():
        return time_s, frequency_hz, angle_deg
    known = np.flatnonzero(~empty)
    if known.size == 0:
        return time_s[:0], frequency_hz[:0], angle_deg[:0]
    breaks = np.flatnonzero(np.diff(time_s[known]) >= gap_s)
    first = int(known[breaks[-1] + 1]) if breaks.size else int(known[0])
    return time_s[first:], frequency_hz[first:], angle_deg[first:]
