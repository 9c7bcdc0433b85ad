"""Build the simulated fleet from the grid model, and apply admin requests to a running fleet."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.utils import timezone

from wams.grid.models import Channel, CommunicationPath, ControllableDevice, Stream
from wams.simulator.engine.realtime import SCENARIO_LEAD_S
from wams.simulator.fleet.fleet import Fleet
from wams.simulator.fleet.spec import ChannelSpec, FleetSpec, PathSpec, PmuSpec, RtuPointSpec, RtuSpec, StreamSpec
from wams.simulator.models import SimulatorRequest

logger = logging.getLogger(__name__)


def fleet_spec_from_grid(*, include_disabled: bool = False) -> FleetSpec:
    """Return the streams (with PMUs, channels and paths) and RTUs recorded in the grid model."""
    streams = []
    queryset = Stream.objects.prefetch_related("pmus__channels__line__from_bus", "pmus__channels__line__to_bus",
                                                 "pmus__channels__bus", "pmus__bus", "pmus__substation", "paths")  # fmt: skip
    for stream in queryset.order_by("name"):
        if not stream.enabled and not include_disabled:
            continue
        pmus = tuple(_pmu_spec(p) for p in stream.pmus.all() if p.bus is not None)
        paths = tuple(_path_spec(p) for p in stream.paths.all() if p.enabled)
        if pmus and paths:
            streams.append(
                StreamSpec(stream.name, stream.idcode, stream.reporting_rate_fps, pmus, paths, tls=stream.tls)
            )
    return FleetSpec(tuple(streams), _rtu_specs())


def _pmu_spec(pmu: Any) -> PmuSpec:
    channels = []
    for ch in pmu.channels.all():
        line = (ch.line.from_bus.number, ch.line.to_bus.number) if ch.line is not None else None
        if line is not None and line[1] == pmu.bus.number:
            line = (line[1], line[0])  # measured at the PMU's end
        bus = ch.bus.number if ch.bus is not None else pmu.bus.number
        channels.append(
            ChannelSpec(
                kind=ch.kind,
                name=ch.name,
                measures=ch.measures,
                bus=bus if ch.measures != Channel.Measures.LINE_CURRENT else pmu.bus.number,
                line=line,
                unit=ch.unit,
                scale=ch.scale,
                base_kv=ch.bus.base_kv if ch.bus is not None else None,
            )
        )
    return PmuSpec(
        idcode=pmu.idcode,
        station_name=pmu.station_name,
        bus=pmu.bus.number,
        nominal_hz=pmu.nominal_frequency_hz,
        phasor_float=pmu.phasor_format == "float32",
        polar=pmu.phasor_notation == "polar",
        freq_float=pmu.frequency_format == "float32",
        analog_float=pmu.analog_format == "float32",
        channels=tuple(channels),
        enabled=pmu.enabled,
        latitude_deg=pmu.substation.latitude,
        longitude_deg=pmu.substation.longitude,
    )


def _path_spec(path: CommunicationPath) -> PathSpec:
    return PathSpec(
        name=path.name,
        host=path.host,
        port=path.port,
        transport=path.transport,  # type: ignore[arg-type]
        udp_port=path.udp_port,
        enabled=path.enabled,
    )


def _rtu_specs() -> tuple[RtuSpec, ...]:
    by_endpoint: dict[tuple[str, int], list[RtuPointSpec]] = {}
    devices = ControllableDevice.objects.select_related("line__from_bus", "line__to_bus", "bus").order_by("ioa")
    for device in devices:
        line = (device.line.from_bus.number, device.line.to_bus.number) if device.line is not None else None
        point = RtuPointSpec(
            name=device.name,
            kind=device.kind,  # type: ignore[arg-type]
            common_address=device.common_address,
            ioa=device.ioa,
            status_ioa=device.status_ioa,
            line=line,
            bus=device.bus.number if device.bus is not None else None,
            load_mw=device.load_mw,
            enabled=device.enabled,
        )
        by_endpoint.setdefault((device.iec104_host, device.iec104_port), []).append(point)
    return tuple(RtuSpec(host, port, tuple(points)) for (host, port), points in sorted(by_endpoint.items()))


def pending_requests() -> list[SimulatorRequest]:
    """Return the requests not yet applied, oldest first."""
    return list(SimulatorRequest.objects.filter(status=SimulatorRequest.Status.PENDING).order_by("requested_at"))


def finish_request(request: SimulatorRequest, *, ok: bool, message: str, run_id: str) -> None:
    """Record the outcome of a request."""
    request.status = SimulatorRequest.Status.APPLIED if ok else SimulatorRequest.Status.FAILED
    request.applied_at = timezone.now()
    request.message = message[:2000]
    request.run_id = run_id
    request.save(update_fields=["status", "applied_at", "message", "run_id"])


async def apply_request(fleet: Fleet, request: SimulatorRequest) -> str:
    """Carry out one request on the running fleet; return a short description (raises on failure)."""
    params = dict(request.params or {})
    action = request.action
    if action == SimulatorRequest.Action.SCENARIO:
        at_s = params.pop("at_s", None)
        # Started a little ahead so that the simulator integrates its switching before the frames are due.
        future = fleet.sim.schedule(request.scenario, at_s, lead_s=SCENARIO_LEAD_S, **params)
        plan = await asyncio.wait_for(asyncio.wrap_future(future), 10.0)
        return f"{plan.name} at t={plan.t_start_s:.3f} s"
    key, _, path = request.target.partition(":")
    target: str | int = int(key) if key.strip().isdigit() else key.strip()
    stream = fleet.stream(target)
    if action == SimulatorRequest.Action.STREAM_RESTART:
        await stream.restart()
        return f"restarted {stream.spec.name}"
    if action == SimulatorRequest.Action.STREAM_RECONFIGURE:
        await stream.reconfigure(**params)
        return f"reconfigured {stream.spec.name}: CFGCNT {stream.meter.cfgcnt}"
    if action == SimulatorRequest.Action.PMU_FLAGS:
        flags = stream.flags(target if isinstance(target, int) else None)
        for name, value in params.items():
            if not hasattr(flags, name):
                raise ValueError(f"unknown flag {name}")
            setattr(flags, name, bool(value))
        return f"flags of {stream.spec.name}: {flags}"
    if action == SimulatorRequest.Action.PATH:
        stream.set_path(path.strip() or next(iter(stream.paths)), **params)
        return f"path {path or 'first'} of {stream.spec.name}: {params}"
    raise ValueError(f"unknown action {action}")


# --- scenarios requested from the dashboard ------------------------------------------------------

#: What a parameter left empty means in the IEEE 39-bus demo case (the planners' None defaults).
CASE_PRESETS = {
    "generator": "GENROU_5 (bus 34)",
    "line": "Line_21 (16-17)",
    "bus": "16",
    "load": "PQ_11 (step) / PQ_13 (forced oscillation)",
    "area_a": "1",
    "area_b": "2",
    "area": "2",
    "trip_line": "none (angle separation: Line_33)",
    "cut_lines": "Line_32+Line_33",
}
#: Scenarios a page may start (ambient noise is always on in the demo).
REQUESTABLE_EXCLUDED = ("ambient",)


class ScenarioRequestError(ValueError):
    """A scenario request that cannot be queued; the message says why."""


def scenario_catalogue() -> list[dict[str, Any]]:
    """Return each startable scenario with its parameters (name, default, what an empty value means)."""
    import inspect

    from wams.simulator.engine.scenarios import SCENARIOS

    catalogue = []
    for name in sorted(SCENARIOS):
        if name in REQUESTABLE_EXCLUDED:
            continue
        planner = SCENARIOS[name]
        params = []
        for parameter in list(inspect.signature(planner).parameters.values())[2:]:
            default = parameter.default
            params.append(
                {
                    "name": parameter.name,
                    "default": "" if default is None else default,
                    "hint": CASE_PRESETS.get(parameter.name, "") if default is None else "",
                }
            )
        doc = (planner.__doc__ or "").strip().splitlines()
        catalogue.append(
            {"name": name, "label": name.replace("_", " "), "doc": doc[0] if doc else "", "params": params}
        )
    return catalogue


def check_scenario_request(name: str, raw: dict[str, str]) -> dict[str, Any]:
    """Validate a scenario name and its parameters as typed in a form; return the parameters to send."""
    catalogue = {item["name"]: item for item in scenario_catalogue()}
    if name not in catalogue:
        raise ScenarioRequestError(f"Unknown scenario {name!r}; known: {', '.join(sorted(catalogue))}.")
    known = {param["name"]: param for param in catalogue[name]["params"]}
    params: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in known:
            raise ScenarioRequestError(f"Scenario {name} has no parameter {key!r}.")
        text = text.strip()
        if not text:
            continue
        if len(text) > 100:
            raise ScenarioRequestError(f"Parameter {key} is too long.")
        value = _typed(text)
        default = known[key]["default"]
        if isinstance(default, int | float) and not isinstance(value, int | float):
            raise ScenarioRequestError(f"Parameter {key} must be a number, not {text!r}.")
        params[key] = value
    return params


def _typed(text: str) -> int | float | str:
    """Read a typed parameter as an int, a float or else the text (as `--scenario k=v` does)."""
    for kind in (int, float):
        try:
            return kind(text)  # type: ignore[no-any-return]
        except ValueError:
            continue
    return text


def request_scenario(name: str, raw_params: dict[str, str], *, requested_by: str = "") -> SimulatorRequest:
    """Queue a scenario for the running simulator (it polls about once a second); checked first."""
    params = check_scenario_request(name, raw_params)
    request = SimulatorRequest.objects.create(action=SimulatorRequest.Action.SCENARIO, scenario=name, params=params)
    logger.info("scenario %s %s requested by %s (request %s)", name, params, requested_by or "?", request.pk)
    return request


def simulator_status(now: Any = None) -> dict[str, Any]:
    """Tell whether a simulator seems to pick requests up: the last applied one and the oldest pending."""
    now = now or timezone.now()
    last = (
        SimulatorRequest.objects.exclude(status=SimulatorRequest.Status.PENDING)
        .exclude(applied_at=None)
        .order_by("-applied_at")
        .first()
    )
    pending = SimulatorRequest.objects.filter(status=SimulatorRequest.Status.PENDING).order_by("requested_at")
    oldest = pending.first()
    waiting_s = (now - oldest.requested_at).total_seconds() if oldest is not None else 0.0
    return {
        "last_applied": last,
        "pending": pending.count(),
        "oldest_pending_s": waiting_s,
        # simulate_grid polls every second: a request waiting much longer means none is running.
        "stalled": oldest is not None and waiting_s > 10.0,
    }
