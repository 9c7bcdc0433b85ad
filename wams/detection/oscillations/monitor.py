"""Oscillation monitoring runs: read the historian, analyse, and raise, refresh or clear events."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from wams.detection.analytics.offline import json_ready
from wams.detection.analytics.oscillation import DampingLevels
from wams.detection.analytics.types import FloatArray
from wams.detection.incidents import record_oscillation
from wams.detection.models import DetectorSettings, Event, OscillationAnalysis
from wams.detection.oscillations.analysis import (
    FORCED,
    KINDS,
    POORLY_DAMPED,
    Channels,
    OscillationParams,
    Sighting,
    after_last_gap,
    ambient_poorly_damped,
    forced_sightings,
    make_channels,
    ringdown_sightings,
    tail_of,
)
from wams.detection.services import ACTIVE_STATES, clear_event, raise_event

logger = logging.getLogger(__name__)

SOURCE = "worker"
ANGLE_CHANNEL = "phasor_0_angle_deg"


def load_params() -> OscillationParams:
    """Return the parameters: alarm levels from the defaults row of DetectorSettings, windows from settings."""
    row = DetectorSettings.objects.filter(group__isnull=True).first() or DetectorSettings()
    return OscillationParams(
        levels=DampingLevels(warning_pct=row.damping_warning_pct, alarm_pct=row.damping_alarm_pct),
        window_s=float(getattr(settings, "WAMS_OSCILLATION_WINDOW_S", 120)),
    )


def ambient_due(now: dt.datetime, params: OscillationParams) -> bool:
    """Tell whether the last ambient analysis is at least an interval old (a little slack for the beat)."""
    last = OscillationAnalysis.objects.order_by("-analysed_at").values_list("analysed_at", flat=True).first()
    return last is None or (now - last).total_seconds() >= params.ambient_interval_s - 2.0


def confirmed_ambient(now: dt.datetime, params: OscillationParams, pmu_ids: Sequence[int]) -> list[Sighting]:
    """Return the modes that each of the last `ambient_confirmations` analyses saw poorly damped."""
    since = now - dt.timedelta(seconds=params.ambient_interval_s * (params.ambient_confirmations + 0.5))
    recent = list(OscillationAnalysis.objects.filter(analysed_at__gte=since, analysed_at__lte=now))
    if len(recent) < params.ambient_confirmations:
        return []
    recent = recent[: params.ambient_confirmations]  # newest first
    index = {p: i for i, p in enumerate(pmu_ids)}
    sightings = []
    for mode in recent[0].modes:
        f = mode["frequency_hz"]
        matches = [
            min(
                (m for m in a.modes if abs(m["frequency_hz"] - f) <= params.match_fraction * f),
                key=lambda m: abs(m["frequency_hz"] - f),
                default=None,
            )
            for a in recent[1:]
        ]
        if any(m is None for m in matches):
            continue
        worst = min([mode, *[m for m in matches if m is not None]], key=lambda m: m["damping_pct"])
        quantities = {k: v for k, v in mode.items() if k not in {"severity", "pmu_ids"}}
        quantities["damping_pct"] = worst["damping_pct"]
        quantities["analysis"] = "ambient"
        start_s = recent[-1].analysed_at.timestamp() - recent[-1].window_s
        pmus = tuple(index[p] for p in mode["pmu_ids"] if p in index)
        sightings.append(Sighting(POORLY_DAMPED, worst["severity"], f, start_s, pmus, quantities))
    return sightings


def read_window(
    pmu_ids: Sequence[int], end: dt.datetime, window_s: float
) -> tuple[FloatArray, FloatArray, FloatArray, list[int]]:
    """Return times (n,), frequency and angle (n, n_pmu) on one grid, and the PMU ids that had data.

    The grid runs at the most common sample interval; each PMU is interpolated onto it (angles
    unwrapped first) and left NaN outside its samples and across gaps longer than two intervals.
    """
    from wams.historian.models import us_from_datetime
    from wams.historian.query import parse_channel, read_columns

    start_us = us_from_datetime(end - dt.timedelta(seconds=window_s))
    end_us = us_from_datetime(end)
    specs = [parse_channel("frequency_hz"), parse_channel(ANGLE_CHANNEL)]
    series: list[tuple[int, FloatArray, FloatArray, FloatArray]] = []
    for pmu_id in pmu_ids:
        stamps, columns = read_columns(pmu_id, specs, start_us, end_us)
        if stamps.size >= 10:
            series.append((pmu_id, stamps / 1e6, columns["frequency_hz"], columns[ANGLE_CHANNEL]))
    if not series:
        return np.zeros(0), np.zeros((0, 0)), np.zeros((0, 0)), []
    steps = np.concatenate([np.diff(t) for _, t, _, _ in series])
    step_s = float(np.median(steps[steps > 0])) if (steps > 0).any() else 1.0 / 30.0
    first_s = min(float(t[0]) for _, t, _, _ in series)
    last_s = max(float(t[-1]) for _, t, _, _ in series)
    n_grid = math.floor((last_s - first_s) / step_s + 1e-6) + 1
    grid: FloatArray = first_s + np.arange(n_grid, dtype=np.float64) * step_s
    frequency = np.full((grid.size, len(series)), np.nan)
    angle = np.full((grid.size, len(series)), np.nan)
    for k, (_, t, f, a) in enumerate(series):
        frequency[:, k] = _onto(grid, t, f, step_s)
        known = np.isfinite(a)
        unwrapped = np.full_like(a, np.nan)
        unwrapped[known] = np.rad2deg(np.unwrap(np.deg2rad(a[known])))
        angle[:, k] = _onto(grid, t, unwrapped, step_s)
    return grid, frequency, angle, [pmu_id for pmu_id, _, _, _ in series]


def _onto(grid: FloatArray, t: FloatArray, values: FloatArray, step_s: float) -> FloatArray:
    """Interpolate samples (t, values) onto grid; NaN outside them and across gaps over two steps."""
    known = np.isfinite(values)
    t, values = t[known], values[known]
    if t.size < 2:
        return np.full(grid.shape, np.nan)
    out = np.interp(grid, t, values, left=np.nan, right=np.nan)
    after = np.clip(np.searchsorted(t, grid, side="left"), 1, t.size - 1)
    out[(t[after] - t[after - 1]) > 2.5 * step_s] = np.nan
    return np.asarray(out, dtype=np.float64)


def without_forced(sightings: list[Sighting], active: Sequence[Event], params: OscillationParams) -> list[Sighting]:
    """Drop poorly damped sightings at the frequency of a forced oscillation (seen now or active).

    A sustained forced oscillation also looks like an undamped mode to a ringdown fit; the forced
    test (a spectral line with near-zero apparent damping) is the more specific diagnosis.
    """
    forced_hz = [s.frequency_hz for s in sightings if s.kind == FORCED]
    forced_hz += [
        float(e.quantities["frequency_hz"]) for e in active if e.kind == FORCED and "frequency_hz" in e.quantities
    ]
    tolerance = params.match_fraction / 3.0

    def near_forced(s: Sighting) -> bool:
        return any(abs(s.frequency_hz - f) <= max(0.03, tolerance * f) for f in forced_hz)

    return [s for s in sightings if s.kind == FORCED or not near_forced(s)]


def _summary(s: Sighting) -> str:
    """Return the one-line summary of a sighting."""
    q = s.quantities
    if s.kind == FORCED:
        return f"Forced oscillation at {s.frequency_hz:.3f} Hz, strongest at {q.get('source_pmu', '?')}"
    damping = q.get("damping_pct")
    text = f"Poorly damped oscillation at {s.frequency_hz:.3f} Hz"
    return text + (f", damping {damping:.1f}%" if isinstance(damping, float) else "")


def _match(active: list[Event], s: Sighting, params: OscillationParams) -> Event | None:
    """Return the active event of the sighting's kind nearest in frequency, within the match share."""
    near = []
    for event in active:
        f = event.quantities.get("frequency_hz")
        if event.kind == s.kind and isinstance(f, int | float) and abs(f - s.frequency_hz) <= params.match_fraction * f:
            near.append((abs(f - s.frequency_hz), event))
    return min(near, key=lambda item: item[0])[1] if near else None


