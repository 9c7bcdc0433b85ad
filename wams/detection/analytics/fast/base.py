"""Turn latch transitions into detections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from wams.detection.analytics.latch import ConditionLatch, Transition
from wams.detection.analytics.types import Detection, DetectionKind, DetectionPhase, FloatArray, Severity


def build_detections(
    kind: DetectionKind,
    transitions: list[Transition],
    pmus_of: Callable[[int], tuple[int, ...]],
    quantities_of: Callable[[Transition], dict[str, float]],
    severity_of: Callable[[Transition], Severity],
    tag: str | Callable[[int], str] = "",
) -> list[Detection]:
    """Return one detection per transition, keyed by kind, tag and place."""
    out: list[Detection] = []
    for tr in transitions:
        pmus = pmus_of(tr.element)
        prefix = tag(tr.element) if callable(tag) else tag
        quantities = quantities_of(tr)
        if tr.phase is DetectionPhase.CLEARED and tr.end_time_s is not None:
            quantities["duration_s"] = tr.end_time_s - tr.start_time_s
        out.append(
            Detection(
                kind=kind,
                phase=tr.phase,
                severity=severity_of(tr),
                pmu_indices=pmus,
                start_time_s=tr.start_time_s,
                detected_time_s=tr.detected_time_s,
                end_time_s=tr.end_time_s,
                quantities=quantities,
                key=f"{kind.value}:{prefix}{'-'.join(str(p) for p in pmus)}",
            )
        )
    return out


def beyond(value: float, limit: FloatArray, element: int, *, below: bool) -> bool:
    """Return True when value is past limit[element] (below it, or above it)."""
    if not np.isfinite(value):
        return False
    return bool(value < limit[element]) if below else bool(value > limit[element])


def severity(alarm: bool) -> Severity:
    """Return ALARM or WARNING."""
    return Severity.ALARM if alarm else Severity.WARNING


def single(element: int) -> tuple[int, ...]:
    """Return the PMU tuple of a per-PMU element."""
    return (element,)


@dataclass(frozen=True)
class Output:
    """How one latch's transitions become detections."""

    latch: ConditionLatch
    kind: DetectionKind
    pmus_of: Callable[[int], tuple[int, ...]]
    quantities_of: Callable[[Transition], dict[str, float]]
    severity_of: Callable[[Transition], Severity]
    tag: str | Callable[[int], str] = ""

    def build(self, transitions: list[Transition]) -> list[Detection]:
        """Return the detections of these transitions."""
        return build_detections(self.kind, transitions, self.pmus_of, self.quantities_of, self.severity_of, self.tag)

    def open(self) -> list[Detection]:
        """Return the conditions raised now, with their extremes so far."""
        return self.build(self.latch.open_transitions())
