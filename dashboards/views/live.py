"""Live pages: overview, phasors, PMU list and detail, substation detail."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from dashboards import access, figures, incidents, pagedata
from dashboards.access import page
from dashboards.history import bus_base_v
from wams.grid.models import Channel, ControllableDevice, Pmu
from wams.grid.services import AnyUser, visible_devices, visible_pmus
from wams.pdc.models import LinkState


def _pmus(user: AnyUser) -> list[Pmu]:
    return list(visible_pmus(user).select_related("bus").order_by("substation__name", "station_name"))


@page
def overview(request: HttpRequest) -> HttpResponse:
    """Show the overview: map, frequency and ROCOF of every PMU, alarms and link summary."""
    pmus = _pmus(request.user)
    config = pagedata.live_config(request.user, pmus, "/ws/live/")
    config["substations"] = pagedata.substation_rows(pmus)
    config["links"] = pagedata.link_rows({pmu.stream_id for pmu in pmus})
    config["alarms"] = pagedata.active_alarms(request.user, {pmu.pk for pmu in pmus}, without_incident=True)
    replaying = "replay" in request.GET
    config["incidents"] = [] if replaying else incidents.incident_rows(request.user)
    config["points_per_s"] = pagedata.overview_points_per_s(len(pmus))
    stored = pagedata.stored_series(
        [] if replaying else pmus, ("frequency_hz", "rocof_hz_per_s"), config["points_per_s"]
    )
    config["figures"] = {
        "map": figures.map_figure(config["substations"]),
        "frequency": figures.frequency_figure(config["pmus"], stored["frequency_hz"]),
        "rocof": figures.rocof_figure(config["pmus"], stored["rocof_hz_per_s"]),
    }
    return render(request, "dashboards/overview.html", {"config": config, "pmus": pmus})


@page
def phasors(request: HttpRequest) -> HttpResponse:
    """Show the phasor diagram against a reference PMU, corridor angles and voltage magnitudes."""
    pmus = _pmus(request.user)
    ids = {pmu.pk for pmu in pmus}
    config = pagedata.live_config(request.user, pmus, "/ws/live/")
    config["corridors"] = pagedata.corridor_rows(ids)
    reference = request.GET.get("ref", "")
    config["reference"] = int(reference) if reference.isdigit() and int(reference) in ids else None
    if config["reference"] is None and pmus:
        config["reference"] = pmus[0].pk
    config["figures"] = {
        "polar": figures.polar_figure(config["pmus"]),
        "corridors": figures.corridor_figure(config["corridors"]),
        "magnitudes": figures.magnitude_figure(config["pmus"]),
    }
    return render(request, "dashboards/phasors.html", {"config": config, "pmus": pmus})


@page
def pmu_list(request: HttpRequest) -> HttpResponse:
    """List the PMUs the user may see with their link state, live."""
    pmus = _pmus(request.user)
    config = pagedata.live_config(request.user, pmus, "/ws/live/")
    config["links"] = pagedata.link_rows({pmu.stream_id for pmu in pmus})
    return render(request, "dashboards/pmu_list.html", {"config": config, "pmus": pmus})


def _device_panel(user: AnyUser, devices: list[ControllableDevice]) -> dict[str, Any]:
    """Return the device-panel context: operators only; each device links to the control app's panel."""
    rows = []
    for device in devices:
        try:
            url: str | None = reverse("control:device", args=[device.pk])
        except NoReverseMatch:
            url = None
        rows.append({"device": device, "url": url})
    return {
        "show_device_panel": access.can_operate(user),
        "devices": rows,
    }


@page
def pmu_detail(request: HttpRequest, pmu_id: int) -> HttpResponse:
    """Show one PMU: every channel, STAT and data quality, link statistics and the path in use."""
    pmu = access.get_visible_pmu(request.user, pmu_id)
    config = pagedata.live_config(request.user, [pmu], f"/ws/pmu/{pmu.pk}/")
    config["links"] = pagedata.link_rows({pmu.stream_id})
    config["base_v"] = bus_base_v(pmu)
    config["alarms"] = [a for a in pagedata.active_alarms(request.user, {pmu.pk}) if pmu.pk in a["pmu_ids"]]
    config["channels"] = [
        {"kind": c.kind, "order": c.order, "name": c.name, "unit": c.unit}
        for c in pmu.channels.order_by("kind", "order")
    ]
    stored = pagedata.stored_series([pmu], ("frequency_hz", "rocof_hz_per_s", "magnitude_pu", "angle_deg"))
    config["figures"] = {
        "frequency": figures.frequency_figure(config["pmus"], stored["frequency_hz"]),
        "rocof": figures.rocof_figure(config["pmus"], stored["rocof_hz_per_s"]),
        "magnitude": figures.live_series(
            config["pmus"], "Bus voltage magnitude", "Voltage magnitude (pu)", stored["magnitude_pu"], tickformat=".3f"
        ),
        "angle": figures.live_series(
            config["pmus"], "Bus voltage angle", "Voltage angle (deg)", stored["angle_deg"], range=[-180, 180]
        ),
    }
    link = LinkState.objects.filter(stream_id=pmu.stream_id).select_related("path").first()
    devices = list(visible_devices(request.user).filter(substation=pmu.substation))
    context = {
        "config": config,
        "pmu": pmu,
        "channels": pmu.channels.select_related("bus", "line").order_by("kind", "order"),
        "paths": pmu.stream.paths.all(),
        "link": link,
        "path_in_use": link.path_id if link is not None else None,
        "events": access.visible_events(request.user).filter(pmus=pmu)[:10],
        "phasor_kind": Channel.Kind.PHASOR,
        **_device_panel(request.user, devices),
    }
    return render(request, "dashboards/pmu_detail.html", context)


@page
def substation_detail(request: HttpRequest, substation_id: int) -> HttpResponse:
    """Show one substation: its PMUs (live link state) and, for operators, its device panel."""
    substation = access.get_visible_substation(request.user, substation_id)
    pmus = [pmu for pmu in _pmus(request.user) if pmu.substation_id == substation.pk]
    config = pagedata.live_config(request.user, pmus, "/ws/live/?pmus=" + ",".join(str(p.pk) for p in pmus))
    config["links"] = pagedata.link_rows({pmu.stream_id for pmu in pmus})
    devices = list(visible_devices(request.user).filter(substation=substation))
    context = {
        "config": config,
        "substation": substation,
        "pmus": pmus,
        "events": access.visible_events(request.user).filter(substations=substation)[:10],
        **_device_panel(request.user, devices),
    }
    return render(request, "dashboards/substation_detail.html", context)
