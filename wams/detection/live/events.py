"""Detections of the live bank into events: keys, summaries, raise and clear (worker thread only)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from wams.detection.analytics.incidents import IncidentReport
from wams.detection.analytics.types import Detection, DetectionPhase, Severity
from wams.detection.live.plan import DetectorPlan

KEY_PREFIX = "live:"
SOURCE = "pdc"


def _finite(quantities: dict[str, float]) -> dict[str, float]:
    """Return the quantities that are finite numbers (JSON has no NaN)."""
    return {k: float(v) for k, v in quantities.items() if isinstance(v, int | float) and math.isfinite(v)}


def event_key(detection: Detection, pmu_ids: Sequence[int]) -> str:
    """Return the event dedup key of a detection: its kind, tag and the PMU ids it names."""
    tail = detection.key.split(":", 1)[1] if ":" in detection.key else ""
    tag = tail.rpartition("@")[0]
    places = "-".join(str(pmu_ids[i]) for i in detection.pmu_indices)
    return f"{KEY_PREFIX}{detection.kind.value}:{tag + '@' if tag else ''}{places}"


_HEADLINE = {
    "frequency_nadir_hz": "nadir {:.3f} Hz",
    "frequency_peak_hz": "peak {:.3f} Hz",
    "rocof_max_hz_per_s": "max ROCOF {:+.2f} Hz/s",
    "voltage_min_pu": "min {:.3f} pu",
    "voltage_max_pu": "max {:.3f} pu",
    "angle_separation_max_deg": "max separation {:.1f} deg",
    "angle_step_deg": "angle step {:.1f} deg",
    "frequency_divergence_max_hz": "divergence {:+.3f} Hz",
}


def describe(detection: Detection, names: Sequence[str]) -> str:
    """Return a one-line summary: what, where and the key figure."""
    where = ", ".join(names[i] for i in detection.pmu_indices[:6])
    if len(detection.pmu_indices) > 6:
        where += f" and {len(detection.pmu_indices) - 6} more"
    text = detection.kind.value.replace("_", " ").capitalize() + (f" at {where}" if where else "")
    for name, pattern in _HEADLINE.items():
        value = detection.quantities.get(name)
        if value is not None and math.isfinite(value):
            return f"{text}: {pattern.format(value)}"
    return text


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def apply_detection(detection: Detection, plan: DetectorPlan) -> None:
    """Raise or clear the event of one detection."""
    from wams.detection.services import clear_event, raise_event

    pmu_ids = [plan.pmu_ids[i] for i in detection.pmu_indices]
    key = event_key(detection, plan.pmu_ids)
    quantities = _finite(detection.quantities)
    if detection.phase is DetectionPhase.RAISED:
        quantities["detected_at_s"] = detection.detected_time_s
    if detection.phase is DetectionPhase.RAISED or detection.severity > Severity.WARNING:
        # A cleared detection carries the extremes: a worse severity than raised escalates first.
        raise_event(
            kind=detection.kind.value,
            severity=detection.severity.label,
            summary=describe(detection, plan.names),
            started_at=_utc(detection.start_time_s),
            pmu_ids=pmu_ids,
            quantities=quantities,
            dedup_key=key,
            source=SOURCE,
        )
    if detection.phase is DetectionPhase.CLEARED:
        ended_s = detection.end_time_s if detection.end_time_s is not None else detection.detected_time_s
        clear_event(key, ended_at=_utc(ended_s), quantities=quantities)


def clear_left_over(pmu_ids: Sequence[int], before: dt.datetime, at: dt.datetime) -> int:
    """Clear live events on these PMUs left active by an earlier run of the pdc; return how many."""
    from wams.detection.models import Event
    from wams.detection.services import ACTIVE_STATES, clear_event

    wanted = set(pmu_ids)
    stale = Event.objects.filter(
        source=SOURCE, dedup_key__startswith=KEY_PREFIX, state__in=ACTIVE_STATES, created_at__lt=before
    ).prefetch_related("pmus")
    count = 0
    for event in stale:
        if {p.pk for p in event.pmus.all()} <= wanted:
            clear_event(event.dedup_key, ended_at=at, quantities={"cleared_reason": "pdc restarted"})
            count += 1
    return count


def apply_incident(report: IncidentReport, correlation_key: str, event_keys: list[str]) -> None:
    """Write an incident report of the correlator and link the events of its symptoms."""
    from wams.detection.services import record_incident

    record_incident(
        correlation_key=correlation_key,
        change=report.phase.value,
        kind=report.kind.value,
        severity=report.severity,
        started_at=_utc(report.started_s),
        detected_at=_utc(report.detected_s),
        ended_at=_utc(report.ended_s) if report.ended_s is not None else None,
        bus_number=report.location.bus,
        line_name=report.location.line,
        location_method=str(report.location.method),
        figures=report.figures,
        summary=report.summary,
        event_keys=event_keys,
        source=SOURCE,
    )
