"""What applications may see and what they subscribe to: scoping, subscriptions, reports and fan-out.

An application sees the PMUs of its organisation and those shared with it, and the events on
them (plus grid-wide events, which name no PMU). Event-based subscriptions get a delivery when an
event they match is raised, escalated or cleared; periodic ones get a report every `period_s`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from wams.api import urlguard
from wams.api.models import Application, Delivery, Subscription
from wams.detection.analytics.types import DetectionKind
from wams.detection.models import Event, Incident
from wams.detection.services import (
    CHANGE_CLEARED,
    CHANGE_ESCALATED,
    CHANGE_RAISED,
    event_payload,
    redact_event,
    severity_rank,
)
from wams.grid.models import Pmu
from wams.grid.services import Visibility, organisation_visibility
from wams.historian.query import block_columns, parse_channel
from wams.historian.recent import read_recent

logger = logging.getLogger(__name__)

DEFAULT_QUANTITIES = ["frequency_hz", "rocof_hz_per_s", "phasor_0_magnitude", "phasor_0_angle_deg"]
EVENT_KINDS = sorted({k.value for k in DetectionKind} | {"fault_record"})
MAX_REPORT_PMUS = 500
KEEP_DELIVERIES = dt.timedelta(days=7)


class ApiError(Exception):
    """A request the API refuses: an HTTP status and a message for the application."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- scoping --------------------------------------------------------------------------------


def application_pmus(application: Application) -> QuerySet[Pmu]:
    """Return the PMUs an application may see: its organisation's and those shared with it."""
    org = application.organisation_id
    return Pmu.objects.filter(Q(owner_id=org) | Q(shared_with=org)).distinct()


def visible_pmu_ids(application: Application) -> set[int]:
    """Return the ids of the PMUs an application may see."""
    return set(application_pmus(application).values_list("pk", flat=True))


def subscription_pmu_ids(subscription: Subscription) -> set[int]:
    """Return the PMUs a subscription covers: its selection (or everything) within the application's view."""
    visible = visible_pmu_ids(subscription.application)
    chosen = set(subscription.pmus.values_list("pk", flat=True))
    return chosen & visible if chosen else visible


def application_visibility(application: Application) -> Visibility:
    """Return what an application may see: its organisation's view (the one redaction rule)."""
    return organisation_visibility(application.organisation_id)


def application_events(application: Application) -> QuerySet[Event]:
    """Return the events an application may see: on a visible PMU or substation, or grid-wide (naming none)."""
    visibility = application_visibility(application)
    unscoped = Q(pmus__isnull=True) & Q(substations__isnull=True)
    seen = Q(pmus__in=list(visibility.pmu_ids)) | Q(substations__in=list(visibility.substation_ids))
    return Event.objects.filter(seen | unscoped).distinct()


def event_json(event: Event, visibility: Visibility) -> dict[str, Any]:
    """Describe an event to an application, naming only the PMUs and substations it may see."""
    pmus = list(event.pmus.all())
    shown = redact_event(event_payload(event), visibility)
    codes = {s.pk: s.code for s in event.substations.all()} | {p.substation_id: p.substation.code for p in pmus}
    substation_ids = set(shown["substation_ids"]) | {p.substation_id for p in pmus if p.pk in shown["pmu_ids"]}
    return {
        "id": event.pk,
        "kind": event.kind,
        "severity": event.severity,
        "state": event.state,
        "summary": shown["summary"],
        "started_at": shown["started_at"],
        "ended_at": shown["ended_at"],
        "pmu_ids": sorted(shown["pmu_ids"]),
        "substations": sorted(codes[s] for s in substation_ids if s in codes),
        "quantities": dict(shown["quantities"]),
    }


# --- subscriptions --------------------------------------------------------------------------


def _number(value: Any, name: str, low: float, high: float) -> float:
    """Return a finite number within [low, high], or raise a 400."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f"{name} must be a number")
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low:g} and {high:g}")
    return float(value)


def _strings(value: Any, name: str) -> list[str]:
    """Return a list of strings, or raise a 400."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, f"{name} must be a list of strings")
    return list(dict.fromkeys(value))


def check_webhook_url(url: Any) -> str:
    """Return a webhook URL the guard accepts (http/https, public address or allow-listed), or raise a 400."""
    try:
        return urlguard.check_webhook_url(url).url
    except urlguard.UnsafeUrl as exc:
        raise ApiError(400, str(exc)) from None


