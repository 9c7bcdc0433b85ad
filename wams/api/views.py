"""REST API for applications: plain Django JSON views behind bearer-token authentication.

Every view parses its input, calls one service and replies JSON; refused requests get a 4xx with
`{"error": "<what is wrong>"}`. An application only ever sees its organisation's PMUs and those
shared with it: any other PMU is answered as if it did not exist (404).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt

from wams import ratelimit
from wams.api.auth import authenticate
from wams.api.incidents import INCIDENT_KINDS, application_incidents, incident_json
from wams.api.models import Application, Subscription
from wams.api.services import (
    EVENT_KINDS,
    ApiError,
    application_events,
    application_pmus,
    application_visibility,
    create_subscription,
    event_json,
    subscription_json,
    visible_pmu_ids,
)
from wams.api.streaming import json_traces_response
from wams.detection.faultrecords import FaultRecordError, ingest_burst
from wams.detection.incidents import incident_payload, incident_visible, order_by_alarm, with_payload_rows
from wams.detection.models import AlarmState, Event, Incident
from wams.grid.models import Channel as GridChannel
from wams.grid.models import Stream
from wams.grid.services import set_stream_enabled
from wams.historian.budget import BudgetExceeded, ReadersBusy, check_channels, heavy_read
from wams.historian.models import Chunk, datetime_from_us, us_from_datetime
from wams.historian.query import block_columns, channel_counts, parse_channel, query_traces, read_columns
from wams.historian.recent import read_recent

ApiView = Callable[..., HttpResponse]

MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32

MAX_WINDOW = dt.timedelta(days=1)
MAX_POINTS = 100_000
MAX_PMUS_PER_QUERY = 50
MAX_UPLOAD_FILES = 100  # Django's DATA_UPLOAD_MAX_NUMBER_FILES
MAX_UPLOAD_BYTES = 64 * 2**20  # read whole into memory: the largest burst a request may hold


def error(status: int, message: str) -> JsonResponse:
    """Return the JSON error reply."""
    response = JsonResponse({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="wams"'
    return response


def api_view(*methods: str) -> Callable[[ApiView], ApiView]:
    """Authenticate the application, check the method and turn ApiError into a JSON 4xx."""

    def decorate(func: ApiView) -> ApiView:
        @csrf_exempt
        @wraps(func)
        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            application = authenticate(request.headers.get("Authorization", ""))
            if application is None:
                return error(401, "give a valid application token: Authorization: Bearer <token>")
            limited = ratelimit.hit(request, "api", f"application:{application.pk}", settings.WAMS_API_RATE)
            if limited is not None:
                return ratelimit.with_retry_after(error(429, limited.message), limited)
            if request.method not in methods:
                response = error(405, f"use {' or '.join(methods)}")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return func(request, application, *args, **kwargs)
            except ApiError as exc:
                return error(exc.status, exc.message)
            except RequestDataTooBig:
                return error(413, f"the body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes")
            except (SuspiciousOperation, MultiPartParserError) as exc:
                return error(400, f"the request cannot be read: {exc}")

        return view

    return decorate


def _json_body(request: HttpRequest) -> Any:
    """Return the parsed JSON body (at most MAX_JSON_BYTES, nested at most MAX_JSON_DEPTH), or raise a 4xx."""
    if request.content_type != "application/json":
        raise ApiError(400, "send a JSON body with Content-Type: application/json")
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise ApiError(400, "Content-Length is not a number") from None
    if declared > MAX_JSON_BYTES or len(request.body) > MAX_JSON_BYTES:
        raise ApiError(413, f"the JSON body is larger than {MAX_JSON_BYTES} bytes")
    return parse_json(request.body)


def parse_json(body: bytes) -> Any:
    """Parse UTF-8 JSON nested at most MAX_JSON_DEPTH deep, or raise a 400 saying what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the body is not UTF-8: {exc}") from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise ApiError(400, f"JSON nested deeper than {MAX_JSON_DEPTH}")
    try:
        value = json.loads(text or "null")
    except ValueError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, f"JSON nested deeper than {MAX_JSON_DEPTH}") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # a lone surrogate (\ud800) parses but cannot be stored
    except UnicodeEncodeError:
        raise ApiError(400, "the body holds a string that is not valid Unicode (a lone surrogate)") from None
    return value


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET_STEP = np.zeros(128, dtype=np.int64)
_BRACKET_STEP[[ord("["), ord("{")]] = 1
_BRACKET_STEP[[ord("]"), ord("}")]] = -1


