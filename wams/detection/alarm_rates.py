"""Alarm-rate figures per operator (EEMUA 191): alarms presented and acknowledged per 10 minutes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from wams.detection.incidents import incident_visible
from wams.detection.models import AlarmAction, Incident
from wams.grid.services import ROLE_ADMIN, ROLE_OPERATOR, user_visibility

BUCKET = dt.timedelta(minutes=10)
#: EEMUA 191: 10 or more alarms in 10 minutes is a flood for one operator.
FLOOD_PER_10_MIN = 10


def _bucket(at: dt.datetime, start: dt.datetime) -> int:
    return int((at - start) / BUCKET)


def _scope(incident: Incident) -> dict[str, Any]:
    """Return the ids an incident touches, for visibility (as its payload names them)."""
    events = list(incident.events.all())
    return {
        "pmu_ids": sorted({p.pk for e in events for p in e.pmus.all()}),
        "substation_ids": sorted(
            {s.pk for e in events for s in e.substations.all()}
            | ({incident.substation_id} if incident.substation_id else set())
        ),
    }


def alarm_rates(since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    """Return per operator and per 10-minute interval the alarms presented (raised, visible to them) and
    acknowledged, with the average and peak per 10 minutes and the count of flood intervals."""
    n = max(1, -(-int((until - since).total_seconds()) // int(BUCKET.total_seconds())))
    actions = AlarmAction.objects.filter(at__gte=since, at__lt=until)
    raised = list(
        actions.filter(action=AlarmAction.Action.RAISED)
        .select_related("incident__substation")
        .prefetch_related("incident__events__pmus", "incident__events__substations")
    )
    scopes = {a.incident_id: _scope(a.incident) for a in raised}
    acks = list(actions.filter(action=AlarmAction.Action.ACKNOWLEDGED, user__isnull=False).values_list("user_id", "at"))
    users = get_user_model().objects.filter(
        Q(is_superuser=True) | Q(groups__name__in=[ROLE_OPERATOR, ROLE_ADMIN]) | Q(pk__in={u for u, _ in acks})
    )
    operators = []
    for user in users.distinct().order_by("username"):
        visibility = user_visibility(user)
        presented = [0] * n
        for action in raised:
            if incident_visible(scopes[action.incident_id], visibility):
                presented[_bucket(action.at, since)] += 1
        acknowledged = [0] * n
        for user_id, at in acks:
            if user_id == user.pk:
                acknowledged[_bucket(at, since)] += 1
        operators.append(
            {
                "user": user.get_username(),
                "presented": sum(presented),
                "acknowledged": sum(acknowledged),
                "presented_per_10min_mean": round(sum(presented) / n, 2),
                "presented_per_10min_peak": max(presented),
                "acknowledged_per_10min_mean": round(sum(acknowledged) / n, 2),
                "acknowledged_per_10min_peak": max(acknowledged),
                "flood_intervals": sum(1 for c in presented if c >= FLOOD_PER_10_MIN),
                "intervals": [
                    {"start": (since + i * BUCKET).isoformat(), "presented": p, "acknowledged": a}
                    for i, (p, a) in enumerate(zip(presented, acknowledged))
                    if p or a
                ],
            }
        )
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "interval_s": int(BUCKET.total_seconds()),
        "n_intervals": n,
        "alarms_raised": len(raised),
        "flood_threshold_per_10min": FLOOD_PER_10_MIN,
        "operators": operators,
    }
