"""Raise, confirm and clear oscillation alarms across successive analyses (deduplicated by frequency)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from wams.detection.analytics.oscillation.forced import ForcedOscillation
from wams.detection.analytics.oscillation.modes import Mode
from wams.detection.analytics.types import Detection, DetectionKind, DetectionPhase, Severity

if TYPE_CHECKING:
    from wams.detection.analytics.oscillation.monitor import OscillationConfig


# (frequency_hz, damping_pct, severity, quantities, pmu_indices) of one condition in one analysis
Sighting = tuple[float, float, Severity, dict[str, float], tuple[int, ...]]


@dataclass
class Candidate:
    """A condition seen by one or more consecutive analyses, raised or waiting for confirmation."""

    kind: DetectionKind
    source: str
    frequency_hz: float
    start_time_s: float
    pmu_indices: tuple[int, ...]
    quantities: dict[str, float] = field(default_factory=dict)
    severity: Severity = Severity.WARNING
    hits: int = 0
    misses: int = 0
    worst_damping_pct: float = float("inf")

    @property
    def key(self) -> str:
        """Return the identity shared by the raised and the cleared detection."""
        return f"{self.kind.value}:{self.frequency_hz:.3f}Hz@{self.start_time_s:.1f}"


class AlarmTracker:
    """Keep the raised oscillation conditions and the candidates awaiting confirmation."""

    def __init__(
        self,
        config: OscillationConfig,
        pmus_of: Callable[[Sequence[int]], tuple[int, ...]],
        channel_names: Sequence[str] | None = None,
    ) -> None:
        """Create an empty tracker."""
        self.config = config
        self.pmus_of = pmus_of
        self.channel_names = list(channel_names) if channel_names is not None else None
        self.active: list[Candidate] = []
        self.pending: list[Candidate] = []

    def _match(self, pool: list[Candidate], kind: DetectionKind, frequency_hz: float) -> Candidate | None:
        """Return the entry of a kind nearest in frequency within the match tolerance."""
        near = [
            c
            for c in pool
            if c.kind is kind and abs(c.frequency_hz - frequency_hz) <= self.config.match_fraction * c.frequency_hz
        ]
        return min(near, key=lambda c: abs(c.frequency_hz - frequency_hz)) if near else None

    def update_modes(
        self, modes: list[Mode], now_s: float, window_start_s: float, source: str, *, confirmations: int, final: bool
    ) -> list[Detection]:
        """Fold one modal analysis in; preliminary (not final) analyses may raise but never clear."""
        levels = self.config.damping
        kind = DetectionKind.POORLY_DAMPED_OSCILLATION
        strong = [m for m in modes if m.energy_fraction >= self.config.min_energy_fraction]
        seen: list[Sighting] = []
        # Within the hysteresis band above the warning level a raised mode is held, not cleared.
        held = [
            m.frequency_hz
            for m in strong
            if levels.warning_pct <= m.damping_pct < levels.warning_pct + levels.hysteresis_pct
        ]
        for mode in strong:
            if mode.damping_pct < levels.warning_pct:
                together, against = mode.groups(self.channel_names)
                quantities = {
                    "mode_frequency_hz": mode.frequency_hz,
                    "damping_pct": mode.damping_pct,
                    "amplitude": mode.amplitude,
                    "energy_fraction": mode.energy_fraction,
                }
                seen.append(
                    (
                        mode.frequency_hz,
                        mode.damping_pct,
                        levels.severity(mode.damping_pct),
                        quantities,
                        self.pmus_of(together + against),
                    )
                )
        return self._update(kind, source, seen, now_s, window_start_s, confirmations, final, held)

    def update_forced(
        self,
        found: list[ForcedOscillation],
        now_s: float,
        window_start_s: float,
        *,
        source: str = "forced",
        confirmations: int | None = None,
        final: bool = True,
    ) -> list[Detection]:
        """Fold one forced-oscillation scan in (source "ringdown": a sustained mode of a triggered window)."""
        seen: list[Sighting] = []
        for f in found:
            quantities = {
                "frequency_hz": f.frequency_hz,
                "amplitude": f.amplitude,
                "peak_to_floor_db": f.peak_to_floor_db,
                "apparent_damping_pct": f.apparent_damping_pct,
                "source_pmu": float(self.pmus_of([f.reference_channel])[0]),
            }
            if source == "ringdown":
                quantities["mode_frequency_hz"] = f.frequency_hz
            relative = f.amplitudes / max(f.amplitude, 1e-300)
            channels = [int(c) for c in np.flatnonzero(np.isfinite(relative))]
            seen.append((f.frequency_hz, f.apparent_damping_pct, Severity.WARNING, quantities, self.pmus_of(channels)))
        return self._update(
            DetectionKind.FORCED_OSCILLATION,
            source,
            seen,
            now_s,
            window_start_s,
            self.config.forced_confirmations if confirmations is None else confirmations,
            final,
        )

    def _update(
        self,
        kind: DetectionKind,
        source: str,
        seen: list[Sighting],
        now_s: float,
        window_start_s: float,
        confirmations: int,
        final: bool,
        held: Sequence[float] = (),
    ) -> list[Detection]:
        """Raise confirmed conditions, refresh raised ones and clear those no longer seen."""
        out: list[Detection] = []
        touched: set[int] = set()
        for frequency_hz in held:
            holding = self._match(self.active, kind, frequency_hz)
            if holding is not None:
                touched.add(id(holding))
        still_pending: list[Candidate] = []
        for frequency_hz, damping_pct, severity, quantities, pmus in seen:
            active = self._match(self.active, kind, frequency_hz)
            if active is not None:
                active.misses = 0
                active.worst_damping_pct = min(active.worst_damping_pct, damping_pct)
                active.severity = max(active.severity, severity)
                touched.add(id(active))
                continue
            pending = self._match([c for c in self.pending if c.source == source], kind, frequency_hz)
            if pending is None:
                pending = Candidate(kind, source, frequency_hz, window_start_s, pmus)
            pending.hits += 1
            pending.frequency_hz, pending.quantities, pending.severity = frequency_hz, quantities, severity
            pending.worst_damping_pct = min(pending.worst_damping_pct, damping_pct)
            if pending.hits >= confirmations:
                self.active.append(pending)
                touched.add(id(pending))
                out.append(self._detection(pending, DetectionPhase.RAISED, now_s))
            else:
                still_pending.append(pending)
        self.pending = [c for c in self.pending if c.source != source] + still_pending
        if final:
            out.extend(self._age(kind, touched, now_s))
        return out

    def _age(self, kind: DetectionKind, touched: set[int], now_s: float) -> list[Detection]:
        """Count a miss for raised conditions of a kind that this analysis did not see; clear old ones."""
        out: list[Detection] = []
        for active in list(self.active):
            if active.kind is not kind or id(active) in touched:
                continue
            active.misses += 1
            if active.misses >= self.config.clear_after:
                self.active.remove(active)
                out.append(self._detection(active, DetectionPhase.CLEARED, now_s))
        return out

    def _detection(self, c: Candidate, phase: DetectionPhase, now_s: float) -> Detection:
        """Build the detection of a raised or cleared condition."""
        quantities = dict(c.quantities)
        if np.isfinite(c.worst_damping_pct):
            quantities["damping_min_pct"] = c.worst_damping_pct
        return Detection(
            kind=c.kind,
            phase=phase,
            severity=c.severity,
            pmu_indices=c.pmu_indices,
            start_time_s=c.start_time_s,
            detected_time_s=now_s,
            end_time_s=now_s if phase is DetectionPhase.CLEARED else None,
            quantities=quantities,
            key=c.key,
        )
