"""Device states as the RTUs report them: read for the panel, polled in the background."""

from __future__ import annotations

import logging

from django.utils import timezone

from wams.control.iec104 import get_pool
from wams.control.models import DeviceState
from wams.control.services.audit import publish_progress
from wams.grid.models import ControllableDevice

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"


def known_state(device: ControllableDevice) -> str:
    """Return the last state stored for a device ('unknown' if none)."""
    row = DeviceState.objects.filter(device=device).first()
    return row.state if row is not None else UNKNOWN


def read_device_state(device: ControllableDevice, timeout_s: float = 1.0) -> str:
    """Ask the RTU for a device's state (blocking up to timeout_s); store and publish a change."""
    if device.status_ioa is None:
        return known_state(device)
    try:
        state = get_pool().read_state(
            device.iec104_host, device.iec104_port, device.common_address, device.status_ioa, device.kind, timeout_s
        )
    except (ValueError, ConnectionError) as exc:
        logger.warning("cannot read %s: %s", device, exc)
        state = ""
    if not state:
        return known_state(device)
    _store(device, state)
    return state


def poll_device_states() -> int:
    """Store what every enabled device last reported, without waiting on the RTUs; return how many changed.

    The pooled links stay open and receive spontaneous reports; a link not open yet is connected in
    the background and read on the next poll.
    """
    changed = 0
    pool = get_pool()
    for device in ControllableDevice.objects.filter(enabled=True, status_ioa__isnull=False):
        assert device.status_ioa is not None
        try:
            state = pool.cached_state(
                device.iec104_host, device.iec104_port, device.common_address, device.status_ioa, device.kind
            )
        except (ValueError, ConnectionError) as exc:
            logger.warning("cannot poll %s: %s", device, exc)
            continue
        if state and _store(device, state):
            changed += 1
    return changed


def _store(device: ControllableDevice, state: str) -> bool:
    """Store a reported state and tell browsers when it changed; return whether it did."""
    row, created = DeviceState.objects.get_or_create(
        device=device, defaults={"state": state, "source": "poll", "updated_at": timezone.now()}
    )
    if not created and row.state == state:
        return False
    if not created:
        DeviceState.objects.filter(pk=row.pk).update(state=state, source="poll", updated_at=timezone.now())
    publish_progress(None, "status", f"{device.name} reports {state}", device_id=device.pk, device_state=state)
    return True