def json_depth(text: str) -> int:
    """Return how deeply arrays and objects nest in a JSON text (strings skipped), without parsing it."""
    brackets = re.sub(r"[^\[\]{}]", "", _JSON_STRING.sub("", text))
    if not brackets:
        return 0
    steps = _BRACKET_STEP[np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)]
    return int(np.cumsum(steps).max())


def parse_time(value: str, name: str) -> dt.datetime:
    """Parse epoch seconds or an ISO 8601 time with a UTC offset into an aware datetime, or raise a 400."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _parse_iso(text.replace(" ", "+") if text.count(" ") == 1 else text, value, name)
    if not math.isfinite(seconds) or not 0 <= seconds < 1e11:
        raise ApiError(400, f"{name}={value!r} is not a time")
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _parse_iso(text: str, value: str, name: str) -> dt.datetime:
    """Parse an ISO 8601 time that carries its UTC offset, or raise a 400."""
    try:
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is None:
        raise ApiError(400, f"{name}={value!r}: give epoch seconds or an ISO 8601 time")
    if timezone.is_naive(moment):
        raise ApiError(400, f"{name}={value!r}: give a UTC offset (e.g. 2026-01-01T12:00:00Z)")
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise ApiError(400, f"{name}={value!r} is out of range") from None


def _int(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"{name}={value!r} is not an integer") from None
    if not low <= number <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return number


def _list(request: HttpRequest, name: str) -> list[str]:
    """Return a repeated or comma-separated query parameter as a list."""
    return [item.strip() for raw in request.GET.getlist(name) for item in raw.split(",") if item.strip()]


def _pmu_json(pmu: Any) -> dict[str, Any]:
    return {
        "id": pmu.pk,
        "station_name": pmu.station_name,
        "idcode": pmu.idcode,
        "stream_id": pmu.stream_id,
        "stream": pmu.stream.name,
        "stream_enabled": pmu.stream.enabled,
        "substation": pmu.substation.code,
        "latitude": pmu.substation.latitude,
        "longitude": pmu.substation.longitude,
        "bus": pmu.bus.number if pmu.bus else None,
        "owner": pmu.owner.code,
        "nominal_frequency_hz": pmu.nominal_frequency_hz,
        "reporting_rate_fps": pmu.stream.reporting_rate_fps,
        "enabled": pmu.enabled,
        "channels": [
            {"kind": c.kind, "order": c.order, "name": c.name, "measures": c.measures, "unit": c.unit}
            for c in pmu.channels.all()
        ],
    }


@api_view("GET")
def pmus(request: HttpRequest, application: Application) -> HttpResponse:
    """List the PMUs the application may see."""
    rows = (
        application_pmus(application)
        .select_related("stream", "substation", "bus", "owner")
        .prefetch_related("channels")
        .order_by("pk")
    )
    return JsonResponse({"pmus": [_pmu_json(p) for p in rows]})


@api_view("GET")
def events(request: HttpRequest, application: Application) -> HttpResponse:
    """List events on the application's PMUs (and grid-wide ones), newest first.

    `since`: events started or changed since then; `kind`, `state`: filters; `limit` (1-1000).
    """
    found = application_events(application)
    if "since" in request.GET:
        since = parse_time(request.GET["since"], "since")
        found = found.filter(Q(started_at__gte=since) | Q(updated_at__gte=since))
    kinds = _choices(_list(request, "kind"), "kind", EVENT_KINDS)
    if kinds:
        found = found.filter(kind__in=kinds)
    states = _choices(_list(request, "state"), "state", Event.State.values)
    if states:
        found = found.filter(state__in=states)
    limit = _int(request.GET.get("limit", "100"), "limit", 1, 1000)
    visibility = application_visibility(application)
    rows = found.order_by("-started_at", "-pk").prefetch_related("pmus__substation", "substations")[:limit]
    return JsonResponse({"events": [event_json(e, visibility) for e in rows]})


ALARM_FILTERS = {
    AlarmState.UNACK_ACTIVE: Q(acknowledged_at__isnull=True, state=Incident.State.ACTIVE),
    AlarmState.UNACK_RETURNED: Q(acknowledged_at__isnull=True, state=Incident.State.ENDED),
    AlarmState.ACK_ACTIVE: Q(acknowledged_at__isnull=False, state=Incident.State.ACTIVE),
    AlarmState.NORMAL: Q(acknowledged_at__isnull=False, state=Incident.State.ENDED),
}


@api_view("GET")
def incidents(request: HttpRequest, application: Application) -> HttpResponse:
    """List the incidents the application may see (redacted for its organisation), newest first.

    `since`: started or changed since then; `kind`; `state` (active, ended); `alarm` (alarm states);
    `order=alarm`: unacknowledged and active first; `limit` (1-1000).
    """
    found = application_incidents(application)
    if "since" in request.GET:
        since = parse_time(request.GET["since"], "since")
        found = found.filter(Q(started_at__gte=since) | Q(updated_at__gte=since))
    kinds = _choices(_list(request, "kind"), "kind", INCIDENT_KINDS)
    if kinds:
        found = found.filter(kind__in=kinds)
    states = _choices(_list(request, "state"), "state", list(Incident.State.values))
    if states:
        found = found.filter(state__in=states)
    alarms = _choices(_list(request, "alarm"), "alarm", list(AlarmState.values))
    if alarms:
        chosen = Q()
        for alarm in alarms:
            chosen |= ALARM_FILTERS[AlarmState(alarm)]
        found = found.filter(chosen)
    order = request.GET.get("order", "newest")
    if order not in ("newest", "alarm"):
        raise ApiError(400, "order must be newest or alarm")
    limit = _int(request.GET.get("limit", "100"), "limit", 1, 1000)
    rows = order_by_alarm(found) if order == "alarm" else found.order_by("-started_at", "-pk")
    visibility = application_visibility(application)
    now = timezone.now()
    payloads = [incident_payload(i, now=now) for i in with_payload_rows(rows)[:limit]]
    return JsonResponse(
        {"incidents": [incident_json(p, visibility) for p in payloads if incident_visible(p, visibility)]}
    )


@api_view("GET")
def incident(request: HttpRequest, application: Application, incident_id: int) -> HttpResponse:
    """Show one incident with its figures and its events (each as the application may see it)."""
    found = with_payload_rows(application_incidents(application).filter(pk=incident_id)).first()
    visibility = application_visibility(application)
    payload = incident_payload(found) if found is not None else None
    if payload is None or not incident_visible(payload, visibility):
        raise ApiError(404, f"no incident {incident_id} visible to this application")
    shown = incident_json(payload, visibility)
    events = application_events(application).filter(pk__in=shown["events"])
    rows = events.order_by("started_at", "pk").prefetch_related("pmus__substation", "substations")
    return JsonResponse(shown | {"events": [event_json(e, visibility) for e in rows]})


def _choices(values: list[str], name: str, allowed: list[str]) -> list[str]:
    """Return filter values that are all known, or raise a 400 listing the known ones."""
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ApiError(400, f"unknown {name} {', '.join(repr(v[:40]) for v in unknown[:5])}: use {', '.join(allowed)}")
    return values


def _channel(name: str) -> str:
    """Return the historian channel of a quantity name (aliases for phasor 0), or raise a 400."""
    alias = {"angle_deg": "phasor_0_angle_deg", "magnitude": "phasor_0_magnitude"}.get(name, name)
    try:
        return parse_channel(alias).name
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _channels(request: HttpRequest) -> list[str]:
    """Return the asked quantities as historian channels, repeats removed, or raise a 400."""
    asked = [_channel(q) for q in _list(request, "quantity")] or ["frequency_hz"]
    try:
        return check_channels(asked)
    except BudgetExceeded as exc:
        raise ApiError(400, str(exc)) from None


def _check_channels_exist(pmu_ids: list[int], channels: list[str], start_us: int, end_us: int) -> None:
    """Raise a 400 when a PMU has no such phasor, analog or digital channel (grid model, else stored data)."""
    indexed = [
        spec for spec in map(parse_channel, channels) if spec.kind not in ("frequency_hz", "rocof_hz_per_s", "stat")
    ]
    if not indexed:
        return
    kinds = {"magnitude": "phasor", "angle_deg": "phasor", "analog": "analog", "digital": "digital"}
    modelled: dict[int, dict[str, int]] = {}
    for pmu_id, kind, count in (
        GridChannel.objects.filter(pmu_id__in=pmu_ids)
        .values("pmu_id", "kind")
        .annotate(n=Count("pk"))
        .values_list("pmu_id", "kind", "n")
    ):
        modelled.setdefault(pmu_id, {})[kind] = count
    for pmu_id in pmu_ids:
        counts = modelled.get(pmu_id)
        if counts is None:  # no channels in the grid model: what the PMU reported
            phasors, analogs, digitals = channel_counts(pmu_id, start_us, end_us)
            counts = {"phasor": phasors, "analog": analogs, "digital": digitals}
        for spec in indexed:
            kind = kinds[spec.kind]
            if spec.index >= counts.get(kind, 0):
                have = counts.get(kind, 0)
                known = f"{kind}s 0-{have - 1}" if have else f"no {kind} channel"
                raise ApiError(400, f"PMU {pmu_id} has {known}: {spec.name} does not exist")


def _requested_pmus(request: HttpRequest, application: Application) -> list[int]:
    """Return the PMU ids of the `pmu` parameter, each visible to the application, or raise."""
    raw = _list(request, "pmu")
    if not raw:
        raise ApiError(400, "give pmu=<id> (repeat it or separate ids with commas)")
    if len(raw) > MAX_PMUS_PER_QUERY:
        raise ApiError(400, f"at most {MAX_PMUS_PER_QUERY} PMUs per query")
    ids = [_int(p, "pmu", 1, 2**62) for p in raw]
    visible = visible_pmu_ids(application)
    for pmu_id in ids:
        if pmu_id not in visible:
            raise ApiError(404, f"no PMU {pmu_id} visible to this application")
    return list(dict.fromkeys(ids))


def _finite(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]


def _latest(pmu_id: int, channels: list[str]) -> dict[str, Any]:
    """Return a PMU's newest sample: from the recent window, else the end of its newest stored chunk."""
    specs = [parse_channel(c) for c in channels]
    recent = read_recent(pmu_id, seconds=0.0)
    if recent is not None and len(recent):
        columns = block_columns(recent, specs)
        stamp_us = int(recent.timestamp_us[-1])
        values = {c: _finite(columns[c][-1:])[0] for c in channels}
    else:
        last_us = Chunk.objects.filter(pmu_id=pmu_id).order_by("-end_us").values_list("end_us", flat=True).first()
        if last_us is None:
            return {"pmu_id": pmu_id, "t": None, "values": dict.fromkeys(channels)}
        stamps, columns = read_columns(pmu_id, specs, last_us, last_us, include_recent=False)
        stamp_us = int(stamps[-1]) if stamps.size else last_us
        values = {c: _finite(columns[c][-1:])[0] if stamps.size else None for c in channels}
    return {"pmu_id": pmu_id, "t": stamp_us / 1e6, "time": datetime_from_us(stamp_us).isoformat(), "values": values}


