"""Event windows: the data around an event is kept whatever happens to the historian afterwards."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.api.samples import steady
from tests.conftest import make_pmu
from wams.detection import tasks
from wams.detection.models import Event, EventWindow
from wams.detection.services import raise_event
from wams.detection.windows import capture_due_windows, capture_window, window_columns, window_samples
from wams.historian.models import Chunk
from wams.historian.recent import clear_recent_memory

pytestmark = pytest.mark.django_db(transaction=True)

START = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _embedded(settings: Any) -> Iterator[None]:
    """Keep the recent window in memory and tasks in-process whatever REDIS_URL says: these tests are about windows."""
    from wams.celery import app

    settings.REDIS_URL, settings.EMBEDDED, settings.CELERY_TASK_ALWAYS_EAGER = None, True, True
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


@pytest.fixture(autouse=True)
def _clean_recent_window() -> Iterator[None]:
    clear_recent_memory()
    yield
    clear_recent_memory()


def raise_at(pmu_id: int, started_at: dt.datetime) -> Event:
    event, _ = raise_event(kind="voltage_sag", severity="alarm", summary="sag", started_at=started_at, pmu_ids=[pmu_id])
    return event


def test_window_keeps_10_s_before_to_30_s_after_even_when_the_historian_data_is_gone() -> None:
    pmu, other = make_pmu(), make_pmu()
    steady(pmu.pk, START - dt.timedelta(seconds=60), 120.0)
    steady(other.pk, START - dt.timedelta(seconds=60), 120.0)
    event = raise_at(pmu.pk, START)

    assert capture_due_windows(now=START + dt.timedelta(seconds=40)) == 1
    Chunk.objects.all().delete()  # e.g. a storage policy ran

    window = EventWindow.objects.get(event=event)
    assert window.complete
    (block,) = window_samples(event.pk).values()  # only the event's PMU
    assert block.pmu_id == pmu.pk
    first_s, last_s = block.timestamp_us[0] / 1e6, block.timestamp_us[-1] / 1e6
    assert first_s == pytest.approx(START.timestamp() - 10.0, abs=1 / 30)
    assert last_s == pytest.approx(START.timestamp() + 30.0, abs=1 / 30)
    assert len(block) == window.n_samples == 40 * 30 + 1
    stamps, columns = window_columns(event.pk, ["frequency_hz", "phasor_0_angle_deg"])[pmu.pk]
    np.testing.assert_allclose(columns["frequency_hz"], 60.0)
    np.testing.assert_allclose(columns["phasor_0_angle_deg"], 10.0, atol=1e-4)
    assert stamps.shape == (len(block),)


def test_a_capture_before_the_post_window_is_partial_and_the_sweep_completes_it_once() -> None:
    pmu = make_pmu()
    steady(pmu.pk, START - dt.timedelta(seconds=20), 25.0)  # data up to 5 s after the start so far
    event = raise_at(pmu.pk, START)
    early = capture_window(event.pk, now=START + dt.timedelta(seconds=5))
    assert early is not None and not early.complete and early.n_samples == 15 * 30

    steady(pmu.pk, START + dt.timedelta(seconds=5), 40.0)
    assert capture_due_windows(now=START + dt.timedelta(seconds=36)) == 1
    whole = EventWindow.objects.get(event=event)
    assert whole.complete and whole.n_samples == 40 * 30 + 1
    # Captured whole: neither the sweep nor the task touches it again.
    assert capture_due_windows(now=START + dt.timedelta(seconds=60)) == 0
    tasks.capture_event_window.apply(args=(event.pk,))
    assert EventWindow.objects.get(event=event).captured_at == whole.captured_at


def test_grid_wide_event_keeps_every_enabled_pmu() -> None:
    pmus = [make_pmu() for _ in range(3)]
    for pmu in pmus:
        steady(pmu.pk, START - dt.timedelta(seconds=15), 50.0)
    event, _ = raise_event(kind="forced_oscillation", severity="warning", summary="0.8 Hz", started_at=START)
    capture_window(event.pk, now=START + dt.timedelta(seconds=60))
    assert sorted(window_samples(event.pk)) == sorted(p.pk for p in pmus)