def check_pmu_ids(application: Application, value: Any) -> list[int]:
    """Return PMU ids the application may see, or raise (400 bad list, 404 a PMU it may not see)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ApiError(400, "pmus must be a list of PMU ids")
    visible = visible_pmu_ids(application)
    for pmu_id in value:
        if pmu_id not in visible:
            raise ApiError(404, f"no PMU {pmu_id} visible to this application")
    return sorted(set(value))


@transaction.atomic
def create_subscription(application: Application, data: Any) -> tuple[Subscription, str]:
    """Create a subscription from request JSON; return it and its signing secret (shown only now)."""
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    unknown = set(data) - {
        "kind",
        "name",
        "period_s",
        "quantities",
        "event_kinds",
        "min_severity",
        "pmus",
        "webhook_url",
    }
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
    kind = data.get("kind")
    if kind not in Subscription.Kind.values:
        raise ApiError(400, f"kind must be one of {', '.join(Subscription.Kind.values)}")
    limit = int(settings.WAMS_API_MAX_SUBSCRIPTIONS)
    if Subscription.objects.filter(application=application).count() >= limit:
        raise ApiError(400, f"an application holds at most {limit} subscriptions: delete one first")
    pmu_ids = check_pmu_ids(application, data.get("pmus"))
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 100:
        raise ApiError(400, "name must be a string of at most 100 characters")
    fields: dict[str, Any] = {"application": application, "kind": kind, "name": name}
    if kind == Subscription.Kind.PERIODIC:
        fields["period_s"] = _number(data.get("period_s"), "period_s", 1.0, 86_400.0)
        quantities = _strings(data.get("quantities"), "quantities") or list(DEFAULT_QUANTITIES)
        for q in quantities:
            try:
                parse_channel(q)
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
        fields["quantities"] = quantities
    else:
        kinds = _strings(data.get("event_kinds"), "event_kinds")
        known = list(Incident.Kind.values) if kind == Subscription.Kind.INCIDENT else EVENT_KINDS
        bad = [k for k in kinds if k not in known]
        if bad:
            raise ApiError(400, f"unknown {kind} kind(s) {', '.join(bad)}: use {', '.join(known)}")
        severity = data.get("min_severity", Event.Severity.WARNING)
        if severity not in Event.Severity.values:
            raise ApiError(400, f"min_severity must be one of {', '.join(Event.Severity.values)}")
        fields["event_kinds"] = kinds
        fields["min_severity"] = severity
    fields["webhook_url"] = check_webhook_url(data.get("webhook_url"))  # last: it resolves the host
    secret = secrets.token_hex(32)
    subscription = Subscription.objects.create(secret=secret, **fields)
    if pmu_ids:
        subscription.pmus.set(pmu_ids)
    return subscription, secret


def subscription_json(subscription: Subscription) -> dict[str, Any]:
    """Describe a subscription (never its secret)."""
    return {
        "id": subscription.pk,
        "name": subscription.name,
        "kind": subscription.kind,
        "period_s": subscription.period_s,
        "quantities": subscription.quantities,
        "event_kinds": subscription.event_kinds,
        "min_severity": subscription.min_severity,
        "pmus": sorted(subscription.pmus.values_list("pk", flat=True)),
        "webhook_url": subscription.webhook_url,
        "enabled": subscription.enabled,
        "created_at": subscription.created_at.isoformat(),
    }


# --- deliveries -----------------------------------------------------------------------------


def enqueue_delivery(delivery_id: int) -> None:
    """Send a delivery from a worker once the transaction commits (embedded: the 1 s sweep sends it)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # an eager task would send from the caller's thread (often the live detection worker)
    from wams.api.tasks import deliver_webhook

    transaction.on_commit(lambda: deliver_webhook.delay(delivery_id))


def record_delivery(**fields: Any) -> bool:
    """Create a delivery in a savepoint and enqueue it; False when that change was already fanned out
    (the unique delivery per subscription and change) or its subscription was deleted meanwhile."""
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(**fields)
    except IntegrityError:
        return False
    enqueue_delivery(delivery.pk)
    return True


def _wants(subscription: Subscription, event: Event) -> bool:
    """Tell whether an event subscription asks for events of this kind and severity."""
    if subscription.event_kinds and event.kind not in subscription.event_kinds:
        return False
    return severity_rank(event.severity) >= severity_rank(subscription.min_severity)


