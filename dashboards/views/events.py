"""Events and alarms: list, detail with the pre/post window, acknowledge."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from dashboards import access, figures, history, pagedata
from dashboards.access import page
from dashboards.replay import EVENT_POST_S, EVENT_PRE_S, SPEEDS
from wams.detection.faultrecords import fault_record_traces
from wams.detection.models import Event, FaultRecord
from wams.detection.services import EventActionError, acknowledge_event, event_payload, redact_event
from wams.grid.services import user_visibility, visible_pmus

WINDOW_QUANTITIES = ("frequency_hz", "rocof_hz_per_s", "magnitude_pu")
WINDOW_MAX_POINTS = 1500
MAX_ID = 2**63 - 1  # database keys are 64-bit: a larger id names nothing
STATE_FILTERS = {"attention": None, "active": pagedata.ACTIVE_STATES, "all": None}
DEFAULT_STATE = "attention"  # active or not yet acknowledged: what an operator still has to see


def alarm_order(events: QuerySet[Event]) -> QuerySet[Event]:
    """Order events unacknowledged first, then active, then newest."""
    return events.annotate(
        unacked=Case(When(acknowledged_at__isnull=True, then=Value(0)), default=Value(1)),
        inactive=Case(When(state__in=pagedata.ACTIVE_STATES, then=Value(0)), default=Value(1)),
    ).order_by("unacked", "inactive", "-started_at", "-pk")


@page
def event_list(request: HttpRequest) -> HttpResponse:
    """List events unacknowledged and active first, each with its incident; new alarms arrive live."""
    state = request.GET.get("state", DEFAULT_STATE)
    if state not in STATE_FILTERS:
        state = DEFAULT_STATE
    events = access.visible_events(request.user).select_related("incident").prefetch_related("pmus", "substations")
    states = STATE_FILTERS[state]
    if states is not None:
        events = events.filter(state__in=states)
    if state == "attention":
        events = events.filter(Q(state__in=pagedata.ACTIVE_STATES) | Q(acknowledged_at__isnull=True))
    if state != "all":
        events = alarm_order(events)
    severity = request.GET.get("severity", "")
    if severity in Event.Severity.values:
        events = events.filter(severity=severity)
    page_obj = Paginator(events, 50).get_page(request.GET.get("page"))
    visibility = user_visibility(request.user)
    for event in page_obj:  # what the viewer may see of each row (the one redaction rule)
        shown = redact_event(event_payload(event), visibility)
        event.shown_summary = shown["summary"]  # type: ignore[attr-defined]
        event.shown_pmus = [pmu for pmu in event.pmus.all() if pmu.pk in shown["pmu_ids"]]  # type: ignore[attr-defined]
    pmus = list(visible_pmus(request.user))
    config = pagedata.live_config(request.user, pmus, "/ws/live/?topics=alarms")
    config["watch_data"] = False
    context = {
        "page_obj": page_obj,
        "state": state,
        "severity": severity,
        "severities": Event.Severity.choices,
        "can_operate": access.can_operate(request.user),
        "config": config,
    }
    return render(request, "dashboards/event_list.html", context)


class Timed(Protocol):
    """Anything with a start and maybe an end: an event or an incident."""

    started_at: datetime
    ended_at: datetime | None


def window_figures(event: Timed, pmus: list[Any], subject: str = "event") -> tuple[list[dict[str, Any]], str | None]:
    """Return the pre/post figures of an event's (or incident's) PMUs, or an explanation why there are none."""
    if not pmus:
        return [], f"The {subject} names no PMU you may see."
    start = event.started_at - timedelta(seconds=EVENT_PRE_S)
    end = (event.ended_at or event.started_at) + timedelta(seconds=EVENT_POST_S)
    try:
        windows = history.read_windows(pmus, start, end, WINDOW_QUANTITIES, max_points=WINDOW_MAX_POINTS)
    except history.HistoryUnavailable as exc:
        return [], f"History is not available: {exc}."
    if not any(len(window.t_s) for window in windows):
        return [], "The historian holds no samples of this window."
    names = {pmu.pk: pmu.station_name for pmu in pmus}
    marks = [event.started_at.timestamp()] + ([event.ended_at.timestamp()] if event.ended_at else [])
    return [
        {
            "id": f"figure-{quantity}",
            "figure": figures.window_figure(windows, names, quantity, history.QUANTITIES[quantity], marks),
        }
        for quantity in WINDOW_QUANTITIES
    ], None


@page
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    """Show one event: quantities, devices, the window before and after it, acknowledge and replay."""
    if event_id > MAX_ID:
        raise Http404("No such event.")
    event = access.get_visible_event(request.user, event_id)
    pmus = list(visible_pmus(request.user).filter(events=event).select_related("bus"))
    plots, window_note = window_figures(event, pmus)
    visibility = user_visibility(request.user)
    shown = redact_event(event_payload(event), visibility)
    records = FaultRecord.objects.filter(event=event)
    if shown.get("redacted"):  # only records made at substations the viewer may see
        records = records.filter(substation_id__in=shown["substation_ids"])
    record_ids = set(records.values_list("pk", flat=True))
    traces = [t for t in fault_record_traces(event.pk) if t.record_id in record_ids]
    context = {
        "event": event,
        "pmus": pmus,
        "substations": access.visible_substations(request.user).filter(events=event),
        "can_operate": access.can_operate(request.user),
        "window_figures": plots,
        "window_note": window_note,
        "summary": shown["summary"],
        "fault_figures": [{"id": key, "figure": figure} for key, figure in figures.fault_record_figures(traces)],
        "speeds": list(SPEEDS),
        "quantities": sorted(shown["quantities"].items()) if isinstance(shown["quantities"], dict) else [],
    }
    return render(request, "dashboards/event_detail.html", context)


@require_POST
@page
def acknowledge(request: HttpRequest, event_id: int) -> HttpResponse:
    """Acknowledge an event (operators and admins)."""
    if event_id > MAX_ID:
        raise Http404("No such event.")
    event = access.get_visible_event(request.user, event_id)
    if not access.can_operate(request.user):
        raise PermissionDenied("Only operators acknowledge alarms.")
    try:
        event = acknowledge_event(event.pk, request.user)  # type: ignore[arg-type]
    except EventActionError as exc:
        if request.headers.get("Accept", "").startswith("application/json"):
            return JsonResponse({"event_id": event.pk, "error": str(exc)}, status=409)
        messages.warning(request, str(exc))
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"event_id": event.pk, "state": event.state})
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) and target.startswith("/"):
        return HttpResponseRedirect(target)  # a path of this site only, never a view name or another host
    return redirect("dashboards:event", event.pk)
