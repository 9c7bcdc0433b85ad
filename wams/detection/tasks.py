"""Celery tasks of detection: thin adapters around oscillation monitoring and event windows."""

from __future__ import annotations

import logging

from celery import shared_task

from wams.detection import oscillations, windows

logger = logging.getLogger(__name__)


@shared_task(name="wams.detection.tasks.monitor_oscillations", ignore_result=True)
def monitor_oscillations() -> dict[str, int]:
    """Analyse the recent data for poorly damped and forced oscillations; raise or clear their events."""
    report = oscillations.monitor_oscillations()
    if report["raised"] or report["cleared"]:
        logger.info("oscillations: %s", report)
    return report


@shared_task(name="wams.detection.tasks.capture_event_window", ignore_result=True)
def capture_event_window(event_id: int) -> int:
    """Store an event's pre/post data window (again, if only part was there); return its samples."""
    window = windows.capture_window(event_id)
    return window.n_samples if window is not None else 0


@shared_task(name="wams.detection.tasks.capture_due_windows", ignore_result=True)
def capture_due_windows() -> int:
    """Store the windows of recent events whose post window has passed; return how many."""
    return windows.capture_due_windows()


@shared_task(name="wams.detection.tasks.expire_shelves", ignore_result=True)
def expire_shelves() -> int:
    """Bring back the alarms whose shelf has expired; return how many."""
    from wams.detection.incidents import expire_shelves as expire

    return expire()
