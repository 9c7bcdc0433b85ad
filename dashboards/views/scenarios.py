"""Scenarios for admins: start one of the running simulator's disturbances from the dashboard."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from dashboards.access import can_administer, page
from wams.simulator.models import SimulatorRequest
from wams.simulator.services import (
    ScenarioRequestError,
    request_scenario,
    scenario_catalogue,
    simulator_status,
)

RECENT_REQUESTS = 10


@page
def scenarios(request: HttpRequest) -> HttpResponse:
    """List the scenarios with their parameters; a post queues one for the running simulator."""
    if not can_administer(request.user):
        raise PermissionDenied("Only admins start scenarios.")
    catalogue = scenario_catalogue()
    if request.method == "POST":
        name = request.POST.get("scenario", "")
        prefix = f"{name}__"
        raw = {key[len(prefix) :]: str(request.POST[key]) for key in request.POST if key.startswith(prefix)}
        try:
            queued = request_scenario(name, raw, requested_by=request.user.get_username())
        except ScenarioRequestError as exc:
            messages.warning(request, str(exc))
            return render(request, "dashboards/scenarios.html", _context(request, catalogue, selected=name), status=400)
        params = ", ".join(f"{k}={v}" for k, v in queued.params.items()) or "defaults"
        messages.info(
            request,
            f"Scenario {queued.scenario} ({params}) queued as request {queued.pk}; the simulator starts it within "
            "a second or two. Incidents follow on the incidents page.",
        )
        return redirect(reverse("dashboards:scenarios") + f"?requested={queued.pk}")
    return render(request, "dashboards/scenarios.html", _context(request, catalogue))


def _context(request: HttpRequest, catalogue: list[dict[str, object]], selected: str = "") -> dict[str, object]:
    requested = request.GET.get("requested", "")
    return {
        "catalogue": catalogue,
        "status": simulator_status(),
        "recent": SimulatorRequest.objects.filter(action=SimulatorRequest.Action.SCENARIO)[:RECENT_REQUESTS],
        "requested": int(requested) if requested.isdigit() else None,
        "selected": selected,
    }
