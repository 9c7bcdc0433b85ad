"""Every change to an event goes through these functions, which also notify browsers on commit."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from wams import live
from wams.detection.models import Event
from wams.grid.models import Pmu, Substation
from wams.grid.services import Visibility

logger = logging.getLogger(__name__)

ACTIVE_STATES = (Event.State.RAISED, Event.State.ACKNOWLEDGED)
SEVERITY_ORDER = [Event.Severity.INFO, Event.Severity.WARNING, Event.Severity.ALARM, Event.Severity.CRITICAL]

# Sent after commit with event_id=<int> and change=<one of CHANGES>; receivers (event-based reporting
# to applications, countermeasures) must be quick and may enqueue work.
event_changed = Signal()
CHANGE_RAISED = "raised"
CHANGE_ESCALATED = "escalated"
CHANGE_ACKNOWLEDGED = "acknowledged"
CHANGE_CLEARED = "cleared"
CHANGES = (CHANGE_RAISED, CHANGE_ESCALATED, CHANGE_ACKNOWLEDGED, CHANGE_CLEARED)


def severity_rank(severity: str) -> int:
    """Return the position of a severity in increasing order of urgency."""
    return SEVERITY_ORDER.index(Event.Severity(severity))


def _announce(event_id: int, change: str) -> None:
    """Send event_changed once the transaction commits; a failing receiver is logged, not raised."""

    def send() -> None:
        for receiver, result in event_changed.send_robust(sender=Event, event_id=event_id, change=change):
            if isinstance(result, Exception):
                logger.error("event_changed receiver %r failed: %r", receiver, result)

    transaction.on_commit(send)


def _schedule_window(event_id: int) -> None:
    """Capture the event's pre/post data window once the transaction commits."""
    from wams.detection.windows import schedule_window_capture

    transaction.on_commit(lambda: schedule_window_capture(event_id))


