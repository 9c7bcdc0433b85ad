"""Live detection: snapshots through the pdc hooks into events, off the event loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import make_pmu, make_stream
from tests.detection.helpers import angles_for
from wams.detection.analytics.types import Detection
from wams.detection.live import DetectorPlan, LiveDetection, default_plan, load_plan
from wams.detection.models import DetectorSettings, Event
from wams.detection.services import raise_event
from wams.grid.models import Corridor, DeviceGroup
from wams.pdc import hooks
from wams.pdc.align import Snapshot
from wams.pdc.livefeed import SnapshotView

RATE_HZ = 30.0
EPOCH_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
BAR_S = 0.5


def views(pmu_ids: list[int], frequency_hz: np.ndarray) -> list[SnapshotView]:
    """Return one view per row of (n_time, n_pmu) frequencies, with consistent angles, at RATE_HZ."""
    ids = np.array(pmu_ids, dtype=np.int64)
    angle = angles_for(frequency_hz, rate_hz=RATE_HZ)
    n = len(pmu_ids)
    return [
        SnapshotView(
            timestamp_s=EPOCH_S + k / RATE_HZ,
            pmu_ids=ids,
            present=np.ones(n, dtype=bool),
            frequency_hz=frequency_hz[k],
            rocof_hz_per_s=np.zeros(n),
            voltage_magnitude_pu=np.ones(n),
            voltage_angle_deg=angle[k],
            stat=np.zeros(n, dtype=np.uint16),
            snapshot=Snapshot(round((EPOCH_S + k / RATE_HZ) * 1e6), {}, (), 0.0, 0.0),  # no decoded blocks
        )
        for k in range(frequency_hz.shape[0])
    ]


def dip(n_pmu: int, on: int, seconds: float = 20.0) -> np.ndarray:
    """Return frequencies: 60 Hz with noise; PMU `on` ramps down 0.1 Hz/s from 5 s to 59.7, holds, ramps back from 12 s."""
    t = np.arange(round(seconds * RATE_HZ)) / RATE_HZ
    f = 60.0 + np.random.default_rng(3).normal(0.0, 0.005, (t.size, n_pmu))
    profile = -np.clip(0.1 * (t - 5.0), 0.0, 0.3) + np.clip(0.1 * (t - 12.0), 0.0, 0.3)
    f[:, on] += profile
    return f


def dispatch_all(stream: list[SnapshotView]) -> None:
    """Hand every view to the pdc's snapshot handlers from inside an event loop, as the pdc does."""

    async def run() -> None:
        for view in stream:
            hooks.dispatch(view)

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_under_frequency_on_a_snapshot_stream_raises_one_event_at_measurement_time_and_clears() -> None:
    pmus = [make_pmu() for _ in range(3)]
    ids = [p.pk for p in pmus]
    detector = LiveDetection()
    detector.loaded = load_plan(tuple(ids))
    hooks.register_snapshot_handler(detector)
    try:
        dispatch_all(views(ids, dip(3, on=1)))
        assert detector.drain(20.0)
    finally:
        hooks.unregister_snapshot_handler(detector)
        detector.stop()
    (event,) = Event.objects.all()
    assert event.kind == "under_frequency"
    assert list(event.pmus.values_list("pk", flat=True)) == [ids[1]]
    crossing_s = EPOCH_S + 5.0 + 0.2 / 0.1  # 59.8 Hz is crossed 2 s into the ramp
    assert abs(event.started_at.timestamp() - crossing_s) <= BAR_S
    assert event.state == Event.State.CLEARED
    recovery_s = EPOCH_S + 12.0 + (0.3 - 0.18) / 0.1  # back above 59.82 Hz (threshold plus hysteresis)
    assert event.ended_at is not None and abs(event.ended_at.timestamp() - recovery_s) <= BAR_S
    assert event.quantities["frequency_nadir_hz"] == pytest.approx(59.7, abs=0.02)
    assert event.source == "pdc" and event.dedup_key.startswith("live:under_frequency:")
    assert event.substations.get() == pmus[1].substation


