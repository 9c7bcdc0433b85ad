"""Incidents as one viewer may see them: scoping, redaction, alarm state, order and map highlight.

Every page and the live socket start from `incident_payload` (the one JSON of an incident) and pass
it through `shown_incident`, so a viewer of another organisation gets the same redacted view on the
overview banner, the alarm list, the incident list and page, and over the websocket.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.urls import reverse

from dashboards import access
from wams.detection import services as detection
from wams.detection.models import Incident
from wams.grid.models import Line, Substation
from wams.grid.services import AnyUser, Visibility, sees_everything, user_visibility

SEVERITY_RANK = {"critical": 0, "alarm": 1, "warning": 2, "info": 3}
KIND_LABELS = dict(Incident.Kind.choices)
# ISA-18.2 alarm states of an incident (as the detection app names them).
ACKNOWLEDGED_STATES = ("ack_active", "normal", "acknowledged")
ALARM_LABELS = {
    "unack_active": "unacknowledged",
    "ack_active": "acknowledged",
    "unack_returned": "unacknowledged, returned",
    "normal": "acknowledged, returned",
}


def visible_incidents(user: AnyUser) -> QuerySet[Incident]:
    """Return the incidents with a symptom the user may see, or located at a substation the user may see."""
    incidents = Incident.objects.all()
    if sees_everything(user):
        return incidents
    if not user.is_authenticated:
        return incidents.none()
    events = access.visible_events(user).values("pk")
    substations = access.visible_substations(user).values("pk")
    return incidents.filter(Q(events__in=events) | Q(substation__in=substations)).distinct()


def get_visible_incident(user: AnyUser, incident_id: int) -> Incident:
    """Return an incident the user may see, or raise 404 (another organisation's does not exist for them)."""
    from django.http import Http404

    try:
        return visible_incidents(user).select_related("bus__substation", "substation", "line").get(pk=incident_id)
    except Incident.DoesNotExist:
        raise Http404("No such incident.") from None


def redact_incident(payload: dict[str, Any], incident: Incident, visibility: Visibility) -> dict[str, Any]:
    """Return an incident payload as one viewer may see it: the detection app's one redaction rule."""
    return dict(detection.redact_incident(payload, visibility))


def alarm_state(payload: dict[str, Any]) -> dict[str, Any]:
    """Read the alarm part of an incident payload (absent until alarms on incidents exist)."""
    alarm = payload.get("alarm")
    if not isinstance(alarm, dict):
        return {"known": False, "acknowledged": False, "shelved": False, "state": "", "label": "not acknowledged"}
    state = str(alarm.get("state") or "")
    acknowledged = alarm.get("acknowledged")
    if not isinstance(acknowledged, bool):
        acknowledged = bool(alarm.get("acknowledged_at")) or state in ACKNOWLEDGED_STATES
    shelved = alarm.get("shelved")
    if not isinstance(shelved, bool):
        shelved = bool(alarm.get("shelved_until")) or state == "shelved"
    label = ALARM_LABELS.get(state) or (state.replace("_", " ") if state else "")
    if not label:
        label = "acknowledged" if acknowledged else "not acknowledged"
    if shelved:
        label = "shelved"
    return {
        "known": True,
        "acknowledged": acknowledged,
        "shelved": shelved,
        "state": state,
        "label": label,
        "acknowledged_by": alarm.get("acknowledged_by"),
        "acknowledged_at": iso_text(alarm.get("acknowledged_at")) if alarm.get("acknowledged_at") else None,
        "comment": alarm.get("comment") or alarm.get("acknowledge_comment"),
        "shelved_until": iso_text(alarm.get("shelved_until")) if alarm.get("shelved_until") else None,
        "shelve_reason": alarm.get("shelve_reason") or alarm.get("shelved_reason"),
    }


def order_key(row: dict[str, Any]) -> tuple[int, int, int, float]:
    """Sort unacknowledged before acknowledged, active before ended, severe first, newest first."""
    from datetime import datetime

    alarm = row.get("alarm_view") or alarm_state(row)
    started = datetime.fromisoformat(str(row["started_at"])).timestamp()
    return (
        1 if alarm["acknowledged"] else 0,
        0 if row.get("state") == Incident.State.ACTIVE else 1,
        SEVERITY_RANK.get(str(row.get("severity")), 9),
        -started,
    )


def highlight(incident: Incident, shown: dict[str, Any]) -> dict[str, Any] | None:
    """Return where the map marks the incident: the located substation and the line's two ends."""
    location = shown.get("location") or {}
    if not (location.get("substation") or location.get("line") or location.get("bus")):
        return None
    points: list[dict[str, Any]] = []
    substation = incident.substation or (incident.bus.substation if incident.bus is not None else None)
    if substation is not None:
        points.append(_point(substation))
    path: list[dict[str, Any]] = []
    if location.get("line") and incident.line_id is not None:
        line = Line.objects.select_related("from_bus__substation", "to_bus__substation").get(pk=incident.line_id)
        path = [_point(line.from_bus.substation), _point(line.to_bus.substation)]
    if not points and not path:
        return None
    return {"points": points, "line": path}


def _point(substation: Substation) -> dict[str, Any]:
    return {"id": substation.pk, "code": substation.code, "lat": substation.latitude, "lon": substation.longitude}


def location_text(shown: dict[str, Any]) -> str:
    """Describe the location in words (bus, substation, line, and how it was found)."""
    location = shown.get("location") or {}
    parts = []
    if location.get("line"):
        parts.append(str(location["line"]))
    if location.get("bus"):
        parts.append(f"bus {location['bus']}")
    if location.get("substation"):
        parts.append(str(location["substation"]))
    return ", ".join(parts) if parts else "not located"


# The banner's one number per incident kind, in order of preference (JSON objects keep no key order
# in PostgreSQL, so "the first figure" is not a rule).
KEY_FIGURES = {
    "fault": ("min_voltage_pu", "voltage_min_pu", "duration_ms"),
    "line_trip": ("angle_step_max_deg",),
    "generator_trip": ("mw_lost_mw", "off_nominal_frequency_hz", "frequency_change_hz"),
    "load_step": ("load_change_mw", "off_nominal_frequency_hz", "frequency_change_hz"),
    "islanding": ("island_frequency_hz", "frequency_divergence_hz"),
    "angle_separation": ("angle_separation_max_deg", "angle_separation_deg"),
    "oscillation": ("damping_pct", "mode_frequency_hz"),
    "forced_oscillation": ("mode_frequency_hz",),
    "voltage_decline": ("voltage_min_pu", "off_limit_voltage_pu"),
}


def key_figure(shown: dict[str, Any]) -> str:
    """Return the incident's key figure as `name value` (the banner's one number); else the first by name."""
    figures = {
        name: value
        for name, value in (shown.get("figures") or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    preferred = [name for name in KEY_FIGURES.get(str(shown.get("kind")), ()) if name in figures]
    for name in preferred or sorted(figures):
        return f"{figure_label(name)} {format_value(figures[name])}"
    return ""


UNIT_SUFFIXES = (
    ("_hz_per_s", "Hz/s"),
    ("_pct", "%"),
    ("_hz", "Hz"),
    ("_pu", "pu"),
    ("_mw", "MW"),
    ("_mvar", "Mvar"),
    ("_deg", "deg"),
    ("_ms", "ms"),
    ("_s", "s"),
    ("_kv", "kV"),
    ("_a", "A"),
)


ACRONYMS = {"pmus": "PMUs", "pmu": "PMU", "rocof": "ROCOF", "mw": "MW"}


def figure_label(name: str) -> str:
    """Turn `min_voltage_pu` into `Min voltage (pu)`: the unit from the name's suffix, acronyms kept."""
    unit = ""
    for suffix, suffix_unit in UNIT_SUFFIXES:
        if name.endswith(suffix):
            name, unit = name[: -len(suffix)], suffix_unit
            break
    words = [ACRONYMS.get(word, word) for word in name.strip("_").split("_") if word]
    text = " ".join(words)
    text = text[:1].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


def format_value(value: Any) -> str:
    """Format a figure: numbers to 4 significant digits, lists and maps compactly."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    return str(value)


def iso_text(value: Any) -> str:
    """Show an ISO 8601 instant as `YYYY-MM-DD HH:MM:SS` (UTC as stored)."""
    return str(value)[:19].replace("T", " ") if value else "-"


def shown_incident(incident: Incident, visibility: Visibility, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the incident as the viewer may see it, with what pages add: url, labels, alarm view, highlight."""
    shown = redact_incident(payload or detection.incident_payload(incident), incident, visibility)
    return {
        **shown,
        "started_text": iso_text(shown.get("started_at")),
        "kind_label": KIND_LABELS.get(str(shown.get("kind")), str(shown.get("kind"))),
        "url": reverse("dashboards:incident", args=[incident.pk]),
        "location_text": location_text(shown),
        "method_text": str((shown.get("location") or {}).get("method") or "").replace("_", " "),
        "key_figure": key_figure(shown),
        "alarm_view": alarm_state(shown),
        "highlight": highlight(incident, shown),
    }


def incident_rows(user: AnyUser, *, limit: int = 50, current_only: bool = True) -> list[dict[str, Any]]:
    """Return the incidents an alarm list shows: active or not yet acknowledged, in alarm order."""
    incidents = visible_incidents(user).select_related("bus__substation", "substation", "line")
    recent = list(incidents.order_by("-started_at")[: limit * 4])
    visibility = user_visibility(user)
    rows = [shown_incident(incident, visibility) for incident in recent]
    if current_only:
        rows = [row for row in rows if is_current(row)]
    rows.sort(key=order_key)
    return rows[:limit]


def is_current(row: dict[str, Any]) -> bool:
    """Tell whether an incident belongs on the banner: active, or ended but not acknowledged, and not shelved."""
    alarm = row.get("alarm_view") or alarm_state(row)
    if alarm["shelved"]:
        return False
    if not alarm["known"]:
        return bool(row.get("state") == Incident.State.ACTIVE)
    return bool(row.get("state") == Incident.State.ACTIVE or not alarm["acknowledged"])


def live_incident(user: AnyUser, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Return a published incident as the viewer may see it, or None when it is not theirs (sync)."""
    incident_id = payload.get("incident_id")
    if not isinstance(incident_id, int):
        return None
    incident = visible_incidents(user).select_related("bus__substation", "substation", "line")
    found = incident.filter(pk=incident_id).first()
    if found is None:
        return None
    return shown_incident(found, user_visibility(user), payload)


def service(name: str) -> Any:
    """Return a detection service (e.g. `acknowledge_incident`) when the detection app has it, else None."""
    return getattr(detection, name, None)
