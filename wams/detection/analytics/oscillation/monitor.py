"""Oscillation monitoring over a stream: ringdowns, ambient modes, forced oscillations, alarms.

Fed blocks of aligned samples (any channels: relative angles, frequencies), it keeps a window
of recent data and, as time passes: looks for a sudden rise of oscillatory energy and analyses
the ringdown that follows (a first estimate after `ringdown_first_s`, a final one after
`ringdown_final_s`); estimates ambient modes every `ambient_interval_s` over the last
`ambient_window_s`; and scans the last `forced_window_s` for forced oscillations.  Poorly
damped modes and forced oscillations raise detections once and clear after `clear_after`
analyses that no longer see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import signal as sps

from wams.detection.analytics.oscillation.ambient import AmbientConfig, estimate_ambient_modes
from wams.detection.analytics.oscillation.forced import (
    ForcedOscillation,
    ForcedOscillationConfig,
    detect_forced_oscillations,
    forced_from_mode,
    is_sustained,
)
from wams.detection.analytics.oscillation.modes import DampingLevels, Mode
from wams.detection.analytics.oscillation.pencil import (
    PencilConfig,
    detrend_linear,
    estimate_ringdown_modes,
    fill_gaps,
)
from wams.detection.analytics.oscillation.tracking import AlarmTracker
from wams.detection.analytics.types import Detection, DetectionKind, FloatArray


@dataclass(frozen=True)
class OscillationConfig:
    """Windows, triggers and alarm levels of the oscillation monitor."""

    damping: DampingLevels = field(default_factory=DampingLevels)
    pencil: PencilConfig = field(default_factory=PencilConfig)
    ambient: AmbientConfig = field(default_factory=AmbientConfig)
    forced: ForcedOscillationConfig = field(default_factory=ForcedOscillationConfig)
    trigger_window_s: float = 2.0
    trigger_ratio: float = 5.0  # short-window RMS over its usual level that starts a ringdown
    trigger_padding_s: float = 1.0  # earlier data read so that the trigger's low-pass filter settles
    ringdown_delay_s: float = 0.5  # skip the switching transient itself
    ringdown_first_s: float = 6.0
    ringdown_second_s: float = 9.0
    ringdown_final_s: float = 20.0
    ringdown_min_cycles: float = 1.5  # fewer cycles of a mode in the analysed window make a trend
    ringdown_confirmations: int = 2  # consecutive ringdown windows (6, 9, 20 s) agreeing before an alarm
    ringdown_min_snr: float = 2.0  # a mode's amplitude over its channel's usual in-band RMS, to be believed
    ringdown_min_pmus: int = 2  # PMUs a ringdown mode must show at (relative magnitude >= 0.1)
    ambient_window_s: float = 300.0
    ambient_interval_s: float = 30.0
    ambient_confirmations: int = 3  # consecutive ambient analyses before an ambient alarm
    forced_window_s: float = 120.0
    forced_interval_s: float = 10.0
    forced_confirmations: int = 2
    min_energy_fraction: float = 0.1  # modes weaker than this share never alarm
    match_fraction: float = 0.15  # modes within this share of frequency are the same mode
    clear_after: int = 3


@dataclass(frozen=True, slots=True)
class ModeEstimate:
    """A mode with the analysis it came from."""

    source: str  # "ringdown", "ringdown_first", "ambient" or "record"
    window_start_s: float
    window_end_s: float
    mode: Mode


class SampleWindow:
    """A fixed-capacity circular buffer of (n_time, n_channel) samples and their timestamps."""

    def __init__(self, capacity: int, n_channel: int) -> None:
        """Allocate the buffer."""
        self.values = np.full((capacity, n_channel), np.nan)
        self.timestamp_s = np.full(capacity, np.nan)
        self.count = 0  # rows ever written

    def append(self, timestamp_s: FloatArray, values: FloatArray) -> None:
        """Append rows (only the last `capacity` are kept)."""
        capacity = self.values.shape[0]
        timestamp_s, values = timestamp_s[-capacity:], values[-capacity:]
        index = (self.count + np.arange(timestamp_s.shape[0])) % capacity
        self.values[index] = values
        self.timestamp_s[index] = timestamp_s
        self.count += int(timestamp_s.shape[0])

    def last(self, n: int) -> tuple[FloatArray, FloatArray]:
        """Return the last n rows (fewer if not yet written), oldest first."""
        capacity = self.values.shape[0]
        n = min(n, self.count, capacity)
        index = (self.count - n + np.arange(n)) % capacity
        return self.timestamp_s[index], self.values[index]

    def since(self, start_s: float) -> tuple[FloatArray, FloatArray]:
        """Return the rows at or after start_s, oldest first."""
        t, v = self.last(self.values.shape[0])
        keep = t >= start_s
        return t[keep], v[keep]


class OscillationMonitor:
    """Watch n_channel signals sampled at rate_hz for poorly damped and forced oscillations."""

    def __init__(
        self,
        rate_hz: float,
        n_channel: int,
        config: OscillationConfig | None = None,
        channel_pmu: Sequence[int] | None = None,
        channel_names: Sequence[str] | None = None,
    ) -> None:
        """Create the monitor; channel_pmu[c] is the PMU index of channel c (identity if None).

        channel_names (`<pmu>:<quantity>`) let mode shapes compare channels of one quantity only.
        """
        self.rate_hz = rate_hz
        self.config = config or OscillationConfig()
        self.channel_pmu = list(channel_pmu) if channel_pmu is not None else list(range(n_channel))
        longest_s = max(self.config.ambient_window_s, self.config.forced_window_s, self.config.ringdown_final_s) + 5.0
        self.window = SampleWindow(int(longest_s * rate_hz) + 1, n_channel)
        self.estimates: list[ModeEstimate] = []
        self.forced: list[tuple[float, ForcedOscillation]] = []
        self.tracker = AlarmTracker(self.config, self._pmus_of, channel_names)
        self._rms_history: list[FloatArray] = []
        top_hz = self.config.pencil.max_frequency_hz
        self._trigger_low_pass: FloatArray | None = (
            np.asarray(sps.butter(4, top_hz, btype="low", fs=rate_hz, output="sos"), dtype=np.float64)
            if top_hz < 0.45 * rate_hz
            else None
        )
        self._next_trigger_check_s = float("nan")
        self._ringdown_start_s = float("nan")
        self._ringdown_stage = 0  # 0 idle, 1 waiting for the first estimate, 2 the second, 3 the final one
        self._usual_rms: FloatArray | None = None  # in-band RMS per channel before the ringdown started
        self._next_ambient_s = float("nan")
        self._next_forced_s = float("nan")
        self._start_s = float("nan")

    def update_block(self, timestamp_s: FloatArray, samples: FloatArray) -> list[Detection]:
        """Consume (n_time,) timestamps and (n_time, n_channel) samples; return detections."""
        timestamp_s = np.asarray(timestamp_s, dtype=np.float64)
        samples = np.asarray(samples, dtype=np.float64).reshape(timestamp_s.shape[0], -1)
        found: list[Detection] = []
        # Walk in steps of the trigger check so that blocks of any size behave alike.
        step = max(int(0.5 * self.rate_hz), 1)
        for begin in range(0, timestamp_s.shape[0], step):
            t = timestamp_s[begin : begin + step]
            self.window.append(t, samples[begin : begin + step])
            found.extend(self._advance(float(t[-1])))
        return found

    def _advance(self, now_s: float) -> list[Detection]:
        """Run whatever analysis is due at now_s."""
        cfg = self.config
        if np.isnan(self._start_s):
            self._start_s = now_s
            self._next_trigger_check_s = now_s + cfg.trigger_window_s
            self._next_ambient_s = now_s + cfg.ambient_window_s
            self._next_forced_s = now_s + cfg.forced_window_s
        found: list[Detection] = []
        if now_s >= self._next_trigger_check_s:
            self._next_trigger_check_s = now_s + 0.5
            self._check_trigger(now_s)
        if self._ringdown_stage:
            found.extend(self._ringdown(now_s))
        if now_s >= self._next_ambient_s:
            self._next_ambient_s = now_s + cfg.ambient_interval_s
            found.extend(self._ambient(now_s))
        if now_s >= self._next_forced_s:
            self._next_forced_s = now_s + cfg.forced_interval_s
            found.extend(self._forced(now_s))
        return found

    def _check_trigger(self, now_s: float) -> None:
        """Start a ringdown analysis when the short-window oscillatory RMS jumps above its usual level."""
        cfg = self.config
        n_window = int(cfg.trigger_window_s * self.rate_hz)
        _, recent = self.window.last(n_window + int(cfg.trigger_padding_s * self.rate_hz))
        rms = band_rms(recent, n_window, self._trigger_low_pass)
        if self._ringdown_stage == 0 and len(self._rms_history) >= 10:
            usual = np.median(np.asarray(self._rms_history), axis=0)
            ratio = rms / np.maximum(usual, 1e-12)
            if np.nanmax(ratio) >= cfg.trigger_ratio:
                self._ringdown_start_s = now_s - cfg.trigger_window_s / 2.0 + cfg.ringdown_delay_s
                self._ringdown_stage = 1
                self._usual_rms = usual
                return
        if self._ringdown_stage == 0:
            self._rms_history = [*self._rms_history[-239:], rms]

    def trigger_ringdown(self, start_s: float) -> None:
        """Analyse the ringdown that starts at start_s (e.g. after a fast detector fired)."""
        self._ringdown_start_s = start_s + self.config.ringdown_delay_s
        self._ringdown_stage = 1
        history = self._rms_history
        self._usual_rms = np.median(np.asarray(history), axis=0) if len(history) >= 10 else None

    def _ringdown(self, now_s: float) -> list[Detection]:
        """Estimate ringdown modes once enough data has followed the trigger."""
        cfg = self.config
        elapsed_s = now_s - self._ringdown_start_s
        if self._ringdown_stage == 1 and elapsed_s >= cfg.ringdown_first_s:
            self._ringdown_stage = 2
            return self._ringdown_estimate(now_s, "ringdown_first", final=False)
        if self._ringdown_stage == 2 and elapsed_s >= cfg.ringdown_second_s:
            self._ringdown_stage = 3
            return self._ringdown_estimate(now_s, "ringdown_second", final=False)
        if self._ringdown_stage == 3 and elapsed_s >= cfg.ringdown_final_s:
            self._ringdown_stage = 0
            return self._ringdown_estimate(now_s, "ringdown", final=True)
        return []

    def credible(self, mode: Mode) -> bool:
        """Return whether a ringdown mode is a measured swing rather than a fit to noise or to filled gaps.

        Its amplitude must stand `ringdown_min_snr` above its channel's usual in-band RMS (when that
        is known) and it must show at `ringdown_min_pmus` PMUs or more (when there are that many).
        """
        cfg = self.config
        usual = self._usual_rms
        ref = mode.reference_channel
        known = usual is not None and ref < usual.size and np.isfinite(usual[ref]) and usual[ref] > 0
        if known and mode.amplitude < cfg.ringdown_min_snr * float(usual[ref]):  # type: ignore[index]
            return False
        together, against = mode.groups(self.tracker.channel_names)
        pmus = self._pmus_of(together + against)
        return len(pmus) >= min(cfg.ringdown_min_pmus, len(set(self.channel_pmu)))

    def _ringdown_estimate(self, now_s: float, source: str, *, final: bool) -> list[Detection]:
        """Estimate modes over the ringdown so far and update the alarms."""
        t, values = self.window.since(self._ringdown_start_s)
        if t.size < 12:
            return []
        cfg = self.config
        start_s = float(t[0])
        # A "mode" completing too few cycles in the window is a trend, such as the angles of two
        # islands drifting apart, not an oscillation.
        span_s = float(t[-1]) - start_s
        modes = [
            m
            for m in estimate_ringdown_modes(values, self.rate_hz, cfg.pencil)
            if m.frequency_hz * span_s >= cfg.ringdown_min_cycles
        ]
        self.estimates.extend(ModeEstimate(source, start_s, float(t[-1]), m) for m in modes)
        # A triggered window whose strong mode does not decay is a forced oscillation starting,
        # not a ringdown: it is reported as such, seconds after its onset.
        sustained = [
            m
            for m in modes
            if m.energy_fraction >= cfg.min_energy_fraction and is_sustained(m, values, self.rate_hz, cfg.forced)
        ]
        # Poles next to a sustained one are its build-up (a tone switched on is a pole pair), not modes.
        natural = [
            m
            for m in modes
            if all(abs(m.frequency_hz - s.frequency_hz) > cfg.match_fraction * s.frequency_hz for s in sustained)
        ]
        # Alarms need a believable mode seen by consecutive windows: one fit alone (or a fit to noise) never alarms.
        believed = [m for m in natural if self.credible(m)]
        found = self.tracker.update_modes(
            believed, now_s, start_s, "ringdown", confirmations=cfg.ringdown_confirmations, final=final
        )
        if sustained:
            forced = [self._located(forced_from_mode(m)) for m in sustained]
            self.forced.extend((now_s, f) for f in forced)
            # Never cleared from here: the periodic forced scans decide when it has stopped.
            found += self.tracker.update_forced(forced, now_s, start_s, source="ringdown", confirmations=1, final=False)
        return found

    def _ambient(self, now_s: float) -> list[Detection]:
        """Estimate ambient modes over the last window, unless a ringdown is under way."""
        if self._ringdown_stage:
            return []
        t, values = self.window.last(int(self.config.ambient_window_s * self.rate_hz))
        modes = estimate_ambient_modes(values, self.rate_hz, self.config.ambient)
        self.estimates.extend(ModeEstimate("ambient", float(t[0]), float(t[-1]), m) for m in modes)
        return self.tracker.update_modes(
            modes, now_s, float(t[0]), "ambient", confirmations=self.config.ambient_confirmations, final=True
        )

    def _forced(self, now_s: float) -> list[Detection]:
        """Scan the last window for forced oscillations."""
        t, values = self.window.last(int(self.config.forced_window_s * self.rate_hz))
        found = [self._located(f) for f in detect_forced_oscillations(values, self.rate_hz, self.config.forced)]
        self.forced.extend((now_s, f) for f in found)
        return self.tracker.update_forced(found, now_s, float(t[0]))

    def _located(self, forced: ForcedOscillation) -> ForcedOscillation:
        """Return the forced oscillation referred to the PMU where it is largest, a first hint at its source.

        Each channel's amplitude is taken relative to the largest of its quantity (angles with
        angles, frequencies with frequencies) and summed per PMU: the PMU that leads in every
        quantity wins, rather than the one channel whose noise estimate happened to be lowest.
        """
        relative = Mode(
            frequency_hz=forced.frequency_hz,
            damping_pct=forced.apparent_damping_pct,
            amplitudes=forced.amplitudes,
            phases_deg=forced.phases_deg,
            energy_fraction=1.0,
        ).relative_magnitudes(self.tracker.channel_names)
        owners = np.asarray(self.channel_pmu)
        score = np.bincount(owners, weights=np.nan_to_num(relative), minlength=int(owners.max()) + 1)
        channels = np.flatnonzero(owners == int(np.argmax(score)))
        reference = int(channels[np.argmax(np.nan_to_num(relative[channels]))])
        return replace(forced, reference_channel=reference)

    def _pmus_of(self, channels: Sequence[int]) -> tuple[int, ...]:
        """Return the sorted PMU indices of channels."""
        return tuple(sorted({int(self.channel_pmu[c]) for c in channels}))

    def active_kinds(self) -> list[DetectionKind]:
        """Return the kinds of the conditions raised now."""
        return [a.kind for a in self.tracker.active]


def band_rms(samples: FloatArray, n_last: int, low_pass: FloatArray | None) -> FloatArray:
    """Return the (n_channel,) RMS of the last n_last rows of (n_time, n_channel) samples in the analysis band.

    Each channel's line is removed and, through the `low_pass` filter (second-order sections;
    None: no filter), what lies above the analysis band (mostly measurement noise, white up to
    half the reporting rate), so an oscillation starting stands out against ambient data far
    better than in the raw spread.  Channels with fewer than half their rows measured give nan
    (ignored by the trigger).
    """
    known = np.isfinite(samples).sum(axis=0)
    x = detrend_linear(fill_gaps(samples))
    if low_pass is not None and x.shape[0] > 3 * (2 * low_pass.shape[0] + 1):
        x = sps.sosfiltfilt(low_pass, x, axis=0)
    rms = np.std(x[-n_last:], axis=0)
    return np.asarray(np.where(known >= samples.shape[0] / 2, rms, np.nan), dtype=np.float64)
