"""Incidents for applications: scoped and redacted listing, and webhook deliveries per state change.

An incident subscription gets one delivery when an incident it matches is raised, then one when it
ends and one when an operator acknowledges it, and at most one update of its figures every
`INCIDENT_UPDATE_MIN_S` in between - never one per symptom. Deliveries are signed like event ones.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from wams.api.models import Application, Delivery, Subscription
from wams.api.services import application_visibility, record_delivery, subscription_pmu_ids
from wams.detection.incidents import (
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_ENDED,
    INCIDENT_OPENED,
    INCIDENT_UPDATED,
    incident_payload,
    incident_visible,
    redact_incident,
    with_payload_rows,
)
from wams.detection.models import Event, Incident
from wams.detection.services import severity_rank
from wams.grid.services import Visibility

INCIDENT_KINDS = list(Incident.Kind.values)
INCIDENT_UPDATE_MIN_S = 30.0
#: incident_changed change -> delivery change (shelving is the control room's business, not delivered)
DELIVERED = {
    INCIDENT_OPENED: "raised",
    INCIDENT_UPDATED: "updated",
    INCIDENT_ENDED: "ended",
    INCIDENT_ACKNOWLEDGED: "acknowledged",
}
# Payload fields that only serve redaction: applications get the redacted ids, not these maps.
INTERNAL = ("event_pmu_ids", "location_substation_ids")


def application_incidents(application: Application) -> QuerySet[Incident]:
    """Return the incidents an application may see: with a symptom or location of its view, or grid-wide."""
    visibility = application_visibility(application)
    pmus, substations = list(visibility.pmu_ids), list(visibility.substation_ids)
    any_event = Event.objects.filter(incident=OuterRef("pk"))
    seen_event = any_event.filter(Q(pmus__in=pmus) | Q(substations__in=substations))
    grid_wide = ~Exists(any_event) & Q(substation__isnull=True)
    return Incident.objects.filter(Exists(seen_event) | Q(substation__in=substations) | grid_wide)


def incident_json(payload: dict[str, Any], visibility: Visibility) -> dict[str, Any]:
    """Describe an incident to an application: its payload as the organisation may see it."""
    shown = redact_incident(payload, visibility)
    return {"id": shown["incident_id"], **{k: v for k, v in shown.items() if k not in INTERNAL}}


def _wants(subscription: Subscription, incident: Incident) -> bool:
    if subscription.event_kinds and incident.kind not in subscription.event_kinds:
        return False
    try:
        return severity_rank(incident.severity) >= severity_rank(subscription.min_severity)
    except ValueError:
        return True


def _in_scope(subscription: Subscription, payload: dict[str, Any], visibility: Visibility) -> bool:
    """Tell whether the incident is one the subscription covers (its PMUs, or grid-wide)."""
    if not incident_visible(payload, visibility):
        return False
    if not subscription.pmus.exists() or not payload["pmu_ids"]:
        return True
    return bool(set(payload["pmu_ids"]) & subscription_pmu_ids(subscription))


def fan_out_incident(incident_id: int, change: str, now: dt.datetime | None = None) -> int:
    """Create the deliveries of one incident change for the subscriptions it matches; return how many (safe twice)."""
    label = DELIVERED.get(change)
    incident = with_payload_rows(Incident.objects.filter(pk=incident_id)).first()
    if incident is None or label is None:
        return 0
    now = now or timezone.now()
    payload = incident_payload(incident, now=now)
    subscriptions = Subscription.objects.filter(
        kind=Subscription.Kind.INCIDENT, enabled=True, application__enabled=True
    ).select_related("application")
    created = 0
    for subscription in subscriptions:
        visibility = application_visibility(subscription.application)
        if not _in_scope(subscription, payload, visibility):
            continue
        told = Delivery.objects.filter(subscription=subscription, incident=incident)
        if label == "raised":
            if not _wants(subscription, incident):
                continue
        elif not told.filter(change="raised").exists():
            continue  # never told it was raised
        if (
            label == "updated"
            and told.filter(change="updated", created_at__gt=now - dt.timedelta(seconds=INCIDENT_UPDATE_MIN_S)).exists()
        ):
            continue  # figures at most every INCIDENT_UPDATE_MIN_S; the end carries the last ones
        body = {
            "type": "incident",
            "change": label,
            "subscription_id": subscription.pk,
            "created_at": now.isoformat(),
            "incident": incident_json(payload, visibility),
        }
        if record_delivery(
            subscription=subscription, incident=incident, change=label, payload=body, next_attempt_at=now
        ):
            created += 1
    return created


def on_incident_changed(sender: Any, incident_id: int, change: str, **kwargs: Any) -> None:
    """Receive wams.detection.incidents.incident_changed: fan the change out to incident subscriptions."""
    if change not in DELIVERED:
        return
    if settings.CELERY_TASK_ALWAYS_EAGER:
        fan_out_incident(incident_id, change)  # a few queries; deliveries themselves are sent by the sweep
        return
    from wams.api.tasks import fan_out_incident as task

    task.delay(incident_id, change)