def record_sightings(
    sightings: list[Sighting], pmu_ids: Sequence[int], now: dt.datetime, params: OscillationParams
) -> tuple[int, int]:
    """Raise or refresh the events of these sightings, clear those unseen too long; return (raised, cleared)."""
    active = list(Event.objects.filter(kind__in=KINDS, source=SOURCE, state__in=ACTIVE_STATES))
    seen: set[int] = set()
    raised = 0
    now_s = now.timestamp()
    for s in sightings:
        match = _match(active, s, params)
        quantities = json_ready(dict(s.quantities)) | {"last_seen_s": now_s}
        if match is not None:
            key = match.dedup_key
            # The event keeps the frequency it was raised at (its identity) and the worst damping seen;
            # damping_pct and latest_frequency_hz follow the newest analysis.
            quantities["latest_frequency_hz"] = s.frequency_hz
            quantities["frequency_hz"] = match.quantities.get("frequency_hz", s.frequency_hz)
            dampings = [
                match.quantities.get("damping_min_pct"),
                quantities.get("damping_min_pct"),
                quantities.get("damping_pct"),
            ]
            finite = [v for v in dampings if isinstance(v, int | float) and math.isfinite(v)]
            if finite:
                quantities["damping_min_pct"] = min(finite)
        else:
            key = f"osc:{s.kind}:{s.frequency_hz:.3f}Hz@{int(s.start_time_s)}"
        event, new = raise_event(
            kind=s.kind,
            severity=s.severity,
            summary=_summary(s),
            started_at=dt.datetime.fromtimestamp(s.start_time_s, tz=dt.UTC),
            pmu_ids=[pmu_ids[i] for i in s.pmu_indices],
            quantities=quantities,
            dedup_key=key,
            source=SOURCE,
        )
        if new:
            active.append(event)
            record_oscillation(event, raised=True)
        seen.add(event.pk)
        raised += int(new)
    cleared = 0
    forced_now = [e for e in active if e.kind == FORCED and e.pk in seen]
    for event in active:
        if event.pk in seen:
            continue
        last_seen_s = float(event.quantities.get("last_seen_s", event.started_at.timestamp()))
        ended_at = dt.datetime.fromtimestamp(last_seen_s, tz=dt.UTC)
        if event.kind == POORLY_DAMPED and not without_forced([_as_sighting(event)], forced_now, params):
            # First taken for an undamped mode, it is a forced oscillation: that event now stands for it.
            clear_event(event.dedup_key, ended_at=ended_at, quantities={"cleared_reason": "forced oscillation"})
            record_oscillation(Event.objects.get(pk=event.pk), raised=False)
            cleared += 1
        elif now_s - last_seen_s > params.clear_after_s:
            clear_event(event.dedup_key, ended_at=ended_at)
            record_oscillation(Event.objects.get(pk=event.pk), raised=False)
            cleared += 1
    return raised, cleared


