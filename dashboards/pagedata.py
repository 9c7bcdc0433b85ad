"""What a page needs at load time (topology, link states, active alarms) as JSON-ready dicts."""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from dashboards import access, figures, history
from dashboards.consumers import stale_after_s
from wams.detection.models import Event
from wams.detection.services import event_payload, redact_event
from wams.grid.models import Corridor, Pmu
from wams.grid.services import AnyUser, Visibility, user_visibility
from wams.pdc.models import LinkState
from wams.pdc.reports import link_payload

logger = logging.getLogger(__name__)

LIVE_WINDOW_S = 120  # seconds of live history kept on the time-series figures
ACTIVE_STATES = (Event.State.RAISED, Event.State.ACKNOWLEDGED)


def pmu_rows(pmus: list[Pmu]) -> list[dict[str, Any]]:
    """Describe PMUs for the page scripts."""
    return [
        {
            "id": pmu.pk,
            "name": pmu.station_name,
            "substation": pmu.substation.name,
            "substation_id": pmu.substation_id,
            "stream_id": pmu.stream_id,
            "stream": pmu.stream.name,
            "owner": pmu.owner.code,
            "lat": pmu.substation.latitude,
            "lon": pmu.substation.longitude,
            "nominal_hz": pmu.nominal_frequency_hz,
            "url": reverse("dashboards:pmu", args=[pmu.pk]),
        }
        for pmu in pmus
    ]


def substation_rows(pmus: list[Pmu]) -> list[dict[str, Any]]:
    """Describe the substations hosting the PMUs."""
    rows: dict[int, dict[str, Any]] = {}
    for pmu in pmus:
        s = pmu.substation
        row = rows.setdefault(
            s.pk,
            {
                "id": s.pk,
                "name": s.name,
                "code": s.code,
                "lat": s.latitude,
                "lon": s.longitude,
                "pmu_ids": [],
                "url": reverse("dashboards:substation", args=[s.pk]),
            },
        )
        row["pmu_ids"].append(pmu.pk)
    return sorted(rows.values(), key=lambda row: row["name"])


def link_rows(stream_ids: set[int]) -> dict[str, dict[str, Any]]:
    """Return the stored link state of the streams, keyed by stream id, in the live EVENT_LINK shape."""
    links = LinkState.objects.filter(stream_id__in=stream_ids).select_related("stream", "path")
    return {str(link.stream_id): link_payload(link.report()) for link in links}


def alarm_row(event: Event, visible_pmu_ids: set[int], visibility: Visibility) -> dict[str, Any]:
    """Describe one event in the live EVENT_ALARM shape as the viewer may see it, naming only `visible_pmu_ids`."""
    payload = redact_event(event_payload(event), visibility)
    return {
        **payload,
        "pmu_ids": [pmu_id for pmu_id in payload["pmu_ids"] if pmu_id in visible_pmu_ids],
        "url": reverse("dashboards:event", args=[event.pk]),
    }


def active_alarms(
    user: AnyUser, visible_pmu_ids: set[int], limit: int = 50, *, without_incident: bool = False
) -> list[dict[str, Any]]:
    """Return the user's raised or acknowledged events, newest first (those of no incident, if asked)."""
    events = access.visible_events(user).filter(state__in=ACTIVE_STATES).prefetch_related("pmus", "substations")
    if without_incident:  # an incident's symptoms are shown as its one row
        events = events.filter(incident__isnull=True)
    visibility = user_visibility(user)
    return [alarm_row(event, visible_pmu_ids, visibility) for event in events[:limit]]


def corridor_rows(visible_pmu_ids: set[int]) -> list[dict[str, Any]]:
    """Return the corridors whose both ends the user may see."""
    corridors = Corridor.objects.filter(from_pmu__in=visible_pmu_ids, to_pmu__in=visible_pmu_ids)
    return [
        {"id": c.pk, "name": c.name, "from_pmu": c.from_pmu_id, "to_pmu": c.to_pmu_id, "limit_deg": c.angle_limit_deg}
        for c in corridors
    ]


OVERVIEW_POINT_BUDGET = 8_000  # points on one overview figure: keeps its redraws affordable
PREFILL_GAP_S = 2.0  # stored data stops this long before now; live updates take over from there


def overview_points_per_s(n_pmus: int) -> int:
    """Return the points per second and PMU the overview keeps: 10, fewer when many PMUs share a figure."""
    return max(1, min(10, OVERVIEW_POINT_BUDGET // (max(1, n_pmus) * LIVE_WINDOW_S)))


def stored_series(
    pmus: list[Pmu], quantities: tuple[str, ...], points_per_s: int = 10
) -> dict[str, dict[int, figures.Series]]:
    """Return the last LIVE_WINDOW_S of stored data per quantity and PMU, empty when unavailable."""
    end = timezone.now() - timedelta(seconds=PREFILL_GAP_S)
    start = end - timedelta(seconds=LIVE_WINDOW_S)
    out: dict[str, dict[int, figures.Series]] = {q: {} for q in quantities}
    if not pmus:
        return out
    try:
        windows = history.read_windows(pmus, start, end, quantities, max_points=LIVE_WINDOW_S * points_per_s)
    except Exception:  # a live page opens without its back-fill rather than fail
        logger.warning("no stored data to back-fill the live figures", exc_info=True)
        return out
    for window in windows:
        x = [float(t) * 1000.0 for t in window.t_s]
        for quantity in quantities:
            values = window.values.get(quantity)
            if values is not None and len(x):
                y: list[float | None] = [None if math.isnan(v) else float(v) for v in values]
                # A null after the stored data: the line breaks where live updates take over.
                out[quantity][window.pmu_id] = ([*x, x[-1] + 1.0], [*y, None])
    return out


def live_config(user: AnyUser, pmus: list[Pmu], ws_path: str) -> dict[str, Any]:
    """Return the settings every live page script starts from."""
    return {
        "ws_path": ws_path,
        "stale_after_s": stale_after_s(),
        "rate_hz": settings.WAMS_LIVE_RATE_HZ,
        "window_s": LIVE_WINDOW_S,
        "points_per_s": 10,
        "can_operate": access.can_operate(user),
        "pmus": pmu_rows(pmus),
    }