def epoch_to_datetime(seconds: float) -> dt.datetime:
    """Convert epoch seconds to an aware UTC datetime."""
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def event_payload(event: Event, pmu_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """Return the EVENT_ALARM payload for an event (every PMU: redact it per viewer with `redact_event`)."""
    ids = list(pmu_ids) if pmu_ids is not None else [pmu.pk for pmu in event.pmus.all()]
    return {
        "event_id": event.pk,
        "kind": event.kind,
        "severity": event.severity,
        "state": event.state,
        "summary": event.summary,
        "started_at": event.started_at.isoformat(),
        "ended_at": event.ended_at.isoformat() if event.ended_at else None,
        "pmu_ids": ids,
        "substation_ids": sorted(s.pk for s in event.substations.all()),
        "quantities": event.quantities,
    }


# Quantities that name or point at devices (PMU names, channels, per-PMU mode shapes).
PRIVATE_QUANTITIES = ("mode_shape", "source_pmu", "amplitude_channel")


def generic_summary(kind: str) -> str:
    """Return the summary shown to a viewer who may not see every device of an event."""
    return f"{kind.replace('_', ' ').capitalize()} event (with devices of other organisations)"


def public_quantities(quantities: Any) -> dict[str, Any]:
    """Keep the plain numbers of an event's quantities: no names, lists or per-device maps."""
    if not isinstance(quantities, dict):
        return {}
    return {
        name: value
        for name, value in quantities.items()
        if name not in PRIVATE_QUANTITIES and isinstance(value, int | float) and not isinstance(value, bool)
    }


def redact_event(payload: dict[str, Any], visibility: Visibility) -> dict[str, Any]:
    """Return an event payload as one viewer may see it: the one redaction rule for other organisations.

    Only the viewer's visible PMUs and substations are named; when the event also touches others,
    the summary (which names devices) becomes generic and only plain-number quantities stay.
    """
    pmu_ids = list(payload.get("pmu_ids") or [])
    substation_ids = list(payload.get("substation_ids") or [])
    if visibility.shows_all(pmu_ids, substation_ids):
        return payload
    return {
        **payload,
        "pmu_ids": visibility.visible_pmus(pmu_ids),
        "substation_ids": visibility.visible_substations(substation_ids),
        "summary": generic_summary(str(payload.get("kind", ""))),
        "quantities": public_quantities(payload.get("quantities")),
        "redacted": True,
    }


@transaction.atomic
def raise_event(
    *,
    kind: str,
    severity: str,
    summary: str,
    started_at: dt.datetime,
    pmu_ids: Iterable[int] = (),
    quantities: dict[str, Any] | None = None,
    dedup_key: str | None = None,
    source: str = "pdc",
) -> tuple[Event, bool]:
    """Raise an event, or update the active one with the same key; return it and whether it is new."""
    pmu_ids = sorted(set(pmu_ids))
    key = dedup_key or f"{kind}:{','.join(map(str, pmu_ids))}"
    active = Event.objects.select_for_update().filter(dedup_key=key, state__in=ACTIVE_STATES).first()
    if active is not None:
        active.quantities = {**active.quantities, **(quantities or {})}
        if severity_rank(severity) > severity_rank(active.severity):
            active.severity = severity
            active.summary = summary[:300]
            active.save(update_fields=["quantities", "severity", "summary", "updated_at"])
            live.publish(live.GROUP_ALARMS, live.EVENT_ALARM, event_payload(active))
            _announce(active.pk, CHANGE_ESCALATED)
        else:
            active.save(update_fields=["quantities", "updated_at"])
        return active, False
    event = Event.objects.create(
        kind=kind,
        severity=severity,
        summary=summary[:300],
        started_at=started_at,
        dedup_key=key,
        quantities=quantities or {},
        source=source,
    )
    if pmu_ids:
        event.pmus.set(pmu_ids)
        event.substations.set(Substation.objects.filter(pmus__in=pmu_ids).distinct())
    live.publish(live.GROUP_ALARMS, live.EVENT_ALARM, event_payload(event, pmu_ids))
    _announce(event.pk, CHANGE_RAISED)
    _schedule_window(event.pk)
    return event, True


@transaction.atomic
def clear_event(
    dedup_key: str, ended_at: dt.datetime | None = None, quantities: dict[str, Any] | None = None
) -> Event | None:
    """Clear the active event with this key, if any."""
    event = Event.objects.select_for_update().filter(dedup_key=dedup_key, state__in=ACTIVE_STATES).first()
    if event is None:
        return None
    event.state = Event.State.CLEARED
    event.ended_at = ended_at or timezone.now()
    event.quantities = {**event.quantities, **(quantities or {})}
    event.save(update_fields=["state", "ended_at", "quantities", "updated_at"])
    live.publish(live.GROUP_ALARMS, live.EVENT_ALARM, event_payload(event))
    _announce(event.pk, CHANGE_CLEARED)
    return event


class EventActionError(Exception):
    """An event action that cannot be done; the message says why."""


@transaction.atomic
def acknowledge_event(event_id: int, user: AbstractBaseUser) -> Event:
    """Record that an operator has seen an event."""
    event = Event.objects.select_for_update().filter(pk=event_id).first()
    if event is None:
        raise EventActionError(f"event {event_id} does not exist")
    if event.acknowledged_at is not None:
        raise EventActionError(f"event {event_id} was already acknowledged")
    event.acknowledged_by = user  # type: ignore[assignment]
    event.acknowledged_at = timezone.now()
    if event.state == Event.State.RAISED:
        event.state = Event.State.ACKNOWLEDGED
    event.save(update_fields=["acknowledged_by", "acknowledged_at", "state", "updated_at"])
    live.publish(live.GROUP_ALARMS, live.EVENT_ALARM, event_payload(event))
    _announce(event.pk, CHANGE_ACKNOWLEDGED)
    return event


def pmu_ids_exist(pmu_ids: Iterable[int]) -> list[int]:
    """Return those of the ids that name PMUs."""
    return list(Pmu.objects.filter(pk__in=list(pmu_ids)).values_list("pk", flat=True))


# --- incidents (wams/detection/incidents.py; re-exported: callers import them from here) ------------

from wams.detection.incidents import (  # noqa: E402
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_CHANGES,
    INCIDENT_ENDED,
    INCIDENT_OPENED,
    INCIDENT_SHELVED,
    INCIDENT_UNSHELVED,
    INCIDENT_UPDATED,
    IncidentActionError,
    IncidentNotFound,
    IncidentPermissionDenied,
    acknowledge_incident,
    alarm_list,
    expire_shelves,
    incident_changed,
    incident_payload,
    incident_visible,
    incidents_since,
    order_by_alarm,
    record_incident,
    redact_incident,
    shelve_incident,
    unshelve_incident,
)

__all__ = [
    "INCIDENT_ACKNOWLEDGED",
    "INCIDENT_CHANGES",
    "INCIDENT_ENDED",
    "INCIDENT_OPENED",
    "INCIDENT_SHELVED",
    "INCIDENT_UNSHELVED",
    "INCIDENT_UPDATED",
    "IncidentActionError",
    "IncidentNotFound",
    "IncidentPermissionDenied",
    "acknowledge_incident",
    "alarm_list",
    "expire_shelves",
    "incident_changed",
    "incident_payload",
    "incident_visible",
    "incidents_since",
    "order_by_alarm",
    "record_incident",
    "redact_incident",
    "shelve_incident",
    "unshelve_incident",
]
