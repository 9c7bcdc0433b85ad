"""History and replay: decimated plots of a chosen window, downloads, replay through the live views."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse

from dashboards import figures
from dashboards import history as stored
from dashboards.access import page
from dashboards.forms import ExportForm, HistoryForm
from dashboards.replay import MAX_WINDOW_S
from wams.grid.services import visible_pmus
from wams.streaming import stream_pieces

PLOT_MAX_POINTS = 2000


def _replay_links(form: HistoryForm) -> dict[str, str] | None:
    """Return the overview and phasor page URLs that replay the form's window, if short enough."""
    data = form.cleaned_data
    if (data["end"] - data["start"]).total_seconds() > MAX_WINDOW_S:
        return None
    query = urlencode(
        {
            "replay": 1,
            "start": f"{data['start'].timestamp():.3f}",
            "end": f"{data['end'].timestamp():.3f}",
            "speed": data.get("speed") or 1,
            "pmus": ",".join(str(pmu.pk) for pmu in data["pmus"]),
        }
    )
    return {"overview": f"/?{query}", "phasors": f"/phasors/?{query}"}


@page
def history(request: HttpRequest) -> HttpResponse:
    """Plot stored data of the chosen PMUs and window, decimated with min-max bands."""
    pmus = visible_pmus(request.user).order_by("substation__name", "station_name")
    submitted = "pmus" in request.GET
    form = HistoryForm(request.GET if submitted else None, pmus=pmus, initial=HistoryForm.defaults())
    context: dict[str, object] = {"form": form, "figure": None, "note": None, "replay": None, "export": None}
    if submitted and form.is_valid():
        data = form.cleaned_data
        chosen = list(data["pmus"])
        try:
            windows = stored.read_windows(chosen, data["start"], data["end"], [data["quantity"]], PLOT_MAX_POINTS)
        except stored.WindowTooLarge as exc:
            context["note"] = f"This window is too large to plot: {exc}."
        except stored.HistoryUnavailable as exc:
            context["note"] = f"History is not available: {exc}."
        else:
            names = {pmu.pk: pmu.station_name for pmu in chosen}
            title = f"{stored.QUANTITIES[data['quantity']]}, at most {PLOT_MAX_POINTS} points per PMU"
            context["figure"] = figures.window_figure(windows, names, data["quantity"], title)
            if not any(len(window.t_s) for window in windows):
                context["note"] = "No stored samples in this window."
        context["replay"] = _replay_links(form)
        base = {key: request.GET.getlist(key) for key in ("pmus",)} | {
            "start": request.GET["start"],
            "end": request.GET["end"],
        }
        export_url = reverse("dashboards:history_export")
        context["export"] = {
            fmt: export_url + "?" + urlencode({**base, "format": fmt}, doseq=True) for fmt in stored.EXPORT_FORMATS
        }
    return render(request, "dashboards/history.html", context)


@page
def history_export(request: HttpRequest) -> HttpResponseBase:
    """Download raw samples of the chosen PMUs and window as CSV or COMTRADE."""
    form = ExportForm(request.GET, pmus=visible_pmus(request.user))
    if not form.is_valid():
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
    data = form.cleaned_data
    try:
        export = stored.export_window(list(data["pmus"]), data["start"], data["end"], data["format"])
    except stored.EmptyWindow as exc:
        return HttpResponse(f"Nothing to export: {exc}.", status=404, content_type="text/plain")
    except stored.WindowTooLarge as exc:
        return HttpResponse(f"The export is too large: {exc}.", status=400, content_type="text/plain")
    except stored.HistoryUnavailable as exc:
        return HttpResponse(f"History is not available: {exc}", status=503, content_type="text/plain")
    response = stream_pieces(request, export.chunks, export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response
