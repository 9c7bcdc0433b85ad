"""Every change to an incident and its alarm goes through these functions, which also notify on commit.

An incident raises one alarm (ISA-18.2 / IEC 62682 / EEMUA 191): notified once, when raised; it
latches until an operator acknowledges it, even after the incident has ended (unacknowledged-active,
acknowledged-active, unacknowledged-returned, normal). A new incident of the same kind at the same
place within the alarm deadband of the last one is a re-raise of it (chattering): its reports update
the earlier incident, which is not notified again. Operators shelve an alarm with a reason and an
expiry: shelved alarms leave the alarm list until the shelf expires (checked on read, and a periodic
task announces it). Each service checks (the user may see the incident and operate), then changes
state, then publishes after commit; every payload is built by `incident_payload` and shown to a
viewer of another organisation through `redact_incident`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.dispatch import Signal
from django.utils import timezone

from wams import live
from wams.detection.models import AlarmAction, DetectorSettings, Event, Incident, IncidentKey
from wams.grid.models import Bus, Line, Substation
from wams.grid.services import ROLE_ADMIN, ROLE_OPERATOR, AnyUser, Visibility, has_role, user_visibility

logger = logging.getLogger(__name__)

# Sent after commit with incident_id=<int> and change=<one of INCIDENT_CHANGES>: pages, the alarm
# list and subscriptions deliver one notification per incident (its raise) and update it after.
incident_changed = Signal()
INCIDENT_OPENED = "opened"
INCIDENT_UPDATED = "updated"
INCIDENT_ENDED = "ended"
INCIDENT_ACKNOWLEDGED = "acknowledged"
INCIDENT_SHELVED = "shelved"
INCIDENT_UNSHELVED = "unshelved"
INCIDENT_CHANGES = (
    INCIDENT_OPENED,
    INCIDENT_UPDATED,
    INCIDENT_ENDED,
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_SHELVED,
    INCIDENT_UNSHELVED,
)
REPORT_CHANGES = (INCIDENT_OPENED, INCIDENT_UPDATED, INCIDENT_ENDED)

DEFAULT_DEADBAND_S = 60.0
MIN_SHELVE_S = 60.0
MAX_SHELVE_S = 12 * 3600.0  # one shift: a shelved alarm always comes back
SEVERITIES = ("info", "warning", "alarm", "critical")
# Figures whose values name devices (or per-device maps): kept from a redacted viewer.
PRIVATE_FIGURES = ("mode_shape", "source_pmu", "island_pmus", "pmus", "source", "faulted_area", "unit")


class IncidentActionError(Exception):
    """An incident action that cannot be done; the message says why."""

    status = 409


class IncidentNotFound(IncidentActionError):
    """No such incident, or one the user may not see (answered alike)."""

    status = 404


class IncidentPermissionDenied(IncidentActionError):
    """The user may see the incident but not act on its alarm."""

    status = 403


# --- payload and redaction ----------------------------------------------------------------------


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def alarm_payload(incident: Incident, now: dt.datetime | None = None) -> dict[str, Any]:
    """Return the alarm part of an incident's payload (shelving as it stands at `now`)."""
    now = now or timezone.now()
    shelved = incident.is_shelved(now)
    return {
        "state": incident.alarm_state,
        "active": incident.state == Incident.State.ACTIVE,
        "acknowledged": incident.acknowledged_at is not None,
        "acknowledged_at": _iso(incident.acknowledged_at),
        "acknowledged_by": _username(incident.acknowledged_by),
        "acknowledge_comment": incident.acknowledge_comment,
        "shelved": shelved,
        "shelved_at": _iso(incident.shelved_at) if shelved else None,
        "shelved_until": _iso(incident.shelved_until) if shelved else None,
        "shelved_by": _username(incident.shelved_by) if shelved else None,
        "shelve_reason": incident.shelve_reason if shelved else "",
        "raised_at": _iso(incident.raised_at),
        "raise_count": incident.raise_count,
    }


