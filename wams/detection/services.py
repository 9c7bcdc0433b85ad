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
from wams.detection.models import Event, Incident
from wams.grid.models import Bus, Line, Pmu, Substation
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


# --- incidents ---------------------------------------------------------------------------------

# Sent after commit with incident_id=<int> and change=<opened, updated or ended>: alarm lists,
# pages and subscriptions deliver one notification per incident and per state change.
incident_changed = Signal()
INCIDENT_OPENED = "opened"
INCIDENT_UPDATED = "updated"
INCIDENT_ENDED = "ended"


def incident_payload(incident: Incident, event_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """Return the JSON of an incident (the command, pages, API and websockets all use this one)."""
    ids = list(event_ids) if event_ids is not None else sorted(incident.events.values_list("id", flat=True))
    bus = incident.bus.number if incident.bus_id is not None and incident.bus is not None else incident.bus_number
    substation = incident.substation.code if incident.substation_id is not None and incident.substation else None
    line = incident.line.name if incident.line_id is not None and incident.line is not None else incident.line_name
    return {
        "incident_id": incident.pk,
        "kind": incident.kind,
        "severity": incident.severity,
        "state": incident.state,
        "summary": incident.summary,
        "started_at": incident.started_at.isoformat(),
        "detected_at": incident.detected_at.isoformat(),
        "ended_at": incident.ended_at.isoformat() if incident.ended_at else None,
        "location": {"bus": bus, "substation": substation, "line": line or None, "method": incident.location_method},
        "figures": incident.figures,
        "events": ids,
    }


def _announce_incident(incident_id: int, change: str) -> None:
    """Send incident_changed once the transaction commits; a failing receiver is logged, not raised."""

    def send() -> None:
        for receiver, result in incident_changed.send_robust(sender=Incident, incident_id=incident_id, change=change):
            if isinstance(result, Exception):
                logger.error("incident_changed receiver %r failed: %r", receiver, result)

    transaction.on_commit(send)


def _locate(bus_number: int | None, line_name: str | None) -> tuple[Bus | None, Substation | None, Line | None]:
    """Return the grid rows of a located bus and line (and the bus's substation)."""
    bus = Bus.objects.select_related("substation").filter(number=bus_number).first() if bus_number else None
    line = Line.objects.filter(name=line_name).first() if line_name else None
    if bus is None and line is not None:
        bus = line.from_bus
    return bus, (bus.substation if bus is not None else None), line


@transaction.atomic
def record_incident(
    *,
    correlation_key: str,
    change: str,
    kind: str,
    severity: str,
    started_at: dt.datetime,
    detected_at: dt.datetime,
    ended_at: dt.datetime | None = None,
    bus_number: int | None = None,
    line_name: str | None = None,
    location_method: str = "",
    figures: dict[str, Any] | None = None,
    summary: str = "",
    event_keys: Iterable[str] = (),
    source: str = "pdc",
) -> Incident:
    """Open, update or end the incident with this correlation key and link its symptom events to it.

    Events are found by their dedup keys (the newest event of each key); one that already belongs
    to another incident stays there.
    """
    if change not in (INCIDENT_OPENED, INCIDENT_UPDATED, INCIDENT_ENDED):
        raise ValueError(f"unknown incident change {change!r}")
    bus, substation, line = _locate(bus_number, line_name)
    values = {
        "kind": kind,
        "severity": severity,
        "summary": summary[:300],
        "started_at": started_at,
        "detected_at": detected_at,
        "bus": bus,
        "substation": substation,
        "line": line,
        "bus_number": bus_number,
        "line_name": line_name or "",
        "location_method": location_method,
        "figures": figures or {},
        "source": source,
    }
    if change == INCIDENT_ENDED:
        values |= {"state": Incident.State.ENDED, "ended_at": ended_at or detected_at}
    incident = Incident.objects.select_for_update().filter(correlation_key=correlation_key).first()
    if incident is None:
        incident = Incident.objects.create(correlation_key=correlation_key, **values)
    else:
        if change != INCIDENT_ENDED:
            values.pop("detected_at")
        for name, value in values.items():
            setattr(incident, name, value)
        incident.save()
    keys = sorted(set(event_keys))
    if keys:
        newest: dict[str, int] = {}
        for pk, key in (
            Event.objects.filter(dedup_key__in=keys).order_by("created_at", "pk").values_list("pk", "dedup_key")
        ):
            newest[key] = pk
        Event.objects.filter(pk__in=newest.values(), incident__isnull=True).update(incident=incident)
    _announce_incident(incident.pk, change)
    return incident


def incidents_since(since: dt.datetime) -> list[dict[str, Any]]:
    """Return the payloads of the incidents started (or still active) since an instant, oldest first."""
    from django.db.models import Q

    rows = (
        Incident.objects.filter(Q(started_at__gte=since) | Q(state=Incident.State.ACTIVE, detected_at__gte=since))
        .select_related("bus", "substation", "line")
        .prefetch_related("events")
        .order_by("started_at", "pk")
    )
    return [incident_payload(i, sorted(e.pk for e in i.events.all())) for i in rows]
