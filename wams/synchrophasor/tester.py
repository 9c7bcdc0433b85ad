"""Connection tester: fetch header and configuration, stream K frames, measure the link."""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from wams.synchrophasor.frames import ConfigFrame, DataFrame
from wams.synchrophasor.transport.client import ClientTransport, PdcClient


@dataclass
class LinkReport:
    """What a connection test measured; times in seconds or milliseconds as named."""

    host: str
    port: int
    idcode: int
    transport: str
    connected: bool = False
    error: str | None = None
    header: str | None = None
    stations: list[str] = field(default_factory=list)
    data_rate: int | None = None
    frames_requested: int = 0
    frames_received: int = 0
    duration_s: float = 0.0
    measured_rate_hz: float | None = None
    configured_rate_hz: float | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    gaps: int = 0
    missing_frames: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    late_frames: int = 0
    late_after_ms: float = 0.0
    bad_frames: dict[str, int] = field(default_factory=dict)
    stat_problems: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return asdict(self)


def analyse_frames(
    report: LinkReport, config: ConfigFrame, received: list[tuple[float, DataFrame]], late_after_ms: float
) -> None:
    """Fill rate, latency, gaps, duplicates, late frames and STAT problems from (arrival_s, frame)."""
    report.frames_received = len(received)
    report.late_after_ms = late_after_ms
    report.configured_rate_hz = config.rate_hz
    if not received:
        return
    arrivals = np.array([a for a, _ in received])  # (n,) s since 1970
    ticks = np.array([f.soc * config.time_base + f.fraction for _, f in received], dtype=np.int64)  # (n,)
    stamps = np.array([f.timestamp_s for _, f in received])  # (n,) s
    latency_ms = (arrivals - stamps) * 1e3
    report.duration_s = float(arrivals[-1] - arrivals[0])
    if len(received) > 1 and report.duration_s > 0:
        report.measured_rate_hz = (len(received) - 1) / report.duration_s
    report.latency_ms = {
        "min": float(latency_ms.min()),
        "mean": float(latency_ms.mean()),
        "p50": float(np.percentile(latency_ms, 50)),
        "p95": float(np.percentile(latency_ms, 95)),
        "max": float(latency_ms.max()),
    }
    report.late_frames = int((latency_ms > late_after_ms).sum())
    steps = np.diff(ticks)
    report.duplicates = int((steps == 0).sum())
    report.out_of_order = int((steps < 0).sum())
    if config.rate_hz > 0:
        period_ticks = config.time_base / config.rate_hz
        missed = np.round(steps[steps > 0] / period_ticks).astype(np.int64) - 1
        report.gaps = int((missed > 0).sum())
        report.missing_frames = int(missed[missed > 0].sum())
    problems: dict[str, int] = {}
    for _, frame in received:
        for pmu in frame.pmus:
            flags = pmu.stat_flags
            if flags.data_error:
                problems["data_error"] = problems.get("data_error", 0) + 1
            if not flags.pmu_sync:
                problems["sync_lost"] = problems.get("sync_lost", 0) + 1
            if flags.config_change:
                problems["config_change"] = problems.get("config_change", 0) + 1
    report.stat_problems = problems


async def probe_link(
    host: str,
    port: int,
    idcode: int,
    *,
    frames: int = 100,
    udp_port: int | None = None,
    transport: ClientTransport | None = None,
    ssl: ssl_module.SSLContext | None = None,
    timeout_s: float = 5.0,
    late_after_ms: float = 1000.0,
) -> LinkReport:
    """Connect like a PDC, fetch header and CFG-2, receive `frames` data frames, and report.

    With `udp_port` the data is expected by UDP on that local port (hybrid: commands on TCP).
    """
    mode: ClientTransport = transport or ("hybrid" if udp_port is not None else "tcp")
    report = LinkReport(host, port, idcode, mode, frames_requested=frames)
    client = PdcClient(
        host,
        port,
        idcode,
        transport=mode,
        udp_port=udp_port or 0,
        ssl=ssl,
        timeout_s=timeout_s,
    )
    received: list[tuple[float, DataFrame]] = []
    try:
        config = await client.connect()
        report.connected = True
        report.header = client.header.text if client.header is not None else None
        report.stations = [p.station_name for p in config.pmus]
        report.data_rate = config.data_rate
        await client.start()
        started = time.monotonic()
        budget_s = timeout_s + frames / max(config.rate_hz, 1e-3) * 2
        while len(received) < frames and time.monotonic() - started < budget_s:
            received.append(await client.receive(timeout_s))
    except (OSError, TimeoutError, ConnectionError, asyncio.CancelledError) as exc:
        report.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    finally:
        await client.close()
    report.bad_frames = dict(client.rejected)
    if client.config is not None:
        analyse_frames(report, client.config, received, late_after_ms)
    return report
