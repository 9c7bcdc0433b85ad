"""Fast detectors on synthetic ramps and steps with known crossing times."""

from __future__ import annotations

import numpy as np
import pytest

from tests.detection.helpers import EPOCH_S, RATE_HZ, angles_for, noisy, times
from wams.detection.analytics.fast import (
    AngleSeparationConfig,
    FastDetectorBank,
    FastDetectorConfig,
    FrequencyConfig,
    IslandingConfig,
    LineTripConfig,
)
from wams.detection.analytics.types import (
    STAT_SYNC_ERROR_BIT,
    Detection,
    DetectionKind,
    DetectionPhase,
    Severity,
    Snapshot,
    make_block,
)

FREQ_NOISE_HZ = 0.005
DETECTION_BAR_S = 0.5


def of_kind(
    found: list[Detection], kind: DetectionKind, phase: DetectionPhase = DetectionPhase.RAISED
) -> list[Detection]:
    """Return the detections of one kind and phase."""
    return [d for d in found if d.kind is kind and d.phase is phase]


def ramp_stream(
    rate_hz_per_s: float, start_s: float, floor_hz: float, n_pmu: int = 4, ramp_pmus: tuple[int, ...] = (1,)
):
    """Return t, frequency with a linear ramp from 60 Hz at start_s down to floor_hz on some PMUs."""
    t = times(20.0)
    f = noisy((t.size, n_pmu), 60.0, FREQ_NOISE_HZ)
    ramp = np.clip(-rate_hz_per_s * (t - EPOCH_S - start_s), floor_hz - 60.0, 0.0)
    ramp[t - EPOCH_S < start_s] = 0.0
    for p in ramp_pmus:
        f[:, p] += ramp
    return t, f


def test_under_frequency_is_raised_within_500_ms_of_the_threshold_crossing() -> None:
    t, f = ramp_stream(0.25, start_s=5.0, floor_hz=59.3)
    found = FastDetectorBank(4).update_block(make_block(t, f, voltage_angle_deg=angles_for(f)))
    (det,) = of_kind(found, DetectionKind.UNDER_FREQUENCY)
    crossing_s = EPOCH_S + 5.0 + 0.2 / 0.25  # 59.8 Hz is reached 0.8 s into the ramp
    assert det.pmu_indices == (1,)
    assert abs(det.start_time_s - crossing_s) <= 0.05
    assert 0.0 <= det.detected_time_s - crossing_s <= DETECTION_BAR_S
    assert det.severity is Severity.WARNING  # severity as raised; the ramp reaches the alarm level later
    assert of_kind(found, DetectionKind.UNDER_FREQUENCY, DetectionPhase.CLEARED) == []  # still under at the end


def test_under_frequency_cleared_detection_reports_the_nadir_and_duration() -> None:
    t = times(12.0)
    f = noisy((t.size, 2), 60.0, FREQ_NOISE_HZ)
    dip = (t - EPOCH_S >= 3.0) & (t - EPOCH_S < 6.0)
    f[dip, 0] = 59.62
    found = FastDetectorBank(2).update_block(make_block(t, f, voltage_angle_deg=angles_for(f)))
    (raised,) = of_kind(found, DetectionKind.UNDER_FREQUENCY)
    (cleared,) = of_kind(found, DetectionKind.UNDER_FREQUENCY, DetectionPhase.CLEARED)
    assert raised.severity is Severity.WARNING  # 59.62 Hz: past the warning, short of the alarm level
    assert cleared.key == raised.key
    assert cleared.quantities["frequency_nadir_hz"] == pytest.approx(59.62, abs=0.02)
    assert cleared.quantities["duration_s"] == pytest.approx(3.0, abs=0.05)
    assert cleared.detected_time_s - (EPOCH_S + 6.0) == pytest.approx(1.0, abs=0.05)  # dropout_s


def test_over_frequency_step_is_raised_within_500_ms() -> None:
    t = times(8.0)
    f = noisy((t.size, 3), 50.0, FREQ_NOISE_HZ)
    f[t - EPOCH_S >= 2.0, 2] = 50.3
    bank = FastDetectorBank(3, FastDetectorConfig(nominal_hz=50.0))
    found = bank.update_block(make_block(t, f))
    (det,) = of_kind(found, DetectionKind.OVER_FREQUENCY)
    assert det.pmu_indices == (2,)
    assert 0.0 <= det.detected_time_s - (EPOCH_S + 2.0) <= DETECTION_BAR_S
    assert det.quantities["frequency_peak_hz"] == pytest.approx(50.3, abs=0.02)