def test_handler_returns_while_the_database_work_is_still_blocked() -> None:
    release = threading.Event()
    entered = threading.Event()
    applied: list[Detection] = []

    def slow_apply(detection: Detection, plan: DetectorPlan) -> None:
        applied.append(detection)
        entered.set()
        release.wait(10.0)

    detector = LiveDetection(plan_loader=default_plan, apply=slow_apply, tidy=None)
    stream = views([11, 12], dip(2, on=0))
    for view in stream:
        detector(view)  # each call returns although the worker is stuck on the first detection
    try:
        assert detector.snapshots == len(stream)
        assert detector.detections == 2  # raised and cleared, both queued
        assert entered.wait(10.0)  # the worker thread picks up the first detection in its own time
        assert len(applied) == 1  # the worker is still inside the first one
    finally:
        release.set()
        assert detector.drain(10.0)
        detector.stop()
    assert [d.phase.value for d in applied] == ["raised", "cleared"]


@pytest.mark.django_db
def test_thresholds_come_from_device_group_settings_and_corridors() -> None:
    stream = make_stream()
    a, b, c = (make_pmu(stream=stream) for _ in range(3))
    c.enabled = False
    c.save()
    group = DeviceGroup.objects.create(name="Sensitive")
    group.pmus.add(a)
    DetectorSettings.objects.create(group=group, frequency_warning_deviation_hz=0.05, frequency_alarm_deviation_hz=0.1)
    DetectorSettings.objects.create(group=None, rocof_window_s=0.25)
    Corridor.objects.create(name="A-B", from_pmu=a, to_pmu=b, angle_limit_deg=40.0)
    plan = load_plan((a.pk, b.pk, c.pk))
    frequency = plan.config.frequency
    np.testing.assert_allclose(np.asarray(frequency.warning_deviation_hz), [0.05, 0.2, 0.2])
    assert np.isinf(np.asarray(frequency.pickup_s)[2])  # a disabled PMU never raises
    assert plan.config.rocof.window_s == 0.25
    assert list(plan.config.angle.pairs) == [(0, 1)]
    np.testing.assert_allclose(np.asarray(plan.config.angle.warning_deg), [32.0])  # 0.8 x the corridor limit
    np.testing.assert_allclose(np.asarray(plan.config.angle.alarm_deg), [40.0])
    assert plan.names == (a.station_name, b.station_name, c.station_name)


@pytest.mark.django_db(transaction=True)
def test_live_events_left_raised_by_an_earlier_run_are_cleared_when_detection_starts() -> None:
    pmu = make_pmu()
    old, _ = raise_event(
        kind="stale_data",
        severity="warning",
        summary="left over",
        started_at=dt.datetime(2025, 12, 31, tzinfo=dt.UTC),
        pmu_ids=[pmu.pk],
        dedup_key=f"live:stale_data:{pmu.pk}",
    )
    detector = LiveDetection()
    flat = 60.0 + np.zeros((30, 1))
    for view in views([pmu.pk], flat):
        detector(view)
    assert detector.drain(10.0)
    detector.stop()
    old.refresh_from_db()
    assert old.state == Event.State.CLEARED
    assert old.quantities["cleared_reason"] == "pdc restarted"
    assert Event.objects.count() == 1


def test_stale_data_is_raised_for_a_pmu_that_stopped_not_for_one_that_never_reported() -> None:
    applied: list[Detection] = []
    detector = LiveDetection(plan_loader=default_plan, apply=lambda d, p: applied.append(d), tidy=None)
    stream = views([21, 22, 23], 60.0 + np.zeros((150, 3)))  # 5 s
    for k, view in enumerate(stream):
        present = np.array([True, k < 60, False])  # PMU 22 stops after 2 s, PMU 23 never reports
        detector(replace(view, present=present, frequency_hz=np.where(present, view.frequency_hz, np.nan)))
    assert detector.drain(10.0)
    detector.stop()
    (stale,) = applied
    assert (stale.kind.value, stale.pmu_indices) == ("stale_data", (1,))
    assert stale.start_time_s == pytest.approx(EPOCH_S + 2.0)


def test_a_failing_correlator_is_logged_and_replaced_and_detection_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    reports: list[object] = []
    detector = LiveDetection(
        plan_loader=default_plan, apply=lambda d, p: None, apply_report=lambda *a: reports.append(a), tidy=None
    )
    stream = views([11, 12], dip(2, on=0))
    detector(stream[0])
    broken = detector.state.correlator
    assert broken is not None

    def fail(*args: object, **kwargs: object) -> list[object]:
        raise ZeroDivisionError("a classification bug")

    broken.update = fail  # type: ignore[method-assign]
    try:
        for view in stream[1:]:
            detector(view)
        assert detector.correlator_failures == 1
        assert detector.state.correlator is not broken  # replaced once, then used for the rest
        assert detector.snapshots == len(stream)
        assert "incident correlator failed" in caplog.text
    finally:
        assert detector.drain(10.0)
        detector.stop()