@api_view("GET")
def data(request: HttpRequest, application: Application) -> HttpResponse:
    """Report measurements on demand: the newest values (no start/end) or a time window.

    `pmu`: ids; `quantity`: historian channel names (default frequency_hz; repeats answered once);
    `start`, `end`: epoch seconds or ISO 8601 (end defaults to now); `max_points`: per trace,
    min/max/mean buckets beyond. A window is priced before it is read (`wams.historian.budget`): one
    over the limits gets a 400 saying which limit and how to page.
    """
    pmu_ids = _requested_pmus(request, application)
    channels = _channels(request)
    if "start" not in request.GET and "end" not in request.GET:
        _check_channels_exist(pmu_ids, channels, 0, 2**62)
        return JsonResponse({"latest": [_latest(p, channels) for p in pmu_ids]})
    if "start" not in request.GET:
        raise ApiError(400, "a window needs start (end defaults to now)")
    start = parse_time(request.GET["start"], "start")
    end = parse_time(request.GET["end"], "end") if "end" in request.GET else timezone.now()
    if end < start:
        raise ApiError(400, "end is before start")
    if end - start > MAX_WINDOW:
        raise ApiError(400, f"the window is longer than {MAX_WINDOW.total_seconds() / 3600:g} hours")
    max_points = _int(request.GET.get("max_points", "2000"), "max_points", 1, MAX_POINTS)
    _check_channels_exist(pmu_ids, channels, us_from_datetime(start), us_from_datetime(end))
    try:
        with heavy_read():
            traces = query_traces(pmu_ids, channels, start, end, max_points=max_points)
    except BudgetExceeded as exc:
        raise ApiError(400, str(exc)) from None
    except ReadersBusy as exc:
        response = error(503, str(exc))
        response["Retry-After"] = str(exc.retry_after_s)
        return response
    head = {"start": start.isoformat(), "end": end.isoformat()}
    return json_traces_response(request, head, traces)