def test_per_pmu_thresholds_apply_to_their_own_pmu() -> None:
    t = times(6.0)
    f = noisy((t.size, 2), 60.0, FREQ_NOISE_HZ)
    f[t - EPOCH_S >= 1.0, :] = 59.85  # both PMUs dip 0.15 Hz
    config = FastDetectorConfig(frequency=FrequencyConfig(warning_deviation_hz=[0.1, 0.2]))
    found = FastDetectorBank(2, config).update_block(make_block(t, f))
    assert [d.pmu_indices for d in of_kind(found, DetectionKind.UNDER_FREQUENCY)] == [(0,)]


def test_rocof_ramp_is_raised_within_500_ms_and_reports_the_slope() -> None:
    t, f = ramp_stream(1.0, start_s=4.0, floor_hz=59.0)
    found = FastDetectorBank(4).update_block(make_block(t, f, voltage_angle_deg=angles_for(f)))
    (det,) = of_kind(found, DetectionKind.ROCOF)
    assert det.pmu_indices == (1,)
    # Over the 0.5 s window the mean slope passes 0.2 Hz/s 0.1 s into a 1 Hz/s ramp.
    assert 0.0 <= det.detected_time_s - (EPOCH_S + 4.0) <= DETECTION_BAR_S
    (cleared,) = of_kind(found, DetectionKind.ROCOF, DetectionPhase.CLEARED)
    assert cleared.quantities["rocof_max_hz_per_s"] == pytest.approx(-1.0, abs=0.05)
    assert cleared.severity is Severity.ALARM


def test_snapshot_by_snapshot_equals_one_block() -> None:
    t, f = ramp_stream(1.0, start_s=4.0, floor_hz=59.0)
    block = make_block(t, f, voltage_angle_deg=angles_for(f), voltage_magnitude_pu=np.ones_like(f))
    whole = FastDetectorBank(4).update_block(block)
    bank = FastDetectorBank(4)
    stepped: list[Detection] = []
    for k in range(block.n_time):
        snapshot = Snapshot(
            timestamp_s=float(block.timestamp_s[k]),
            frequency_hz=block.frequency_hz[k],
            rocof_hz_per_s=block.rocof_hz_per_s[k],
            voltage_magnitude_pu=block.voltage_magnitude_pu[k],
            voltage_angle_deg=block.voltage_angle_deg[k],
            stat=block.stat[k],
            present=block.present[k],
        )
        stepped.extend(bank.update(snapshot))
    assert [d.to_dict() for d in whole] == [d.to_dict() for d in stepped]
    assert len(whole) >= 3


def test_voltage_sag_reports_depth_and_duration() -> None:
    t = times(5.0)
    v = noisy((t.size, 3), 1.0, 0.002)
    sag = (t - EPOCH_S >= 1.0) & (t - EPOCH_S < 1.2)
    v[sag, 2] = 0.6
    found = FastDetectorBank(3).update_block(
        make_block(t, noisy((t.size, 3), 60.0, FREQ_NOISE_HZ), voltage_magnitude_pu=v)
    )
    (raised,) = of_kind(found, DetectionKind.VOLTAGE_SAG)
    (cleared,) = of_kind(found, DetectionKind.VOLTAGE_SAG, DetectionPhase.CLEARED)
    assert raised.pmu_indices == (2,)
    assert raised.severity is Severity.ALARM
    assert abs(raised.start_time_s - (EPOCH_S + 1.0)) < 1e-6
    assert cleared.quantities["sag_depth_pu"] == pytest.approx(0.4, abs=1e-9)
    assert cleared.quantities["duration_s"] == pytest.approx(0.2, abs=1.5 / RATE_HZ)


def test_voltage_dip_shorter_than_pickup_is_ignored_and_swell_is_raised() -> None:
    t = times(4.0)
    v = np.ones((t.size, 2))
    v[60:62, 0] = 0.8  # two samples: 33 ms < 50 ms pickup, above the alarm level
    v[120:180, 1] = 1.15
    found = FastDetectorBank(2).update_block(make_block(t, np.full((t.size, 2), 60.0), voltage_magnitude_pu=v))
    assert of_kind(found, DetectionKind.VOLTAGE_SAG) == []
    (swell,) = of_kind(found, DetectionKind.VOLTAGE_SWELL)
    assert swell.pmu_indices == (1,)
    assert swell.severity is Severity.WARNING


