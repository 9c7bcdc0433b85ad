"""Pre/post data windows kept beside events whatever the storage policies do to the historian.

When an event is raised, a task captures its PMUs' samples from `pre_s` before its start to
`post_s` after it (defaults 10 s and 30 s), once the post window has passed. Capture is idempotent:
a window captured early (partial) is captured again, whole, by the periodic sweep.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from wams.detection.models import Event, EventWindow, EventWindowBlock
from wams.grid.models import Pmu
from wams.historian import codec
from wams.historian.blocks import SampleBlock
from wams.historian.query import block_columns, parse_channel, read_samples

logger = logging.getLogger(__name__)

GRACE_S = 5.0  # after the post window ends, for the last samples to reach the recent window
MAX_AGE = dt.timedelta(days=1)  # events older than this are no longer swept for a window


@dataclass(frozen=True)
class WindowSpan:
    """Seconds kept before and after an event's start."""

    pre_s: float
    post_s: float


def window_span() -> WindowSpan:
    """Return the configured pre/post window."""
    return WindowSpan(
        float(getattr(settings, "WAMS_EVENT_WINDOW_PRE_S", 10)),
        float(getattr(settings, "WAMS_EVENT_WINDOW_POST_S", 30)),
    )


def window_bounds(event: Event, span: WindowSpan | None = None) -> tuple[dt.datetime, dt.datetime]:
    """Return the [start, end] of an event's window."""
    span = span or window_span()
    return (
        event.started_at - dt.timedelta(seconds=span.pre_s),
        event.started_at + dt.timedelta(seconds=span.post_s),
    )


def schedule_window_capture(event_id: int) -> None:
    """Enqueue the capture for when the post window has passed (worker mode; embedded relies on the sweep)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # an eager task would run now, before the post window exists: the beat sweep captures it
    from wams.detection.tasks import capture_event_window

    capture_event_window.apply_async((event_id,), countdown=window_span().post_s + GRACE_S)


def _window_pmu_ids(event: Event) -> list[int]:
    """Return the PMUs whose data the window keeps: the event's, or every enabled PMU for grid-wide events."""
    ids = list(event.pmus.values_list("pk", flat=True))
    if ids:
        return sorted(ids)
    return list(Pmu.objects.filter(enabled=True).order_by("pk").values_list("pk", flat=True))


def capture_window(event_id: int, now: dt.datetime | None = None) -> EventWindow | None:
    """Store (or store again) an event's window; return it, or None if the event is gone."""
    now = now or timezone.now()
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return None
    existing = EventWindow.objects.filter(event=event).first()
    if existing is not None and existing.complete:
        return existing
    start, end = window_bounds(event)
    complete = now >= end + dt.timedelta(seconds=GRACE_S)
    compression = str(getattr(settings, "WAMS_HISTORIAN_COMPRESSION", "zstd"))
    rows: list[EventWindowBlock] = []
    for pmu_id in _window_pmu_ids(event):
        block = read_samples(pmu_id, start, end)
        if block is None or len(block) == 0:
            continue
        data = codec.encode_block(block, compression, lossless=True)
        rows.append(EventWindowBlock(pmu_id=pmu_id, n_samples=len(block), size_bytes=len(data), data=data))
    with transaction.atomic():
        # The event row serialises concurrent captures of the same window.
        if not Event.objects.select_for_update().filter(pk=event_id).exists():
            return None
        window, _ = EventWindow.objects.update_or_create(
            event_id=event_id,
            defaults={
                "start_at": start,
                "end_at": end,
                "complete": complete,
                "n_samples": sum(r.n_samples for r in rows),
                "size_bytes": sum(r.size_bytes for r in rows),
            },
        )
        window.blocks.all().delete()
        for row in rows:
            row.window = window
        EventWindowBlock.objects.bulk_create(rows)
    logger.info(
        "event %d: window of %d samples (%s)", event_id, window.n_samples, "complete" if complete else "partial"
    )
    return window


def capture_due_windows(now: dt.datetime | None = None) -> int:
    """Capture every recent event window whose post window has passed and is not stored whole; return how many."""
    now = now or timezone.now()
    span = window_span()
    due = now - dt.timedelta(seconds=span.post_s + GRACE_S)
    ids = list(
        Event.objects.filter(started_at__lte=due, started_at__gte=now - MAX_AGE)
        .exclude(window__complete=True)
        .order_by("started_at")
        .values_list("pk", flat=True)[:50]
    )
    for event_id in ids:
        try:
            capture_window(event_id, now)
        except Exception:  # one event's failure must not starve the others; the next sweep tries again
            logger.exception("event %d: window capture failed", event_id)
    return len(ids)


def window_samples(event_id: int) -> dict[int, SampleBlock]:
    """Return the stored window of an event: PMU id -> its samples (empty when not captured)."""
    blocks = EventWindowBlock.objects.filter(window__event_id=event_id).values_list("pmu_id", "data")
    return {pmu_id: codec.decode_block(bytes(data), pmu_id) for pmu_id, data in blocks}


Columns = tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.float64]]]


def window_columns(event_id: int, channels: list[str]) -> dict[int, Columns]:
    """Return the window's channels (historian names, e.g. frequency_hz) per PMU: (timestamps us, name -> values)."""
    specs = [parse_channel(name) for name in channels]
    return {
        pmu_id: (block.timestamp_us, block_columns(block, specs)) for pmu_id, block in window_samples(event_id).items()
    }
