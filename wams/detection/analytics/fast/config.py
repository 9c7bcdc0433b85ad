"""Thresholds and durations of the fast detectors.

Every threshold is a scalar or an array with one entry per element (PMU, pair, group or current
channel), so a caller can give each device group its own values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy.typing as npt

Threshold = float | npt.ArrayLike


@dataclass(frozen=True)
class FrequencyConfig:
    """Under- and over-frequency: deviations from nominal, in Hz."""

    warning_deviation_hz: Threshold = 0.2
    alarm_deviation_hz: Threshold = 0.5
    hysteresis_hz: Threshold = 0.02
    pickup_s: Threshold = 0.1
    dropout_s: Threshold = 1.0


@dataclass(frozen=True)
class RocofConfig:
    """Rate of change of frequency, measured as the frequency slope over window_s.

    Per PMU, the local slope is compared with warning_hz_per_s / alarm_hz_per_s: large local
    ROCOF (an island, a nearby fault).  Grid-wide, the median slope over the PMUs (at least
    grid_min_pmus of them) is compared with grid_warning_hz_per_s / grid_alarm_hz_per_s: a
    generator trip or a large load step moves the frequency of the whole grid at a modest rate
    (about 0.1 Hz/s for 8 % of the load lost in a 6 GW grid, less in larger ones) that a local
    threshold cannot separate from the swings that follow any line switching, while the median
    over the PMUs cancels those swings.  The pickup (0.1 s) ignores the one-or-two-sample
    frequency spikes that PMUs report across a phase jump.
    """

    window_s: float = 0.5
    warning_hz_per_s: Threshold = 0.2
    alarm_hz_per_s: Threshold = 0.5
    hysteresis_hz_per_s: Threshold = 0.05
    pickup_s: Threshold = 0.1
    dropout_s: Threshold = 1.0
    grid_warning_hz_per_s: float = 0.03  # ambient load noise moves the median slope < 0.007 Hz/s (IEEE 39-bus)
    grid_alarm_hz_per_s: float = 0.2
    grid_hysteresis_hz_per_s: float = 0.01
    grid_pickup_s: float = 0.1
    grid_min_pmus: int = 3


@dataclass(frozen=True)
class VoltageConfig:
    """Voltage sag and swell, magnitudes in pu of nominal."""

    sag_warning_pu: Threshold = 0.9
    sag_alarm_pu: Threshold = 0.7
    swell_warning_pu: Threshold = 1.1
    swell_alarm_pu: Threshold = 1.2
    hysteresis_pu: Threshold = 0.02
    pickup_s: Threshold = 0.05
    dropout_s: Threshold = 0.5


@dataclass(frozen=True)
class AngleSeparationConfig:
    """Voltage angle separation between configured PMU pairs (first minus second)."""

    pairs: Sequence[tuple[int, int]] = ()
    warning_deg: Threshold = 30.0
    alarm_deg: Threshold = 45.0
    hysteresis_deg: Threshold = 2.0
    pickup_s: Threshold = 0.5
    dropout_s: Threshold = 2.0


@dataclass(frozen=True)
class LineTripConfig:
    """Step changes in current magnitude or in voltage angle.

    Current channel c belongs to PMU `current_pmu_index[c]` (identity when empty).  A current
    falling below `open_fraction` of its reference, from at least `min_current_a`, is a trip
    (alarm).  The reference is the current `lookback_s` earlier, or, if the PMU's voltage was
    below `min_voltage_pu` then (a fault), the last current measured before the fault (at most
    `reference_max_age_s` old); no trip is read while the voltage is that low, so fault currents
    and their clearing are not taken for line openings, while a line opened to clear a fault
    is.  A relative change above `step_fraction` is a step (warning); it is off by default
    (inf), since after any switching the flows of neighbouring lines redistribute by that much.
    A voltage angle step of `angle_step_deg` beyond the rotation that the frequency explains is
    a step too, unless the voltage was below `min_voltage_pu` within the look-back or the
    `after_sag_s` before it (the phase jumps of a fault and the fast swings after its clearing).
    It cannot tell a line from any other element switched next to the PMU (a generator breaker,
    a large load).  The condition clears `hold_s` after the last step.
    """

    current_pmu_index: Sequence[int] = ()
    lookback_s: float = 0.1
    open_fraction: Threshold = 0.1
    step_fraction: Threshold = math.inf
    min_current_a: Threshold = 10.0
    angle_step_deg: Threshold = 5.0
    min_voltage_pu: Threshold = 0.9
    reference_max_age_s: float = 2.0
    after_sag_s: float = 0.5
    hold_s: Threshold = 2.0


@dataclass(frozen=True)
class IslandingConfig:
    """Frequency divergence of PMU groups from the rest of the grid.

    A group is islanding when its frequency departs from the reference (median of all PMUs,
    or of `reference_group`) by more than `divergence_hz` while the ROCOF difference, over
    `rocof_window_s`, is above `rocof_divergence_hz_per_s` and of the same sign (still diverging).
    It clears when the divergence falls below `divergence_hz - hysteresis_hz`.
    """

    groups: Sequence[Sequence[int]] = ()
    reference_group: int | None = None
    divergence_hz: Threshold = 0.1
    rocof_divergence_hz_per_s: Threshold = 0.05
    rocof_window_s: float = 0.5
    hysteresis_hz: Threshold = 0.03
    alarm_divergence_hz: Threshold = 0.3
    pickup_s: Threshold = 0.2
    dropout_s: Threshold = 2.0


@dataclass(frozen=True)
class DataQualityConfig:
    """Sync loss and invalid data (STAT bits) and missing data (stale)."""

    sync_pickup_s: Threshold = 0.1
    invalid_pickup_s: Threshold = 0.1
    stale_after_s: Threshold = 1.0
    dropout_s: Threshold = 1.0


@dataclass(frozen=True)
class FastDetectorConfig:
    """All fast detectors of one stream."""

    nominal_hz: float = 60.0
    frequency: FrequencyConfig = field(default_factory=FrequencyConfig)
    rocof: RocofConfig = field(default_factory=RocofConfig)
    voltage: VoltageConfig = field(default_factory=VoltageConfig)
    angle: AngleSeparationConfig = field(default_factory=AngleSeparationConfig)
    line_trip: LineTripConfig = field(default_factory=LineTripConfig)
    islanding: IslandingConfig = field(default_factory=IslandingConfig)
    quality: DataQualityConfig = field(default_factory=DataQualityConfig)