def test_a_sag_below_the_alarm_level_raises_on_its_first_frame() -> None:
    """A fault cleared in three cycles dips two frames: the instantaneous element takes it, the pickup would not."""
    t = times(4.0)
    v = np.ones((t.size, 2))
    v[60:62, 0] = 0.5
    found = FastDetectorBank(2).update_block(make_block(t, np.full((t.size, 2), 60.0), voltage_magnitude_pu=v))
    (sag,) = of_kind(found, DetectionKind.VOLTAGE_SAG)
    assert sag.pmu_indices == (0,) and sag.severity is Severity.ALARM
    assert sag.detected_time_s == pytest.approx(t[60])  # no pickup wait
    assert sag.start_time_s == pytest.approx(t[60])


def test_angle_separation_between_a_configured_pair() -> None:
    t = times(8.0)
    angle = np.zeros((t.size, 3))
    angle[:, 0] = np.where(t - EPOCH_S >= 2.0, 40.0, 10.0)  # 40 deg ahead of PMU 2 from 2 s
    config = FastDetectorConfig(angle=AngleSeparationConfig(pairs=[(0, 2), (1, 2)]))
    found = FastDetectorBank(3, config).update_block(make_block(t, np.full((t.size, 3), 60.0), voltage_angle_deg=angle))
    (det,) = of_kind(found, DetectionKind.ANGLE_SEPARATION)
    assert det.pmu_indices == (0, 2)
    assert det.quantities["angle_separation_deg"] == pytest.approx(40.0)
    assert det.severity is Severity.WARNING
    assert 0.0 <= det.detected_time_s - (EPOCH_S + 2.0) <= DETECTION_BAR_S + 1e-6


def test_angle_separation_wraps_around_180_degrees() -> None:
    t = times(3.0)
    angle = np.zeros((t.size, 2))
    angle[:, 0], angle[:, 1] = 175.0, -175.0  # 10 deg apart, not 350
    config = FastDetectorConfig(angle=AngleSeparationConfig(pairs=[(0, 1)], warning_deg=20.0))
    found = FastDetectorBank(2, config).update_block(make_block(t, np.full((t.size, 2), 60.0), voltage_angle_deg=angle))
    assert of_kind(found, DetectionKind.ANGLE_SEPARATION) == []


def test_line_trip_from_current_falling_to_zero() -> None:
    t = times(6.0)
    current = noisy((t.size, 3), 400.0, 2.0)
    current[t - EPOCH_S >= 3.0, 1] = 0.5  # channel 1 (on PMU 2) opens at 3 s
    config = FastDetectorConfig(line_trip=LineTripConfig(current_pmu_index=[0, 2, 2]))
    block = make_block(t, np.full((t.size, 3), 60.0), current_magnitude_a=current)
    found = FastDetectorBank(3, config).update_block(block)
    (det,) = of_kind(found, DetectionKind.LINE_TRIP)
    assert det.pmu_indices == (2,)
    assert det.severity is Severity.ALARM
    assert det.quantities["current_before_a"] == pytest.approx(400.0, abs=10.0)
    assert det.quantities["current_after_a"] == pytest.approx(0.5)
    assert 0.0 <= det.detected_time_s - (EPOCH_S + 3.0) <= DETECTION_BAR_S


def test_line_trip_from_voltage_angle_step_beyond_frequency_rotation() -> None:
    t = times(6.0)
    f = noisy((t.size, 2), 60.05, FREQ_NOISE_HZ)  # 0.05 Hz off nominal: angles rotate 18 deg/s
    angle = angles_for(f) + np.random.default_rng(1).normal(0.0, 0.57, f.shape)
    angle[t - EPOCH_S >= 2.5, 0] += 12.0
    found = FastDetectorBank(2).update_block(make_block(t, f, voltage_angle_deg=(angle + 180.0) % 360.0 - 180.0))
    (det,) = of_kind(found, DetectionKind.LINE_TRIP)
    assert det.pmu_indices == (0,)
    assert det.quantities["angle_step_deg"] == pytest.approx(12.0, abs=2.5)
    assert 0.0 <= det.detected_time_s - (EPOCH_S + 2.5) <= DETECTION_BAR_S


