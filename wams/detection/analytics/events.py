"""Pair raised and cleared detections into episodes and group simultaneous ones into events."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from wams.detection.analytics.types import Detection, DetectionKind, DetectionPhase, Severity


@dataclass
class EventSummary:
    """One disturbance of one kind: the places that saw it and its key quantities."""

    kind: DetectionKind
    severity: Severity
    start_time_s: float
    detected_time_s: float
    end_time_s: float | None
    pmu_indices: list[int] = field(default_factory=list)
    quantities: dict[str, float] = field(default_factory=dict)


def _merge_quantity(name: str, old: float, new: float) -> float:
    """Combine one quantity of two places: the worst extreme, else the first seen."""
    if name.endswith(("_min_hz", "_nadir_hz", "_min_pu", "_min_pct")) or name.startswith("current_ratio_min"):
        return min(old, new)
    if "_max" in name or "_peak" in name or "depth" in name or "height" in name:
        return new if abs(new) > abs(old) else old
    return old


def summarize_detections(detections: list[Detection], merge_window_s: float = 1.0) -> list[EventSummary]:
    """Return events: each raised detection closed by its cleared one, same-kind starts merged.

    Detections of one kind whose conditions began within merge_window_s of the event's first
    start are the same disturbance seen at several places.
    """
    episodes: list[Detection] = []
    open_by_key: dict[str, int] = {}
    for det in sorted(detections, key=lambda d: d.detected_time_s):
        if det.phase is DetectionPhase.RAISED and det.key in open_by_key:
            # A later report of a condition still open (e.g. at the end of a record) updates it.
            first = episodes[open_by_key[det.key]]
            episodes[open_by_key[det.key]] = replace(det, detected_time_s=first.detected_time_s)
        elif det.phase is DetectionPhase.RAISED:
            open_by_key[det.key] = len(episodes)
            episodes.append(det)
        elif det.key in open_by_key:
            episodes[open_by_key.pop(det.key)] = det  # the cleared detection carries the extremes
    events: list[EventSummary] = []
    for ep in sorted(episodes, key=lambda d: d.start_time_s):
        end = ep.end_time_s if ep.phase is DetectionPhase.CLEARED else None
        same = [e for e in events if e.kind is ep.kind and ep.start_time_s - e.start_time_s <= merge_window_s]
        if not same:
            events.append(
                EventSummary(
                    kind=ep.kind,
                    severity=ep.severity,
                    start_time_s=ep.start_time_s,
                    detected_time_s=ep.detected_time_s,
                    end_time_s=end,
                    pmu_indices=sorted(set(ep.pmu_indices)),
                    quantities=dict(ep.quantities),
                )
            )
            continue
        event = same[-1]
        event.severity = max(event.severity, ep.severity)
        event.detected_time_s = min(event.detected_time_s, ep.detected_time_s)
        if event.end_time_s is not None:
            event.end_time_s = None if end is None else max(event.end_time_s, end)
        event.pmu_indices = sorted(set(event.pmu_indices) | set(ep.pmu_indices))
        for name, value in ep.quantities.items():
            event.quantities[name] = (
                _merge_quantity(name, event.quantities[name], value) if name in event.quantities else value
            )
    return events