def fan_out_event(event_id: int, change: str) -> int:
    """Create the deliveries of one event change for the subscriptions it matches; return how many (safe twice)."""
    event = Event.objects.filter(pk=event_id).prefetch_related("pmus__substation", "substations").first()
    if event is None or change not in (CHANGE_RAISED, CHANGE_ESCALATED, CHANGE_CLEARED):
        return 0
    label = f"{CHANGE_ESCALATED}:{event.severity}" if change == CHANGE_ESCALATED else change
    event_pmus = {p.pk for p in event.pmus.all()}
    subscriptions = Subscription.objects.filter(
        kind=Subscription.Kind.EVENT, enabled=True, application__enabled=True
    ).select_related("application")
    now = timezone.now()
    created = 0
    for subscription in subscriptions:
        scope = subscription_pmu_ids(subscription)
        visibility = application_visibility(subscription.application)
        if event_pmus and not event_pmus & scope:
            continue
        told = Delivery.objects.filter(subscription=subscription, event=event).exclude(change=CHANGE_CLEARED)
        if change == CHANGE_CLEARED and not told.exists():
            continue  # never told it was raised
        if change != CHANGE_CLEARED and not _wants(subscription, event):
            continue
        payload = {
            "type": "event",
            "change": change,
            "subscription_id": subscription.pk,
            "created_at": now.isoformat(),
            "event": event_json(event, visibility),
        }
        if record_delivery(subscription=subscription, event=event, change=label, payload=payload, next_attempt_at=now):
            created += 1
    return created


def on_event_changed(sender: Any, event_id: int, change: str, **kwargs: Any) -> None:
    """Receive wams.detection.services.event_changed: fan the change out to subscriptions."""
    if change not in (CHANGE_RAISED, CHANGE_ESCALATED, CHANGE_CLEARED):
        return
    if settings.CELERY_TASK_ALWAYS_EAGER:
        fan_out_event(event_id, change)  # a few queries; deliveries themselves are sent by the sweep
        return
    from wams.api.tasks import fan_out_event as task

    task.delay(event_id, change)


# --- periodic reports -----------------------------------------------------------------------


def _stats(values: np.ndarray) -> dict[str, float | None]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"last": None, "mean": None, "min": None, "max": None}
    last = values[-1]
    return {
        "last": float(last) if math.isfinite(last) else None,
        "mean": float(finite.mean()),
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


def report_rows(
    pmu_ids: Iterable[int], quantities: list[str], period_s: float, now: dt.datetime
) -> list[dict[str, Any]]:
    """Return, per PMU, the last value and the mean/min/max over the last period of each quantity."""
    specs = [parse_channel(q) for q in quantities]
    names = dict(Pmu.objects.filter(pk__in=list(pmu_ids)).values_list("pk", "station_name"))
    rows = []
    for pmu_id in sorted(names)[:MAX_REPORT_PMUS]:
        block = read_recent(pmu_id, seconds=period_s)
        row: dict[str, Any] = {"pmu_id": pmu_id, "station_name": names[pmu_id]}
        if block is None or len(block) == 0:
            rows.append(row | {"t": None, "age_s": None, "n_samples": 0, "values": {}})
            continue
        last_s = int(block.timestamp_us[-1]) / 1e6
        columns = block_columns(block, specs)
        row |= {
            "t": last_s,
            "age_s": round(now.timestamp() - last_s, 3),
            "n_samples": len(block),
            "values": {q: _stats(columns[q]) for q in quantities},
        }
        rows.append(row)
    return rows


def send_due_reports(now: dt.datetime | None = None) -> int:
    """Create the deliveries of every periodic report that is due; return how many."""
    now = now or timezone.now()
    due = Subscription.objects.filter(kind=Subscription.Kind.PERIODIC, enabled=True, application__enabled=True).filter(
        Q(next_due_at__isnull=True) | Q(next_due_at__lte=now)
    )
    sent = 0
    for subscription in due.select_related("application"):
        period = dt.timedelta(seconds=subscription.period_s or 60.0)
        previous = subscription.next_due_at
        following = max(previous + period, now) if previous is not None else now + period
        # Compare-and-set: of two sweeps running at once, one takes the report.
        if not Subscription.objects.filter(pk=subscription.pk, next_due_at=previous).update(next_due_at=following):
            continue
        quantities = list(subscription.quantities or DEFAULT_QUANTITIES)
        payload = {
            "type": "periodic_report",
            "subscription_id": subscription.pk,
            "created_at": now.isoformat(),
            "period_s": subscription.period_s,
            "pmus": report_rows(subscription_pmu_ids(subscription), quantities, period.total_seconds(), now),
        }
        # A subscription deleted meanwhile skips its report, not the sweep.
        if record_delivery(subscription=subscription, change="periodic", payload=payload, next_attempt_at=now):
            sent += 1
    return sent


def prune_deliveries(now: dt.datetime | None = None) -> int:
    """Forget delivered and failed deliveries older than a week; return how many."""
    now = now or timezone.now()
    old = Delivery.objects.filter(
        status__in=[Delivery.Status.DELIVERED, Delivery.Status.FAILED], created_at__lt=now - KEEP_DELIVERIES
    )
    return int(old.delete()[0])
