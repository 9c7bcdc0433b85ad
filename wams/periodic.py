"""Run the beat schedule inside the embedded process, where no Celery beat runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

logger = logging.getLogger(__name__)


def load_tasks() -> Any:
    """Return the Celery app with every app's tasks module imported, as a worker does at start."""
    from wams.celery import app

    app.loader.import_default_modules()  # runs the autodiscovery that `app.autodiscover_tasks()` only promised
    return app


async def run_schedule(stop: asyncio.Event, schedule: dict[str, dict[str, Any]] | None = None) -> None:
    """Call every scheduled task in-process at its period until `stop` is set."""
    app = load_tasks()
    schedule = settings.CELERY_BEAT_SCHEDULE if schedule is None else schedule
    loops = [asyncio.create_task(_every(stop, app, name, entry)) for name, entry in schedule.items()]
    try:
        await stop.wait()
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)


async def _every(stop: asyncio.Event, app: Any, name: str, entry: dict[str, Any]) -> None:
    period_s = float(entry["schedule"])
    try:
        task = app.tasks[entry["task"]]
    except KeyError:
        logger.error("periodic task %s: no task named %s", name, entry["task"])
        raise
    args = entry.get("args", ())
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=period_s)
        if stop.is_set():
            return
        try:
            await sync_to_async(task.apply, thread_sensitive=False)(args=args)
        except Exception:
            logger.exception("periodic task %s failed", name)
