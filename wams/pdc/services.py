"""The pdc's dealings with the database: what to serve, link states, switching streams on and off."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

from django.db import connections, transaction
from django.db.models import Field, Prefetch
from django.db.models.functions import Mod

from wams import live
from wams.grid.models import Channel, CommunicationPath, Pmu, Stream, phasor0_bus_kv_by_pmu
from wams.pdc.models import LinkState, OutputStream
from wams.pdc.reports import LinkReport, link_payload
from wams.pdc.specs import OutputChannelSpec, OutputPmuSpec, OutputSpec, PathSpec, PmuSpec, StreamSpec

logger = logging.getLogger(__name__)

SQRT3 = math.sqrt(3.0)


def _path_spec(path: CommunicationPath) -> PathSpec:
    return PathSpec(
        id=path.id,
        name=path.name,
        host=path.host,
        port=path.port,
        transport=path.transport,
        udp_port=path.udp_port,
        nominal_latency_ms=path.nominal_latency_ms,
        bandwidth_kbps=path.bandwidth_kbps,
        reliability_pct=path.reliability_pct,
        cost_per_gb=path.cost_per_gb,
        priority=path.priority,
    )


def _channels_query() -> Prefetch:  # type: ignore[type-arg]
    return Prefetch("channels", queryset=Channel.objects.select_related("bus").order_by("kind", "order"))


def load_stream_specs(shard: int = 0, shards: int = 1) -> list[StreamSpec]:
    """Return every stream of a shard (stream id modulo shards), enabled or not, with paths and PMUs.

    The pdc polls this every few seconds: it reads only the phasor-0 bus of each PMU's channels (as
    tuples), not every channel as objects, so a poll of a thousand PMUs stays cheap for the event loop.
    """
    phasor0_kv = phasor0_bus_kv_by_pmu()
    pmus = Pmu.objects.filter(enabled=True).select_related("bus", "substation")
    streams = (
        Stream.objects.annotate(shard_of=Mod("id", shards))
        .filter(shard_of=shard)
        .prefetch_related(
            Prefetch("paths", queryset=CommunicationPath.objects.filter(enabled=True)),
            Prefetch("pmus", queryset=pmus),  # type: ignore[type-var]
        )
        .order_by("id")
    )
    specs: list[StreamSpec] = []
    for stream in streams:
        specs.append(
            StreamSpec(
                id=stream.id,
                name=stream.name,
                idcode=stream.idcode,
                reporting_rate_fps=stream.reporting_rate_fps,
                enabled=stream.enabled,
                tls=stream.tls,
                path_policy=stream.path_policy,
                paths=tuple(_path_spec(p) for p in stream.paths.all()),
                pmus=tuple(
                    PmuSpec(
                        id=p.id,
                        idcode=p.idcode,
                        station_name=p.station_name,
                        base_voltage_v=p.base_voltage_v(phasor0_kv.get(p.id, 0.0)),
                    )
                    for p in stream.pmus.all()
                ),
            )
        )
    return specs


def load_output_specs(shard: int = 0, shards: int = 1) -> list[OutputSpec]:
    """Return the enabled output streams this shard serves (output id modulo shards)."""
    members = Pmu.objects.select_related("stream", "substation").prefetch_related(_channels_query()).order_by("id")
    outputs = (
        OutputStream.objects.filter(enabled=True)
        .annotate(shard_of=Mod("id", shards))
        .filter(shard_of=shard)
        .prefetch_related(Prefetch("pmus", queryset=members))  # type: ignore[type-var]
        .order_by("id")
    )
    specs: list[OutputSpec] = []
    for output in outputs:
        pmus = []
        for pmu in output.pmus.all():
            channels = list(pmu.channels.all())

            def named(kind: str, channels: list[Channel] = channels) -> tuple[OutputChannelSpec, ...]:
                return tuple(
                    OutputChannelSpec(c.name, c.unit if kind == "phasor" else "") for c in channels if c.kind == kind
                )

            pmus.append(
                OutputPmuSpec(
                    id=pmu.id,
                    idcode=pmu.idcode,
                    station_name=pmu.station_name,
                    nominal_hz=pmu.nominal_frequency_hz,
                    phasors=named(Channel.Kind.PHASOR),
                    analogs=named(Channel.Kind.ANALOG),
                    digitals=named(Channel.Kind.DIGITAL),
                    latitude_deg=pmu.substation.latitude,
                    longitude_deg=pmu.substation.longitude,
                    input_rate_fps=pmu.stream.reporting_rate_fps,
                )
            )
        specs.append(
            OutputSpec(
                id=output.id,
                name=output.name,
                idcode=output.idcode,
                host=output.host,
                port=output.port,
                reporting_rate_fps=output.reporting_rate_fps,
                pmus=tuple(pmus),
            )
        )
    return specs


def _timestamp(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


STATE_FIELDS = [
    "state",
    "path_id",
    "shard",
    "rate_fps",
    "latency_ms",
    "frames_received",
    "frames_bad",
    "frames_late",
    "gaps",
    "reconnects",
    "last_frame_at",
    "last_error",
    "updated_at",
]


def _state_values(report: LinkReport, shard: int, path_id: int | None, now: datetime) -> dict[str, object]:
    """Return the LinkState field values of one report (attribute names, as in STATE_FIELDS)."""
    return {
        "state": report.state,
        "path_id": path_id,
        "shard": shard,
        "rate_fps": report.rate_fps,
        "latency_ms": report.latency_ms,
        "frames_received": report.frames_received,
        "frames_bad": report.frames_bad,
        "frames_late": report.frames_late,
        "gaps": report.gaps,
        "reconnects": report.reconnects,
        "last_frame_at": _timestamp(report.last_frame_at_s),
        "last_error": report.last_error[:300],
        "updated_at": now,
    }


def write_link_states(reports: Iterable[LinkReport], shard: int = 0) -> int:
    """Write the reports into LinkState rows (one per stream, created when missing); return rows written.

    The pdc calls this every second for every link: existing rows are updated by one parametrised
    UPDATE run for all rows (`executemany`), since `bulk_update`'s CASE expressions cost the event
    loop's process far more CPU than the database spends on the rows.
    """
    reports = list(reports)
    if not reports:
        return 0
    now = datetime.now(tz=UTC)
    ids = [r.stream_id for r in reports]
    existing_rows = set(LinkState.objects.filter(stream_id__in=ids).values_list("stream_id", flat=True))
    existing_streams = set(Stream.objects.filter(id__in=ids).values_list("id", flat=True))
    existing_paths = set(CommunicationPath.objects.filter(stream_id__in=ids).values_list("id", flat=True))
    fields = [LinkState._meta.get_field(name) for name in STATE_FIELDS]
    assert all(isinstance(field, Field) for field in fields)
    concrete = cast("list[Field[Any, Any]]", fields)
    connection = connections[LinkState.objects.db]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in concrete)
    update_sql = f"UPDATE {quote(LinkState._meta.db_table)} SET {assignments} WHERE {quote('stream_id')} = %s"  # noqa: S608 - names from the model, values as parameters
    updates: list[list[Any]] = []
    to_create: list[LinkState] = []
    for report in reports:
        if report.stream_id not in existing_streams:
            continue  # deleted meanwhile
        path_id = report.path_id if report.path_id in existing_paths else None
        values = _state_values(report, shard, path_id, now)
        if report.stream_id in existing_rows:
            row = [field.get_db_prep_save(values[name], connection) for name, field in zip(STATE_FIELDS, concrete)]
            updates.append([*row, report.stream_id])
        else:
            to_create.append(LinkState(stream_id=report.stream_id, **values))
    with transaction.atomic(using=connection.alias):
        if updates:
            with connection.cursor() as cursor:
                cursor.executemany(update_sql, updates)
        if to_create:
            LinkState.objects.bulk_create(to_create, ignore_conflicts=True)
    return len(updates) + len(to_create)


def mark_stream_switched(sender: object, stream_id: int, enabled: bool, **kwargs: object) -> None:
    """Show a stream switched off as disabled at once (not as a link down) and tell the pages.

    Connected to `wams.grid.services.stream_switched` (sent after commit); the pdc follows the switch
    within a model poll and keeps the state from then on.
    """
    state = LinkState.objects.select_related("stream", "path").filter(stream_id=stream_id).first()
    if state is None:
        return
    if not enabled and state.state != LinkState.State.DISABLED:
        state.state = LinkState.State.DISABLED
        state.rate_fps = 0.0
        state.save(update_fields=["state", "rate_fps", "updated_at"])
    live.publish(live.GROUP_LINKS, live.EVENT_LINK, link_payload(state.report()))
