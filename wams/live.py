"""The one module that talks to the channel layer: group names, event types, publishing.

Producers (pdc, workers, services) call `publish` / `apublish`; consumers join the groups named
here and forward what arrives.  Sync publishing waits for the surrounding transaction to commit
so browsers never see state that was rolled back.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

# Groups
GROUP_SNAPSHOTS = "wams.snapshots"  # decimated aligned snapshots of every PMU
GROUP_ALARMS = "wams.alarms"  # events raised / acknowledged / cleared
GROUP_LINKS = "wams.links"  # pdc link state and statistics
GROUP_CONTROL = "wams.control"  # command progress and device state
GROUP_INCIDENTS = "wams.incidents"  # incidents and their alarms: raised, changed, acknowledged, shelved


def group_pmu(pmu_id: int) -> str:
    """Return the group carrying one PMU's live data."""
    return f"wams.pmu.{pmu_id}"


# Event types (the consumer method that handles a type is the type with '.' -> '_')
EVENT_SNAPSHOT = "live.snapshot"
EVENT_LINK = "live.link"
EVENT_ALARM = "live.alarm"
EVENT_CONTROL = "live.control"
# An incident's payload (wams.detection.incidents.incident_payload, every device named: redact it per
# viewer) with `change` (opened, updated, ended, acknowledged, shelved, unshelved) and `notify`
# (true once per incident, on its raise: the one alarm notification).
EVENT_INCIDENT = "live.incident"

EVENT_TYPES = (EVENT_SNAPSHOT, EVENT_LINK, EVENT_ALARM, EVENT_CONTROL, EVENT_INCIDENT)


async def apublish(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send one event to a group from async code (no transaction involved)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown live event type {event_type!r}")
    layer = get_channel_layer()
    if layer is None:
        return
    await layer.group_send(group, {"type": event_type, "payload": payload})


def publish(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send one event to a group once the current transaction (if any) commits."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown live event type {event_type!r}")

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, {"type": event_type, "payload": payload})

    transaction.on_commit(send)