def _location_substations(incident: Incident) -> list[int]:
    """Return the substations the location names: its bus's and both ends of its line."""
    ids = {incident.substation_id} if incident.substation_id is not None else set()
    if incident.line_id is not None and incident.line is not None:
        ids |= {incident.line.from_bus.substation_id, incident.line.to_bus.substation_id}
    return sorted(i for i in ids if i is not None)


def incident_payload(
    incident: Incident, event_ids: Sequence[int] | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Return the JSON of an incident (the command, pages, API, webhooks and websockets all use this one).

    It names every PMU and substation the incident touches (`pmu_ids`, `substation_ids`,
    `location_substation_ids`, `event_pmu_ids`): pass it through `redact_incident` for a viewer.
    """
    events = list(incident.events.all())
    ids = list(event_ids) if event_ids is not None else sorted(e.pk for e in events)
    event_pmus = {e.pk: sorted(p.pk for p in e.pmus.all()) for e in events}
    pmu_ids = sorted({p for pmus in event_pmus.values() for p in pmus})
    location_substations = _location_substations(incident)
    substation_ids = sorted({s.pk for e in events for s in e.substations.all()} | set(location_substations))
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
        "pmu_ids": pmu_ids,
        "substation_ids": substation_ids,
        "location_substation_ids": location_substations,
        "event_pmu_ids": {str(k): v for k, v in sorted(event_pmus.items())},
        "alarm": alarm_payload(incident, now),
    }


def incident_visible(payload: dict[str, Any], visibility: Visibility) -> bool:
    """Tell whether a viewer may see an incident at all: one of its devices, or one naming none (grid-wide)."""
    pmu_ids = payload.get("pmu_ids") or []
    substation_ids = payload.get("substation_ids") or []
    if visibility.everything or (not pmu_ids and not substation_ids):
        return True
    return bool(visibility.visible_pmus(pmu_ids) or visibility.visible_substations(substation_ids))


def redact_incident(payload: dict[str, Any], visibility: Visibility) -> dict[str, Any]:
    """Return an incident payload as one viewer may see it: the one redaction rule for other organisations.

    When the incident also touches devices the viewer may not see, only the viewer's PMUs,
    substations and events are named, the location only when all its substations are the viewer's,
    the summary becomes generic, figures keep plain numbers, and no other operator's name or words.
    """
    pmu_ids = list(payload.get("pmu_ids") or [])
    substation_ids = list(payload.get("substation_ids") or [])
    if visibility.shows_all(pmu_ids, substation_ids):
        return payload
    from wams.detection.services import public_quantities

    location = dict(payload.get("location") or {})
    located = list(payload.get("location_substation_ids") or [])
    if not located or not visibility.shows_all([], located):
        location = {"bus": None, "substation": None, "line": None, "method": location.get("method", "")}
    event_pmus = {
        key: visibility.visible_pmus(pmus)
        for key, pmus in (payload.get("event_pmu_ids") or {}).items()
        if not pmus or visibility.visible_pmus(pmus)
    }
    figures = {k: v for k, v in public_quantities(payload.get("figures")).items() if k not in PRIVATE_FIGURES}
    alarm = dict(payload.get("alarm") or {})
    alarm.update(acknowledged_by=None, acknowledge_comment="", shelved_by=None, shelve_reason="")
    kind = str(payload.get("kind", "")).replace("_", " ").capitalize()
    return {
        **payload,
        "summary": f"{kind} (with devices of other organisations)",
        "location": location,
        "figures": figures,
        "events": [pk for pk in payload.get("events") or [] if str(pk) in event_pmus],
        "event_pmu_ids": event_pmus,
        "pmu_ids": visibility.visible_pmus(pmu_ids),
        "substation_ids": visibility.visible_substations(substation_ids),
        "location_substation_ids": visibility.visible_substations(located),
        "alarm": alarm,
        "redacted": True,
    }


def with_payload_rows(rows: QuerySet[Incident]) -> QuerySet[Incident]:
    """Return the query with what `incident_payload` reads fetched in a few queries."""
    return rows.select_related(
        "bus", "substation", "line__from_bus", "line__to_bus", "acknowledged_by", "shelved_by"
    ).prefetch_related("events__pmus", "events__substations")


# --- publishing -----------------------------------------------------------------------------


def _publish(incident: Incident, change: str, notify: bool = False) -> None:
    """Publish the incident to pages and send incident_changed, both once the transaction commits."""
    fresh = with_payload_rows(Incident.objects.filter(pk=incident.pk)).first()
    if fresh is not None:
        live.publish(
            live.GROUP_INCIDENTS, live.EVENT_INCIDENT, {**incident_payload(fresh), "change": change, "notify": notify}
        )
    incident_id = incident.pk

    def send() -> None:
        for receiver, result in incident_changed.send_robust(sender=Incident, incident_id=incident_id, change=change):
            if isinstance(result, Exception):
                logger.error("incident_changed receiver %r failed: %r", receiver, result)

    transaction.on_commit(send)


def _log(incident: Incident, action: str, at: dt.datetime, user: Any = None, comment: str = "") -> None:
    AlarmAction.objects.create(incident=incident, action=action, user=user, at=at, comment=comment[:300])


# --- the correlator's reports ---------------------------------------------------------------


def _locate(bus_number: int | None, line_name: str | None) -> tuple[Bus | None, Substation | None, Line | None]:
    """Return the grid rows of a located bus and line (and the bus's substation)."""
    bus = Bus.objects.select_related("substation").filter(number=bus_number).first() if bus_number else None
    line = Line.objects.filter(name=line_name).first() if line_name else None
    if bus is None and line is not None:
        bus = line.from_bus
    return bus, (bus.substation if bus is not None else None), line


def alarm_key(kind: str, bus_number: int | None, line_name: str | None) -> str:
    """Return what makes two incidents the same alarm: their kind and place."""
    return f"{kind}:{bus_number if bus_number is not None else ''}:{line_name or ''}"


def deadband_s() -> float:
    """Return the alarm deadband of the default detector settings."""
    value = DetectorSettings.objects.filter(group__isnull=True).values_list("alarm_deadband_s", flat=True).first()
    return float(value) if value is not None else DEFAULT_DEADBAND_S


def _find(correlation_key: str) -> tuple[Incident | None, bool]:
    """Return the incident of a correlation key (locked) and whether the key is a re-raise alias."""
    incident = Incident.objects.select_for_update().filter(correlation_key=correlation_key).first()
    if incident is not None:
        return incident, False
    alias = IncidentKey.objects.filter(key=correlation_key).values_list("incident_id", flat=True).first()
    if alias is None:
        return None, False
    return Incident.objects.select_for_update().filter(pk=alias).first(), True


def _reraised(key: str, at: dt.datetime) -> Incident | None:
    """Return the incident a new one with this alarm key re-raises: active, or ended within the deadband."""
    recent = Q(state=Incident.State.ACTIVE) | Q(ended_at__gte=at - dt.timedelta(seconds=deadband_s()))
    return Incident.objects.select_for_update().filter(recent, alarm_key=key).order_by("-started_at").first()


def _link_events(incident: Incident, event_keys: Iterable[str]) -> None:
    """Link the newest event of each dedup key to the incident (one of another incident stays there)."""
    keys = sorted(set(event_keys))
    if not keys:
        return
    newest: dict[str, int] = {}
    for pk, key in Event.objects.filter(dedup_key__in=keys).order_by("created_at", "pk").values_list("pk", "dedup_key"):
        newest[key] = pk
    Event.objects.filter(pk__in=newest.values(), incident__isnull=True).update(incident=incident)


def _worse(a: str, b: str) -> str:
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return a if rank.get(a, 1) >= rank.get(b, 1) else b


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

    A new key whose kind and place match an incident active or ended within the alarm deadband
    re-raises that one (no second notification); its later reports update it.
    """
    if change not in REPORT_CHANGES:
        raise ValueError(f"unknown incident change {change!r}")
    now = timezone.now()
    incident, alias = _find(correlation_key)
    key = alarm_key(kind, bus_number, line_name)
    if incident is None:
        incident = _reraised(key, detected_at)
        if incident is not None:
            IncidentKey.objects.create(key=correlation_key, incident=incident)
            alias = True
            incident.raise_count += 1
            incident.state, incident.ended_at = Incident.State.ACTIVE, None
            _log(incident, AlarmAction.Action.RERAISED, now, comment=correlation_key)
    if incident is not None and alias:
        incident.severity = _worse(severity, incident.severity)
        incident.figures = {**incident.figures, **(figures or {})}
        if change == INCIDENT_ENDED:
            incident.state, incident.ended_at = Incident.State.ENDED, ended_at or detected_at
            _log(incident, AlarmAction.Action.RETURNED, now)
        incident.save()
        _link_events(incident, event_keys)
        _publish(incident, INCIDENT_ENDED if change == INCIDENT_ENDED else INCIDENT_UPDATED)
        return incident
    bus, substation, line = _locate(bus_number, line_name)
    values: dict[str, Any] = {
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
        "alarm_key": key,
    }
    if change == INCIDENT_ENDED:
        values |= {"state": Incident.State.ENDED, "ended_at": ended_at or detected_at}
    notify = incident is None
    if incident is None:
        incident = Incident.objects.create(correlation_key=correlation_key, raised_at=now, **values)
        _log(incident, AlarmAction.Action.RAISED, now)
        announced = INCIDENT_OPENED
    else:
        was_active = incident.state == Incident.State.ACTIVE
        values.pop("detected_at")
        if change == INCIDENT_UPDATED and not was_active:
            # The correlator found the incident goes on (an angle separation after the line trip it began with).
            values |= {"state": Incident.State.ACTIVE, "ended_at": None}
        for name, value in values.items():
            setattr(incident, name, value)
        incident.save()
        if was_active and change == INCIDENT_ENDED:
            _log(incident, AlarmAction.Action.RETURNED, now)
        announced = INCIDENT_ENDED if change == INCIDENT_ENDED else INCIDENT_UPDATED
    _link_events(incident, event_keys)
    _publish(incident, announced, notify=notify)
    return incident


def incidents_since(since: dt.datetime) -> list[dict[str, Any]]:
    """Return the payloads of the incidents started (or still active) since an instant, oldest first."""
    rows = with_payload_rows(
        Incident.objects.filter(Q(started_at__gte=since) | Q(state=Incident.State.ACTIVE, detected_at__gte=since))
    ).order_by("started_at", "pk")
    now = timezone.now()
    return [incident_payload(i, now=now) for i in rows]


# --- operators' actions on alarms -----------------------------------------------------------


def can_operate(user: AnyUser) -> bool:
    """Tell whether a user may acknowledge and shelve alarms (operators and admins)."""
    return has_role(user, ROLE_OPERATOR, ROLE_ADMIN)


def check_incident_action(incident_id: int, user: AnyUser) -> Incident:
    """Return the incident locked for an operator's action, or raise (unseen: not found; viewer: denied)."""
    incident = with_payload_rows(Incident.objects.select_for_update(of=("self",)).filter(pk=incident_id)).first()
    if incident is None or not incident_visible(incident_payload(incident), user_visibility(user)):
        raise IncidentNotFound(f"incident {incident_id} does not exist")
    if not can_operate(user):
        raise IncidentPermissionDenied("only operators acknowledge and shelve alarms")
    return incident


def _comment(text: Any, name: str, required: bool = False) -> str:
    if not isinstance(text, str):
        raise IncidentActionError(f"the {name} must be text")
    text = text.strip()
    if required and not text:
        raise IncidentActionError(f"give a {name}")
    if len(text) > 300:
        raise IncidentActionError(f"the {name} is longer than 300 characters")
    return text


@transaction.atomic
def acknowledge_incident(incident_id: int, user: AnyUser, comment: str = "") -> Incident:
    """Record that an operator has seen an incident's alarm (it returns to normal once also ended)."""
    incident = check_incident_action(incident_id, user)
    comment = _comment(comment, "comment")
    if incident.acknowledged_at is not None:
        raise IncidentActionError(f"incident {incident_id} was already acknowledged")
    now = timezone.now()
    incident.acknowledged_by = user  # type: ignore[assignment]
    incident.acknowledged_at = now
    incident.acknowledge_comment = comment
    incident.save(update_fields=["acknowledged_by", "acknowledged_at", "acknowledge_comment", "updated_at"])
    _log(incident, AlarmAction.Action.ACKNOWLEDGED, now, user, comment)
    _publish(incident, INCIDENT_ACKNOWLEDGED)
    return incident


@transaction.atomic
def shelve_incident(incident_id: int, user: AnyUser, reason: str, duration_s: float) -> Incident:
    """Hide an incident's alarm from the alarm list for a time, with a reason (again: a new expiry)."""
    incident = check_incident_action(incident_id, user)
    reason = _comment(reason, "reason", required=True)
    if (
        isinstance(duration_s, bool)
        or not isinstance(duration_s, int | float)
        or not (MIN_SHELVE_S <= duration_s <= MAX_SHELVE_S)
    ):
        raise IncidentActionError(f"shelve for {MIN_SHELVE_S:g} to {MAX_SHELVE_S:g} s")
    now = timezone.now()
    incident.shelved_by = user  # type: ignore[assignment]
    incident.shelved_at = now
    incident.shelved_until = now + dt.timedelta(seconds=float(duration_s))
    incident.shelve_reason = reason
    incident.save(update_fields=["shelved_by", "shelved_at", "shelved_until", "shelve_reason", "updated_at"])
    _log(incident, AlarmAction.Action.SHELVED, now, user, f"{reason} (until {incident.shelved_until.isoformat()})")
    _publish(incident, INCIDENT_SHELVED)
    return incident


def _unshelve(incident: Incident, now: dt.datetime, user: Any, comment: str) -> None:
    incident.shelved_until = None
    incident.shelved_at = None
    incident.shelved_by = None
    incident.shelve_reason = ""
    incident.save(update_fields=["shelved_by", "shelved_at", "shelved_until", "shelve_reason", "updated_at"])
    _log(incident, AlarmAction.Action.UNSHELVED, now, user, comment)
    _publish(incident, INCIDENT_UNSHELVED)


@transaction.atomic
def unshelve_incident(incident_id: int, user: AnyUser) -> Incident:
    """Put a shelved alarm back on the alarm list before its shelf expires."""
    incident = check_incident_action(incident_id, user)
    now = timezone.now()
    if not incident.is_shelved(now):
        raise IncidentActionError(f"incident {incident_id} is not shelved")
    _unshelve(incident, now, user, "unshelved by an operator")
    return incident


def expire_shelves(now: dt.datetime | None = None) -> int:
    """Bring back every alarm whose shelf has expired and announce it; return how many (safe twice)."""
    now = now or timezone.now()
    count = 0
    for pk in Incident.objects.filter(shelved_until__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            incident = Incident.objects.select_for_update().filter(pk=pk, shelved_until__lte=now).first()
            if incident is not None:
                _unshelve(incident, now, None, "shelf expired")
                count += 1
    return count


# --- the alarm list -------------------------------------------------------------------------


def order_by_alarm(rows: QuerySet[Incident]) -> QuerySet[Incident]:
    """Order incidents as an alarm list: unacknowledged-active, unacknowledged-returned, acknowledged-active,
    normal; then the newest first."""
    rank = Case(
        When(acknowledged_at__isnull=True, state=Incident.State.ACTIVE, then=Value(0)),
        When(acknowledged_at__isnull=True, then=Value(1)),
        When(state=Incident.State.ACTIVE, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    return rows.annotate(alarm_rank=rank).order_by("alarm_rank", "-started_at", "-pk")


def alarm_list(
    visibility: Visibility, now: dt.datetime | None = None, include_shelved: bool = False, limit: int = 200
) -> list[dict[str, Any]]:
    """Return the standing alarms a viewer may see (not normal; shelved ones hidden), redacted, in alarm order."""
    now = now or timezone.now()
    standing = Q(acknowledged_at__isnull=True) | Q(state=Incident.State.ACTIVE)
    rows = Incident.objects.filter(standing)
    if not include_shelved:
        rows = rows.exclude(shelved_until__gt=now)
    out = []
    for incident in with_payload_rows(order_by_alarm(rows)):
        payload = incident_payload(incident, now=now)
        if incident_visible(payload, visibility):
            out.append(redact_incident(payload, visibility))
            if len(out) >= limit:
                break
    return out


# Oscillation incidents ---------------------------------------------------------------------------------
#: Oscillation symptoms starting this soon after a fast disturbance's start are its ringdown.
RINGDOWN_S = 20.0
#: Oscillation symptoms of one kind starting this close together are one oscillation (several modes fitted).
OSCILLATION_GROUP_S = 30.0
DISTURBANCE_KINDS = ("fault", "line_trip", "generator_trip", "load_step", "islanding", "angle_separation")
OSCILLATION_INCIDENT_KIND = {"poorly_damped_oscillation": "oscillation", "forced_oscillation": "forced_oscillation"}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _mode_place(event: Event) -> tuple[int | None, list[int]]:
    """Return the bus where an oscillation is strongest (its amplitude channel's PMU) and its PMUs' buses."""
    pmus = list(event.pmus.select_related("bus"))
    buses = sorted({p.bus.number for p in pmus if p.bus is not None})
    channel = str(event.quantities.get("amplitude_channel") or "")
    station = channel.rsplit(":", 1)[0]
    strongest = next((p for p in pmus if p.station_name == station and p.bus is not None), None)
    return (strongest.bus.number if strongest is not None and strongest.bus else None), buses


def _mode_figures(event: Event) -> dict[str, Any]:
    q = event.quantities
    damping = _number(q.get("damping_min_pct", q.get("damping_pct")))
    return {
        "mode_frequency_hz": round(_number(q.get("frequency_hz")) or 0.0, 4),
        "damping_pct": round(damping, 2) if damping is not None else None,
        "amplitude": _number(q.get("amplitude")),
        "amplitude_channel": q.get("amplitude_channel"),
        "analysis": q.get("analysis", ""),
    }


def record_oscillation(event: Event, *, raised: bool) -> Incident | None:
    """Give an oscillation event of the monitoring workers its incident (or its clearing), once.

    An oscillation (natural or seen as forced) starting within RINGDOWN_S of a fast disturbance, or
    while one is still active, belongs to that incident (its evidence, with the mode in its figures); other oscillation events of one kind starting within
    OSCILLATION_GROUP_S of each other are one oscillation incident, whose headline is the least damped
    mode; the incident ends when its last event has cleared.
    """
    kind = OSCILLATION_INCIDENT_KIND.get(event.kind)
    if kind is None:
        return None
    if not raised:
        incident = event.incident
        if incident is None or incident.kind != kind:
            return incident
        still = Event.objects.filter(incident=incident, state__in=(Event.State.RAISED, Event.State.ACKNOWLEDGED))
        if still.exclude(pk=event.pk).exists():
            return incident
        return record_incident(
            correlation_key=incident.correlation_key,
            change=INCIDENT_ENDED,
            kind=incident.kind,
            severity=incident.severity,
            started_at=incident.started_at,
            detected_at=timezone.now(),
            ended_at=event.ended_at or timezone.now(),
            bus_number=incident.bus_number,
            line_name=incident.line_name or None,
            event_keys=[event.dedup_key],
            source=incident.source,
        )
    if event.incident_id is not None:
        return event.incident
    start = event.started_at
    # Its ringdown after a disturbance, or the swings while one is still active (a pocket slipping).
    just_after = Q(started_at__gte=start - dt.timedelta(seconds=RINGDOWN_S))
    host = (
        Incident.objects.filter(kind__in=DISTURBANCE_KINDS, started_at__lte=start + dt.timedelta(seconds=1))
        .filter(just_after | Q(state=Incident.State.ACTIVE))
        .order_by("-started_at")
        .first()
    )
    if host is not None:
        # The swings after a switching fit a mode, and can show as a spectral line for a while: evidence.
        figures = {"ringdown": _mode_figures(event)}
        Event.objects.filter(pk=event.pk).update(incident=host)
        Incident.objects.filter(pk=host.pk).update(figures={**host.figures, **figures})
        return host
    # A ringing mode can show as a spectral line too, and a forced line can be fitted as a mode: one oscillation.
    sibling = (
        Incident.objects.filter(kind__in=OSCILLATION_INCIDENT_KIND.values(), state=Incident.State.ACTIVE)
        .filter(started_at__gte=start - dt.timedelta(seconds=OSCILLATION_GROUP_S))
        .order_by("-started_at")
        .first()
    )
    bus, buses = _mode_place(event)
    figures = _mode_figures(event) | {"mode_shape_pmu_buses": buses, "source_bus": bus}
    if sibling is not None and sibling.kind != kind:
        Event.objects.filter(pk=event.pk).update(incident=sibling)
        other = "forced_line" if kind == "forced_oscillation" else "fitted_mode"
        Incident.objects.filter(pk=sibling.pk).update(figures={**sibling.figures, other: _mode_figures(event)})
        return sibling
    if sibling is not None:
        best = sibling.figures.get("damping_pct")
        new = figures["damping_pct"]
        keep_new = new is not None and (best is None or new < best)
        merged = ({**sibling.figures, **figures} if keep_new else dict(sibling.figures)) | {
            "modes_fitted": int(sibling.figures.get("modes_fitted", 1)) + 1
        }
        return record_incident(
            correlation_key=sibling.correlation_key,
            change=INCIDENT_UPDATED,
            kind=kind,
            severity=_worse(event.severity, sibling.severity),
            started_at=min(sibling.started_at, start),
            detected_at=timezone.now(),
            bus_number=sibling.bus_number if not keep_new else bus,
            location_method="mode_shape",
            figures=merged,
            summary=sibling.summary if not keep_new else _oscillation_summary(kind, figures),
            event_keys=[event.dedup_key],
            source=event.source,
        )
    return record_incident(
        correlation_key=f"osc:{event.dedup_key}",
        change=INCIDENT_OPENED,
        kind=kind,
        severity=event.severity,
        started_at=start,
        detected_at=event.created_at,
        bus_number=bus,
        location_method="mode_shape",
        figures=figures,
        summary=_oscillation_summary(kind, figures),
        event_keys=[event.dedup_key],
        source=event.source,
    )


def _oscillation_summary(kind: str, figures: dict[str, Any]) -> str:
    name = "Forced oscillation" if kind == "forced_oscillation" else "Poorly damped oscillation"
    damping = figures.get("damping_pct")
    text = f"{name} {figures.get('mode_frequency_hz')} Hz"
    return text + (f", damping {damping} %" if damping is not None and kind == "oscillation" else "")
