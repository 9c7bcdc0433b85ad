"""Oscillation monitoring in workers: modes stored in the historian become events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pytest

from tests.api.samples import store_series
from tests.conftest import make_pmu, make_stream
from wams.detection import tasks
from wams.detection.analytics.synthetic import SyntheticMode, ambient, ringdown
from wams.detection.models import Event, OscillationAnalysis
from wams.detection.oscillations import (
    OscillationParams,
    Sighting,
    after_last_gap,
    monitor_oscillations,
    without_forced,
)
from wams.historian.recent import clear_recent_memory

RATE_HZ = 30.0
SHAPE = (1.0, -0.8, 0.3, -0.5)
WELL_DAMPED = [
    SyntheticMode(0.35, 10.0, 1.0, (1.0, 0.8, -0.7, -1.0)),
    SyntheticMode(0.9, 12.0, 0.5, (0.2, -1.0, 0.6, 0.1)),
]

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_recent_window() -> Iterator[None]:
    clear_recent_memory()
    yield
    clear_recent_memory()


def four_pmus() -> list[int]:
    stream = make_stream(reporting_rate_fps=30)
    return [make_pmu(stream=stream).pk for _ in range(4)]


def store(pmu_ids: list[int], end: dt.datetime, angle_deg: np.ndarray, frequency_hz: np.ndarray) -> np.ndarray:
    """Store (n_time, 4) angle/frequency so that the last sample is at `end`; return the times (epoch s)."""
    n = angle_deg.shape[0]
    t_s = end.timestamp() - (n - 1 - np.arange(n)) / RATE_HZ
    wrapped = (angle_deg + 180.0) % 360.0 - 180.0
    for k, pmu_id in enumerate(pmu_ids):
        store_series(pmu_id, t_s, frequency_hz[:, k], wrapped[:, k])
    return t_s


def test_oscillation_task_finds_a_stored_0_6_hz_2_percent_mode_and_raises_an_alarm() -> None:
    pmu_ids = four_pmus()
    rng = np.random.default_rng(4)
    _, a1, f1 = ambient(WELL_DAMPED, 40.0, RATE_HZ, rng)
    _, a2, f2 = ringdown([SyntheticMode(0.6, 2.0, 8.0, SHAPE)], 80.0, RATE_HZ, rng)
    now = dt.datetime.now(tz=dt.UTC)
    t_s = store(pmu_ids, now, np.vstack([a1, a2]), np.vstack([f1, f2]))
    onset_s = t_s[a1.shape[0]]

    tasks.monitor_oscillations.apply()

    (event,) = Event.objects.all()
    assert event.kind == "poorly_damped_oscillation"
    assert event.severity == "alarm"  # 2% is below the 3% alarm level
    assert event.quantities["frequency_hz"] == pytest.approx(0.6, rel=0.02)
    assert event.quantities["damping_pct"] == pytest.approx(2.0, abs=1.0)
    assert abs(event.started_at.timestamp() - onset_s) <= 10.0
    shape = event.quantities["mode_shape"]
    names = {p.pk: p.station_name for p in event.pmus.all()}
    assert set(names) == set(pmu_ids)
    # The shape signs (+, -, +, -): PMUs 0 and 2 swing against PMUs 1 and 3.
    groups = {frozenset(c.split(":")[0] for c in shape[side]) for side in ("swing_together", "swing_against")}
    n = [names[p] for p in pmu_ids]
    assert groups == {frozenset({n[0], n[2]}), frozenset({n[1], n[3]})}

    # The next run sees the same mode: the same event, not a new one.
    again = monitor_oscillations(now=now + dt.timedelta(seconds=1))
    assert again["raised"] == 0 and Event.objects.count() == 1
    # Once no run sees it for 30 s it clears, ending at its last sighting.
    later = monitor_oscillations(now=now + dt.timedelta(seconds=400))
    assert later["cleared"] == 1
    event.refresh_from_db()
    assert event.state == Event.State.CLEARED
    assert event.ended_at is not None and abs((event.ended_at - now).total_seconds() - 1.0) < 0.01


def test_forced_oscillation_in_the_historian_raises_a_forced_oscillation_event() -> None:
    pmu_ids = four_pmus()
    _, angle, frequency = ambient(WELL_DAMPED, 120.0, RATE_HZ, np.random.default_rng(2))
    t = np.arange(angle.shape[0]) / RATE_HZ
    weights = np.array([0.2, 0.3, 1.0, 0.5])  # strongest at the third PMU
    angle = angle + np.outer(np.sin(2 * np.pi * 0.8 * t), weights)
    frequency = frequency + np.outer(2 * np.pi * 0.8 / 360.0 * np.cos(2 * np.pi * 0.8 * t), weights)
    now = dt.datetime.now(tz=dt.UTC)
    store(pmu_ids, now, angle, frequency)

    report = monitor_oscillations(now=now)

    assert report["raised"] == 1
    (event,) = Event.objects.all()
    assert event.kind == "forced_oscillation"
    assert event.quantities["frequency_hz"] == pytest.approx(0.8, abs=0.03)
    source = event.pmus.get(pk=pmu_ids[2]).station_name
    assert event.quantities["source_pmu"] == source


def test_two_minutes_of_well_damped_ambient_data_raise_nothing() -> None:
    pmu_ids = four_pmus()
    _, angle, frequency = ambient(WELL_DAMPED, 120.0, RATE_HZ, np.random.default_rng(21))
    now = dt.datetime.now(tz=dt.UTC)
    store(pmu_ids, now, angle, frequency)
    report = monitor_oscillations(now=now)
    assert report == {"pmus": 4, "sightings": 0, "raised": 0, "cleared": 0}
    assert not Event.objects.exists()


def test_ambient_mode_alarms_only_once_three_analyses_in_a_row_saw_it_poorly_damped() -> None:
    pmu_ids = four_pmus()
    now = dt.datetime.now(tz=dt.UTC)
    mode = {
        "frequency_hz": 0.35,
        "damping_pct": 2.4,
        "severity": "alarm",
        "amplitude": 1.0,
        "pmu_ids": pmu_ids[:2],
    }
    for k, seen in enumerate([True, True]):
        OscillationAnalysis.objects.create(
            analysed_at=now - dt.timedelta(seconds=30 * (2 - k)), window_s=300, n_pmus=4, modes=[mode] if seen else []
        )
    assert monitor_oscillations(now=now - dt.timedelta(seconds=1), pmu_ids=[])["raised"] == 0  # two sightings only
    OscillationAnalysis.objects.create(analysed_at=now, window_s=300, n_pmus=4, modes=[dict(mode, damping_pct=2.1)])
    report = monitor_oscillations(now=now, pmu_ids=[])
    assert report["raised"] == 1
    event = Event.objects.get()
    assert event.kind == "poorly_damped_oscillation" and event.severity == "alarm"
    assert event.quantities["damping_pct"] == pytest.approx(2.1)
    assert event.quantities["analysis"] == "ambient"


def test_only_the_data_after_the_last_outage_of_every_pmu_is_analysed() -> None:
    t = 1_767_225_600.0 + np.arange(300) / 30.0
    frequency = np.full((300, 2), 60.0)
    frequency[100:160] = np.nan  # 2 s with no PMU reporting (a pdc restart)
    frequency[200, 0] = np.nan  # one PMU missing one instant is not an outage
    kept_t, kept_f, kept_a = after_last_gap(t, frequency, frequency.copy())
    assert kept_t[0] == t[160] and kept_f.shape == (140, 2) and kept_a.shape == (140, 2)


def test_a_ringdown_at_the_frequency_of_a_forced_oscillation_is_not_a_poorly_damped_mode() -> None:
    forced = Sighting("forced_oscillation", "warning", 1.25, 0.0, (0,))
    same = Sighting("poorly_damped_oscillation", "alarm", 1.252, 0.0, (0,))
    other = Sighting("poorly_damped_oscillation", "alarm", 0.66, 0.0, (0,))
    assert without_forced([forced, same, other], [], OscillationParams()) == [forced, other]
