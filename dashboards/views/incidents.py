"""Incidents: list with filters, the incident page with evidence and plots, acknowledge and shelve."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboards import access, pagedata
from dashboards import incidents as shown
from dashboards.access import page
from dashboards.views.events import MAX_ID, window_figures
from wams.detection.models import Incident
from wams.detection.services import event_payload, redact_event
from wams.grid.services import user_visibility, visible_pmus

STATES = ("current", "active", "ended", "unacknowledged", "all")
SHELVE_HOURS = (1, 2, 4, 8, 12)  # a shelf lasts one shift at most
PAGE_SIZE = 50


def _filtered(request: HttpRequest) -> tuple[list[dict[str, Any]], str, str]:
    """Return the visible incidents matching the kind and state filters, in alarm order."""
    kind = request.GET.get("kind", "")
    state = request.GET.get("state", "current")
    if state not in STATES:
        state = "current"
    incidents = shown.visible_incidents(request.user).select_related("bus__substation", "substation", "line")
    if kind in Incident.Kind.values:
        incidents = incidents.filter(kind=kind)
    else:
        kind = ""
    if state in (Incident.State.ACTIVE, Incident.State.ENDED):
        incidents = incidents.filter(state=state)
    visibility = user_visibility(request.user)
    rows = [shown.shown_incident(incident, visibility) for incident in incidents.order_by("-started_at")[:1000]]
    if state == "current":
        rows = [row for row in rows if shown.is_current(row)]
    elif state == "unacknowledged":
        rows = [row for row in rows if not row["alarm_view"]["acknowledged"]]
    rows.sort(key=shown.order_key)
    return rows, kind, state


@page
def incident_list(request: HttpRequest) -> HttpResponse:
    """List incidents: unacknowledged and active first, then the most severe and newest; live."""
    rows, kind, state = _filtered(request)
    page_obj = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    config = pagedata.live_config(request.user, list(visible_pmus(request.user)), "/ws/live/?topics=alarms")
    config["watch_data"] = False
    context = {
        "page_obj": page_obj,
        "kind": kind,
        "state": state,
        "kinds": Incident.Kind.choices,
        "states": STATES,
        "can_operate": access.can_operate(request.user),
        "config": config,
    }
    return render(request, "dashboards/incident_list.html", context)


@page
def incident_detail(request: HttpRequest, incident_id: int) -> HttpResponse:
    """Show one incident: what, where and how found, figures, state, evidence, the plots before and after."""
    if incident_id > MAX_ID:
        raise Http404("No such incident.")
    incident = shown.get_visible_incident(request.user, incident_id)
    visibility = user_visibility(request.user)
    row = shown.shown_incident(incident, visibility)
    evidence = list(
        access.visible_events(request.user)
        .filter(incident=incident)
        .prefetch_related("pmus", "substations")
        .order_by("started_at", "pk")
    )
    pmus = list(visible_pmus(request.user).filter(events__incident=incident).distinct().select_related("bus"))
    figures, note = window_figures(incident, pmus, subject="incident")
    events = []
    for event in evidence:
        payload = redact_event(event_payload(event), visibility)
        events.append({"event": event, "summary": payload["summary"], "pmus": len(payload["pmu_ids"])})
    figure_rows = [
        {"label": shown.figure_label(name), "value": shown.format_value(value), "name": name}
        for name, value in (row.get("figures") or {}).items()
    ]
    context = {
        "incident": incident,
        "row": row,
        "alarm": row["alarm_view"],
        "figure_rows": figure_rows,
        "events": events,
        "window_figures": figures,
        "window_note": note,
        "can_operate": access.can_operate(request.user),
        "can_acknowledge": shown.service("acknowledge_incident") is not None,
        "can_shelve": shown.service("shelve_incident") is not None,
        "shelve_hours": SHELVE_HOURS,
        "config": {"incident": row, "ws_path": "/ws/live/?topics=alarms", "watch_data": False, "pmus": []},
    }
    return render(request, "dashboards/incident_detail.html", context)


def _answer(request: HttpRequest, incident_id: int, error: str | None = None, status: int = 200) -> HttpResponse:
    """Reply to an incident action: JSON for scripts, a redirect back to the incident page otherwise."""
    if request.headers.get("Accept", "").startswith("application/json"):
        body: dict[str, Any] = {"incident_id": incident_id}
        if error:
            body["error"] = error
        return JsonResponse(body, status=status if error else 200)
    if error:
        messages.warning(request, error)
    return redirect("dashboards:incident", incident_id)


def _operate(request: HttpRequest, incident_id: int) -> Incident:
    """Return the incident an operator acts on (404 when not theirs, 403 for viewers)."""
    if incident_id > MAX_ID:
        raise Http404("No such incident.")
    incident = shown.get_visible_incident(request.user, incident_id)
    if not access.can_operate(request.user):
        raise PermissionDenied("Only operators acknowledge and shelve alarms.")
    return incident


@require_POST
@page
def incident_acknowledge(request: HttpRequest, incident_id: int) -> HttpResponse:
    """Acknowledge an incident's alarm (operators and admins), with an optional comment."""
    incident = _operate(request, incident_id)
    acknowledge = shown.service("acknowledge_incident")
    if acknowledge is None:
        return _answer(request, incident.pk, "Acknowledging incidents is not available yet.", 503)
    comment = request.POST.get("comment", "").strip()[:300]
    try:
        acknowledge(incident.pk, request.user, comment=comment)
    except _action_errors() as exc:  # the service's refusal (already acknowledged, not allowed) says why
        return _refused(request, incident.pk, exc)
    return _answer(request, incident.pk)


@require_POST
@page
def incident_shelve(request: HttpRequest, incident_id: int) -> HttpResponse:
    """Shelve an incident's alarm for some hours with a reason (operators and admins)."""
    incident = _operate(request, incident_id)
    shelve = shown.service("shelve_incident")
    if shelve is None:
        return _answer(request, incident.pk, "Shelving incidents is not available yet.", 503)
    reason = request.POST.get("reason", "").strip()[:300]
    raw_hours = request.POST.get("hours", "")
    if not reason:
        return _answer(request, incident.pk, "Shelving needs a reason.", 400)
    if not raw_hours.isdigit() or int(raw_hours) not in SHELVE_HOURS:
        return _answer(request, incident.pk, f"Shelve for one of {', '.join(map(str, SHELVE_HOURS))} hours.", 400)
    try:
        shelve(incident.pk, request.user, reason=reason, duration_s=int(raw_hours) * 3600.0)
    except _action_errors() as exc:  # the service's refusal says why
        return _refused(request, incident.pk, exc)
    return _answer(request, incident.pk)


def _action_errors() -> tuple[type[Exception], ...]:
    """Return the exceptions with which the detection services refuse an action."""
    error = shown.service("IncidentActionError")
    return (error, ValueError) if isinstance(error, type) and issubclass(error, Exception) else (ValueError,)


def _refused(request: HttpRequest, incident_id: int, exc: Exception) -> HttpResponse:
    """Answer a service's refusal: not found and denied as such, anything else as a conflict saying why."""
    name = type(exc).__name__
    if isinstance(exc, Http404) or name == "IncidentNotFound":
        raise Http404("No such incident.") from exc
    if isinstance(exc, PermissionDenied) or name == "IncidentPermissionDenied":
        raise PermissionDenied(str(exc)) from exc
    return _answer(request, incident_id, str(exc).capitalize() + ".", 409)
