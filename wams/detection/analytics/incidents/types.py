"""What the incident correlator reports: kinds, locations, and one report per change of an incident."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class IncidentKind(enum.StrEnum):
    """What disturbance an incident is (the simulator's scenario names)."""

    FAULT = "fault"
    LINE_TRIP = "line_trip"
    GENERATOR_TRIP = "generator_trip"
    LOAD_STEP = "load_step"
    ISLANDING = "islanding"
    ANGLE_SEPARATION = "angle_separation"
    OSCILLATION = "oscillation"
    FORCED_OSCILLATION = "forced_oscillation"
    VOLTAGE_DECLINE = "voltage_decline"


class LocationMethod(enum.StrEnum):
    """How an incident's location was found."""

    VOLTAGE_DIP = "largest_voltage_dip"
    FREQUENCY_WAVE = "first_arrival_of_frequency_wave"
    ANGLE_PATTERN = "angle_step_pattern"
    CURRENT_TRIP = "current_trip"
    FREQUENCY_GROUPS = "frequency_groups"
    MODE_SHAPE = "mode_shape"
    CORRIDOR = "corridor"
    LOWEST_VOLTAGE = "lowest_voltage"


class IncidentPhase(enum.StrEnum):
    """What a report says about its incident."""

    OPENED = "opened"
    UPDATED = "updated"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Location:
    """Where an incident is: a bus and/or a line of the topology, and how that was found."""

    bus: int | None = None
    line: str | None = None
    method: str = ""


@dataclass(frozen=True, slots=True)
class IncidentReport:
    """One incident as it stands: opened, refined or ended; `symptoms` are detection keys folded into it."""

    number: int  # the correlator's running number of the incident
    phase: IncidentPhase
    kind: IncidentKind
    severity: str  # info, warning, alarm, critical
    started_s: float  # epoch seconds of the first symptom's start
    detected_s: float  # epoch seconds of the snapshot that produced this report
    ended_s: float | None
    location: Location
    figures: dict[str, object] = field(default_factory=dict)
    symptoms: tuple[str, ...] = ()
    summary: str = ""
