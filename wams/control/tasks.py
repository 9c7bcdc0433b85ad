"""Periodic control work: lapse old selections, refresh device states from the RTUs."""

from __future__ import annotations

from celery import shared_task

from wams.control.services import poll_device_states, release_lapsed


@shared_task(name="wams.control.expire_selections")
def expire_selections() -> int:
    """Expire selections nobody executed in time and executions that never got an outcome."""
    return release_lapsed()


@shared_task(name="wams.control.poll_device_states")
def poll_device_states_task() -> int:
    """Store the states the RTUs last reported (breaker positions, load blocks, set points)."""
    return poll_device_states()