def _as_sighting(event: Event) -> Sighting:
    """Return an event as a sighting of its kind and frequency (for frequency comparisons)."""
    frequency = event.quantities.get("frequency_hz")
    return Sighting(event.kind, event.severity, float(frequency) if frequency is not None else math.nan, 0.0, ())


def monitor_oscillations(now: dt.datetime | None = None, pmu_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Analyse the recent data of the enabled PMUs; raise, refresh or clear oscillation events."""
    from wams.grid.models import Pmu

    now = now or timezone.now()
    params = load_params()
    if pmu_ids is None:
        enabled = Pmu.objects.filter(enabled=True, stream__enabled=True).order_by("pk")
        pmu_ids = list(enabled.values_list("pk", flat=True))
    do_ambient = ambient_due(now, params)
    span_s = max(params.window_s, params.ambient_window_s) if do_ambient else params.window_s
    time_s, frequency, angle, with_data = read_window(pmu_ids, now, span_s)
    time_s, frequency, angle = after_last_gap(time_s, frequency, angle)
    names_by_id = dict(Pmu.objects.filter(pk__in=with_data).values_list("pk", "station_name"))
    names = [names_by_id.get(p, str(p)) for p in with_data]
    sightings: list[Sighting] = []
    if with_data and time_s.size >= 60:
        ch = make_channels(time_s, frequency, angle, names)
        recent = Channels(*tail_of(ch, params.window_s))
        if recent.values.shape[1]:
            sightings += ringdown_sightings(recent, params)
            sightings += forced_sightings(recent, params, names)
            if do_ambient and time_s[-1] - time_s[0] >= 0.8 * params.ambient_window_s:
                modes = ambient_poorly_damped(ch, params, with_data)
                OscillationAnalysis.objects.create(
                    analysed_at=now, window_s=float(time_s[-1] - time_s[0]), n_pmus=len(with_data), modes=modes
                )
    sightings += confirmed_ambient(now, params, with_data)
    # A forced oscillation that ended within the windows is still in the data the ringdown replay and the ambient analyses read.
    lookback_s = max(params.window_s, params.ambient_window_s)  # the ambient analyses read the longer window
    lingering = Q(state__in=ACTIVE_STATES) | Q(ended_at__gte=now - dt.timedelta(seconds=lookback_s))
    active_forced = list(Event.objects.filter(lingering, kind=FORCED, source=SOURCE))
    sightings = without_forced(sightings, active_forced, params)
    OscillationAnalysis.objects.filter(analysed_at__lt=now - dt.timedelta(hours=1)).delete()
    with transaction.atomic():
        raised, cleared = record_sightings(sightings, with_data, now, params)
    return {"pmus": len(with_data), "sightings": len(sightings), "raised": raised, "cleared": cleared}