def test_islanding_group_diverging_from_the_grid_is_raised() -> None:
    t = times(10.0)
    f = noisy((t.size, 6), 60.0, FREQ_NOISE_HZ)
    elapsed = t - EPOCH_S
    f[:, 4:] += np.where(elapsed >= 3.0, 0.5 * (elapsed - 3.0), 0.0)[:, None].clip(max=1.0)  # island speeds up
    config = FastDetectorConfig(islanding=IslandingConfig(groups=[[0, 1, 2, 3], [4, 5]]))
    found = FastDetectorBank(6, config).update_block(make_block(t, f))
    (det,) = of_kind(found, DetectionKind.ISLANDING)
    assert det.pmu_indices == (4, 5)
    crossing_s = EPOCH_S + 3.0 + 0.1 / 0.5  # divergence passes 0.1 Hz
    assert 0.0 <= det.detected_time_s - crossing_s <= DETECTION_BAR_S


def test_inter_area_swing_is_not_islanding() -> None:
    t = times(20.0)
    f = noisy((t.size, 4), 60.0, FREQ_NOISE_HZ)
    swing = 0.08 * np.sin(2 * np.pi * 0.4 * (t - EPOCH_S))  # 0.16 Hz peak to peak between areas
    f[:, :2] += swing[:, None]
    f[:, 2:] -= swing[:, None]
    config = FastDetectorConfig(islanding=IslandingConfig(groups=[[0, 1], [2, 3]]))
    found = FastDetectorBank(4, config).update_block(make_block(t, f))
    assert of_kind(found, DetectionKind.ISLANDING) == []


def test_data_quality_sync_loss_invalid_and_stale() -> None:
    t = times(6.0)
    f = np.full((t.size, 3), 60.0)
    stat = np.zeros((t.size, 3), dtype=np.uint16)
    present = np.ones((t.size, 3), dtype=bool)
    stat[60:, 0] = STAT_SYNC_ERROR_BIT
    stat[120:180, 1] = 0x4000  # data error bits 15-14 = 01
    f[120:180, 1] = 0.0  # garbage that must not look like under-frequency
    present[60:200, 2] = False
    found = FastDetectorBank(3).update_block(make_block(t, f, stat=stat, present=present))
    assert [d.pmu_indices for d in of_kind(found, DetectionKind.SYNC_LOSS)] == [(0,)]
    (invalid,) = of_kind(found, DetectionKind.INVALID_DATA)
    assert invalid.pmu_indices == (1,)
    assert invalid.quantities["stat_word"] == 0x4000
    (stale,) = of_kind(found, DetectionKind.STALE_DATA)
    assert stale.pmu_indices == (2,)
    assert stale.detected_time_s - stale.start_time_s == pytest.approx(1.0, abs=1.5 / RATE_HZ)
    assert len(of_kind(found, DetectionKind.STALE_DATA, DetectionPhase.CLEARED)) == 1
    assert of_kind(found, DetectionKind.UNDER_FREQUENCY) == []


def test_quiet_grid_with_measurement_noise_raises_nothing() -> None:
    t = times(60.0)
    f = noisy((t.size, 8), 60.0, FREQ_NOISE_HZ, seed=5)
    angle = angles_for(f) + np.random.default_rng(6).normal(0.0, 0.57, f.shape)
    v = noisy((t.size, 8), 1.0, 0.005, seed=7)
    config = FastDetectorConfig(
        angle=AngleSeparationConfig(pairs=[(0, 1), (2, 3)]),
        islanding=IslandingConfig(groups=[[0, 1, 2, 3], [4, 5, 6, 7]]),
    )
    found = FastDetectorBank(8, config).update_block(
        make_block(t, f, voltage_angle_deg=(angle + 180.0) % 360.0 - 180.0, voltage_magnitude_pu=v)
    )
    assert found == []


def test_out_of_order_timestamps_are_refused() -> None:
    bank = FastDetectorBank(1)
    bank.update_block(make_block([10.0, 11.0], [[60.0], [60.0]]))
    with pytest.raises(ValueError, match="increase"):
        bank.update_block(make_block([11.0], [[60.0]]))