@api_view("GET", "POST")
def subscriptions(request: HttpRequest, application: Application) -> HttpResponse:
    """List the application's subscriptions, or create one (the reply holds its secret, shown once)."""
    if request.method == "GET":
        rows = Subscription.objects.filter(application=application).prefetch_related("pmus")
        return JsonResponse({"subscriptions": [subscription_json(s) for s in rows]})
    subscription, secret = create_subscription(application, _json_body(request))
    return JsonResponse(subscription_json(subscription) | {"secret": secret}, status=201)


def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Answer a path under /api/ that names no endpoint (or an id out of range) with a JSON 404."""
    return error(404, "no such endpoint or object")


@api_view("GET", "DELETE")
def subscription(request: HttpRequest, application: Application, subscription_id: int) -> HttpResponse:
    """Show or delete one of the application's subscriptions."""
    found = Subscription.objects.filter(application=application, pk=subscription_id).first()
    if found is None:
        raise ApiError(404, f"no subscription {subscription_id}")
    if request.method == "DELETE":
        found.delete()
        return HttpResponse(status=204)
    return JsonResponse(subscription_json(found))


@api_view("POST")
def fault_records(request: HttpRequest, application: Application) -> HttpResponse:
    """Take a burst of COMTRADE files (multipart: cfg/dat pairs or zip archives) and attach them to events."""
    uploads = [f for name in request.FILES for f in request.FILES.getlist(name)]
    if not uploads:
        raise ApiError(400, "send the files as multipart/form-data (.cfg and .dat pairs, or .zip)")
    if len(uploads) > MAX_UPLOAD_FILES:
        raise ApiError(400, f"at most {MAX_UPLOAD_FILES} files per upload")
    if sum(f.size or 0 for f in uploads) > MAX_UPLOAD_BYTES:
        raise ApiError(400, f"at most {MAX_UPLOAD_BYTES // 2**20} MB per upload")
    try:
        results = ingest_burst([(f.name or "", f.read()) for f in uploads], uploaded_by=f"application {application}")
    except FaultRecordError as exc:
        raise ApiError(400, str(exc)) from None
    stored = [r for r in results if r.record is not None]
    status = 201 if any(r.created for r in stored) else (200 if stored else 400)
    body: dict[str, Any] = {"records": [r.to_json() for r in results]}
    if not stored:
        body["error"] = "no readable COMTRADE record in the upload"
    return JsonResponse(body, status=status)


@api_view("POST")
def stream_enabled(request: HttpRequest, application: Application, stream_id: int) -> HttpResponse:
    """Switch a stream's continuous connectivity off or on (`{"enabled": false}`); the pdc follows."""
    body = _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
        raise ApiError(400, 'send {"enabled": true} or {"enabled": false}')
    stream = Stream.objects.filter(pk=stream_id).first()
    if stream is None or not application_pmus(application).filter(stream=stream).exists():
        raise ApiError(404, f"no stream {stream_id} visible to this application")
    if stream.owner_id != application.organisation_id:
        raise ApiError(403, f"stream {stream_id} belongs to another organisation: it can only be switched by its owner")
    try:
        set_stream_enabled(stream_id, body["enabled"])
    except PermissionDenied as exc:
        raise ApiError(403, str(exc)) from None
    stream.refresh_from_db()
    return JsonResponse({"stream_id": stream.pk, "stream": stream.name, "enabled": stream.enabled})
