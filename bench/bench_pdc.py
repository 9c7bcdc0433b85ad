"""Benchmark the pdc: ingest + align throughput, offline and live over loopback sockets.

offline: pre-encoded data frames of N single-PMU streams are decoded (the codec's per-frame path the
    links use) and pushed through the data path (aligner, blocks, live buffer, snapshot views) as
    fast as the CPU allows -> frames/s.
live: a replayer subprocess serves N PMUs (pre-encoded frames, wall-clock instants) at R fps over TCP;
    the concentrator (no database: specs injected, link states and live updates discarded) ingests
    them for S seconds -> received vs sent, pdc CPU share, release delay of the snapshots.

    python bench/bench_pdc.py offline --pmus 10 50 100 --rates 30 60
    python bench/bench_pdc.py live --pmus 10 50 100 --rates 30 60 --seconds 10 [--event-loop asyncio]

Both modes measure the data path alone: the snapshot handlers the apps register at start-up (live
detection, countermeasure schemes; they need the database) are set aside during a run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from wams.pdc.concentrator import DataPath, DataPathOptions  # noqa: E402
from wams.pdc.link import Link  # noqa: E402
from wams.pdc.livefeed import SnapshotView  # noqa: E402
from wams.pdc.reports import LinkOptions, State  # noqa: E402
from wams.pdc.runner import Concentrator, PdcOptions, freeze_startup_objects, run_event_loop  # noqa: E402
from wams.pdc.sink import MemorySink  # noqa: E402
from wams.pdc.specs import PathSpec, PmuSpec, StreamSpec  # noqa: E402
from wams.synchrophasor import (  # noqa: E402
    Command,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    PhasorChannel,
    PmuConfig,
    PmuData,
    StreamReader,
    crc_ccitt_rows,
    decode_frame,
    encode_frame,
)

N_PHASORS = 10  # float polar phasors per PMU, as in the benchmark


class SnapshotTally:
    """A snapshot handler that keeps each snapshot's release delay and completeness, not the snapshot.

    Keeping every snapshot would keep every sample alive and slow the garbage collector down.
    """

    def __init__(self) -> None:
        self.delays_ms: list[float] = []
        self.complete: list[bool] = []

    def __call__(self, view: SnapshotView) -> None:
        """Record one released snapshot."""
        self.delays_ms.append((view.snapshot.released_s - view.snapshot.first_arrival_s) * 1e3)
        self.complete.append(bool(view.present.all()))

    def __len__(self) -> int:
        """Return how many snapshots were recorded."""
        return len(self.complete)

    def clear(self) -> None:
        """Forget what was recorded."""
        self.delays_ms.clear()
        self.complete.clear()


def set_aside_app_handlers() -> None:
    """Unregister the snapshot handlers installed by the apps (they query the database per snapshot)."""
    from wams.pdc import hooks

    for handler in hooks.snapshot_handlers():
        hooks.unregister_snapshot_handler(handler)


def pmu_config(idcode: int, rate_fps: int, pmus_per_stream: int = 1) -> ConfigFrame:
    """Return the CFG-2 of one stream of 10 float polar phasors per PMU."""
    blocks = [
        PmuConfig(
            station_name=f"PMU{idcode}-{k}",
            idcode=idcode if pmus_per_stream == 1 else 10_000 + (idcode - 1000) * pmus_per_stream + k,
            phasor_float=True,
            polar=True,
            freq_float=True,
            analog_float=True,
            phasors=[PhasorChannel(f"P{i}", "V" if i == 0 else "A") for i in range(N_PHASORS)],
        )
        for k in range(pmus_per_stream)
    ]
    return ConfigFrame(idcode=idcode, time_base=1_000_000, data_rate=rate_fps, pmus=blocks)


def measurements(config: ConfigFrame) -> list[PmuData]:
    """Return one instant of plausible measurements."""
    return [
        PmuData(stat=0, phasors=np.full(N_PHASORS, 199_000.0 + 0j), frequency_hz=60.0, rocof_hz_per_s=0.0)
        for _ in config.pmus
    ]


def stream_spec(k: int, config: ConfigFrame, port: int) -> StreamSpec:
    """Return the spec of fleet stream k."""
    pmus = tuple(
        PmuSpec(id=b.idcode, idcode=b.idcode, station_name=b.station_name, base_voltage_v=199_185.0)
        for b in config.pmus
    )
    path = PathSpec(id=k + 1, name="loopback", host="127.0.0.1", port=port)
    return StreamSpec(k + 1, f"S{k}", config.idcode, config.data_rate, paths=(path,), pmus=pmus)


# offline -------------------------------------------------------------------------------------


def offline(n_pmus: int, rate_fps: int, seconds: float, repeat: int = 3, pmus_per_stream: int = 1) -> dict[str, Any]:
    """Decode and align `seconds` of N PMUs' streams as fast as possible (best of `repeat`)."""
    n_streams = n_pmus // pmus_per_stream
    configs = [pmu_config(1000 + k, rate_fps, pmus_per_stream) for k in range(n_streams)]
    specs = [stream_spec(k, config, 0) for k, config in enumerate(configs)]
    t0 = 1_700_000_000
    n_instants = int(seconds * rate_fps)
    raw = [
        [
            encode_frame(
                DataFrame(c.idcode, t0 + i // rate_fps, (i % rate_fps) * 1_000_000 // rate_fps, measurements(c)), c
            )
            for c in configs
        ]
        for i in range(n_instants)
    ]
    from wams.pdc import hooks

    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        sink = MemorySink()
        data = DataPath(DataPathOptions(wait_time_ms=100.0, block_seconds=5.0), sink.blocks.append)
        data.set_streams(specs)
        links = []
        for spec, config in zip(specs, configs, strict=True):
            link = Link(spec, data, LinkOptions())
            link.state = State.STREAMING
            link._adopt(config)  # what a session does once the configuration arrived
            links.append(link)
        views = SnapshotTally()
        hooks.register_snapshot_handler(views)
        started, cpu_started = time.perf_counter(), time.process_time()
        for i, frames in enumerate(raw):
            arrival = t0 + i / rate_fps + 0.005
            for link, config, frame_bytes in zip(links, configs, frames, strict=True):
                frame = decode_frame(frame_bytes, config)
                assert isinstance(frame, DataFrame)
                data.on_frame(link, arrival, frame.soc * 1_000_000 + frame.fraction, frame)
        data.flush(t0 + seconds + 1)
        best_wall = min(best_wall, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - cpu_started)
        hooks.unregister_snapshot_handler(views)
        assert sum(len(b) for b in sink.blocks) == n_instants * n_pmus  # every sample in exactly one block
        assert len(views) == n_instants and all(views.complete)
    frames_total = n_instants * n_streams
    return {
        "streams": n_streams,
        "pmus": n_pmus,
        "rate_fps": rate_fps,
        "frames": frames_total,
        "frames_per_s": frames_total / best_wall,
        "pmu_samples_per_s": frames_total * pmus_per_stream / best_wall,
        "cpu_us_per_pmu_sample": best_cpu / (frames_total * pmus_per_stream) * 1e6,
        "one_core_pct_at_rate": 100 * best_cpu / seconds,
    }


# live ----------------------------------------------------------------------------------------


class Replayer:
    """A fleet of streams answering CFG-2/START/STOP, sending pre-encoded frames at wall-clock instants.

    All streams share one layout (their IDCODEs differ), so a whole second of frames of every stream is
    stamped and CRC'd in one vectorised step: the fleet costs little CPU and never skips an instant.
    """

    def __init__(self, n_streams: int, rate_fps: int, pmus_per_stream: int) -> None:
        self.rate = rate_fps
        self.configs = [pmu_config(1000 + k, rate_fps, pmus_per_stream) for k in range(n_streams)]
        self.templates = np.array(
            [
                np.frombuffer(encode_frame(DataFrame(c.idcode, 0, 0, measurements(c)), c), dtype=np.uint8)
                for c in self.configs
            ]
        )
        self.subscribers: dict[int, asyncio.StreamWriter] = {}
        self.sent = 0
        self.max_lag_ms = 0.0
        # Per stream: frames sent and the first/last instant sent (us), for loss checks over a window.
        self.sent_per_stream = np.zeros(n_streams, dtype=np.int64)
        self.first_us = np.full(n_streams, -1, dtype=np.int64)
        self.last_us = np.full(n_streams, -1, dtype=np.int64)

    def second(self, soc: int) -> np.ndarray:
        """Return the frames of one second -> (rate, n_streams, frame_size) uint8."""
        n, size = self.templates.shape
        rows = np.broadcast_to(self.templates, (self.rate, n, size)).copy()
        rows[:, :, 6:10] = np.frombuffer(soc.to_bytes(4, "big"), dtype=np.uint8)
        fracsec = (np.arange(self.rate, dtype=np.int64) * 1_000_000 // self.rate).astype(">u4")
        rows[:, :, 10:14] = fracsec.view(np.uint8).reshape(self.rate, 1, 4)
        crc = crc_ccitt_rows(rows.reshape(-1, size)[:, :-2]).reshape(self.rate, n)
        rows[:, :, -2] = crc >> 8
        rows[:, :, -1] = crc & 0xFF
        return rows

    async def serve(self, k: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the commands of one connection to stream k."""
        stream = StreamReader()
        try:
            while chunk := await reader.read(4096):
                for raw in stream.feed(chunk):
                    frame = decode_frame(raw)
                    if not isinstance(frame, CommandFrame):
                        continue
                    if frame.command == Command.SEND_CFG2:
                        writer.write(encode_frame(self.configs[k]))
                    elif frame.command == Command.START:
                        self.subscribers[k] = writer
                    elif frame.command == Command.STOP:
                        self.subscribers.pop(k, None)
        except (ConnectionError, OSError):
            pass
        finally:
            self.subscribers.pop(k, None)
            writer.close()

    def _count(self, streams: list[int], instant_us: int) -> None:
        """Count one frame sent to each of `streams` at `instant_us`."""
        index = np.asarray(streams, dtype=np.intp)
        self.sent_per_stream[index] += 1
        self.last_us[index] = instant_us
        self.first_us[index[self.first_us[index] < 0]] = instant_us

    async def tick(self) -> None:
        """Send every subscribed stream its frame at each reporting instant."""
        soc = int(time.time()) + 1
        frames = self.second(soc)
        while True:
            for index in range(self.rate):
                target = soc + index / self.rate
                delay = target - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    self.max_lag_ms = max(self.max_lag_ms, -delay * 1e3)
                subscribed = list(self.subscribers.items())
                for k, writer in subscribed:
                    writer.write(frames[index, k].tobytes())
                    self.sent += 1
                if subscribed:
                    self._count([k for k, _ in subscribed], soc * 1_000_000 + index * 1_000_000 // self.rate)
                if index == 0:
                    upcoming = self.second(soc + 1)
            soc += 1
            frames = upcoming


async def serve_fleet(n_streams: int, rate_fps: int, pmus_per_stream: int) -> None:
    """Serve the fleet until stdin closes; print the ports as JSON first, the totals last."""
    replayer = Replayer(n_streams, rate_fps, pmus_per_stream)
    servers = []
    for k in range(n_streams):
        server = await asyncio.start_server(functools.partial(replayer.serve, k), "127.0.0.1", 0)
        servers.append(server)
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    ticker = asyncio.create_task(replayer.tick())
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    ticker.cancel()
    per_stream = {
        "sent": replayer.sent_per_stream.tolist(),
        "first_us": replayer.first_us.tolist(),
        "last_us": replayer.last_us.tolist(),
    }
    print(json.dumps({"sent": replayer.sent, "max_lag_ms": replayer.max_lag_ms, "per_stream": per_stream}), flush=True)
    for server in servers:
        server.close()


async def live(n_streams: int, rate_fps: int, seconds: float, pmus_per_stream: int = 1) -> dict[str, Any]:
    """Run the concentrator against a fleet subprocess for `seconds`."""
    command = [__file__, "fleet", "--streams", str(n_streams), "--rate", str(rate_fps)]
    command += ["--per-stream", str(pmus_per_stream)]
    fleet = await asyncio.create_subprocess_exec(
        sys.executable, *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert fleet.stdout is not None and fleet.stdin is not None
    ports = json.loads(await fleet.stdout.readline())
    specs = [stream_spec(k, pmu_config(1000 + k, rate_fps, pmus_per_stream), port) for k, port in enumerate(ports)]

    async def load_specs(shard: int, shards: int) -> list[StreamSpec]:
        return specs

    async def nothing(*args: Any) -> list[Any]:
        return []

    async def discard(*args: Any) -> None:
        return None

    options = PdcOptions(data=DataPathOptions(wait_time_ms=100.0), link=LinkOptions(try_cfg3=False), model_poll_s=5.0)
    sink = MemorySink()
    concentrator = Concentrator(
        options=options, sink=sink, load_specs=load_specs, load_outputs=nothing, write_states=nothing, publish=discard
    )
    views = SnapshotTally()
    from wams.pdc import hooks

    hooks.register_snapshot_handler(views)
    stop = asyncio.Event()
    task = asyncio.create_task(concentrator.run(stop))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if concentrator.links and all(link.state is State.STREAMING for link in concentrator.links.values()):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # settle
    received_start = sum(link.frames_received for link in concentrator.links.values())
    stats = concentrator.data.aligner.stats
    late_start, on_time_start = stats.late, stats.on_time
    views.clear()
    cpu_start, wall_start = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu_start, time.monotonic() - wall_start
    received = sum(link.frames_received for link in concentrator.links.values()) - received_start
    late, on_time = stats.late - late_start, stats.on_time - on_time_start
    delays_ms, completes = np.array(views.delays_ms), list(views.complete)
    stop.set()
    await task
    hooks.unregister_snapshot_handler(views)
    fleet.stdin.close()
    totals = json.loads(await fleet.stdout.readline())
    await asyncio.wait_for(fleet.wait(), 20)
    complete = float(np.mean(completes)) if completes else 0.0
    n_pmus = n_streams * pmus_per_stream
    return {
        "streams": n_streams,
        "pmus": n_pmus,
        "rate_fps": rate_fps,
        "expected_frames_per_s": n_streams * rate_fps,
        "received_frames_per_s": received / wall,
        "fleet_max_lag_ms": totals["max_lag_ms"],
        "pdc_cpu_pct_of_one_core": 100 * cpu / wall,
        "snapshots_complete_pct": 100 * complete,
        "release_delay_p50_ms": float(np.percentile(delays_ms, 50)) if len(delays_ms) else float("nan"),
        "release_delay_p99_ms": float(np.percentile(delays_ms, 99)) if len(delays_ms) else float("nan"),
        "late_pct": 100 * late / max(on_time + late, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    off = sub.add_parser("offline")
    off.add_argument("--pmus", type=int, nargs="+", default=[10, 50, 100])
    off.add_argument("--rates", type=int, nargs="+", default=[30, 60])
    off.add_argument("--seconds", type=float, default=10.0)
    off.add_argument("--per-stream", type=int, default=1, help="PMUs per upstream stream (a PDC stream when > 1)")
    on = sub.add_parser("live")
    on.add_argument("--pmus", type=int, nargs="+", default=[10, 50, 100])
    on.add_argument("--rates", type=int, nargs="+", default=[30, 60])
    on.add_argument("--seconds", type=float, default=10.0)
    on.add_argument("--per-stream", type=int, default=1, help="PMUs per upstream stream (a PDC stream when > 1)")
    on.add_argument(
        "--event-loop", choices=("uvloop", "asyncio"), default=settings.WAMS_PDC_EVENT_LOOP, help="the pdc's event loop"
    )
    fl = sub.add_parser("fleet")
    fl.add_argument("--streams", type=int, required=True)
    fl.add_argument("--rate", type=int, required=True)
    fl.add_argument("--per-stream", type=int, default=1)
    args = parser.parse_args()
    if args.mode == "fleet":
        asyncio.run(serve_fleet(args.streams, args.rate, args.per_stream))
        return
    set_aside_app_handlers()
    freeze_startup_objects()  # as run_pdc does
    rows = []
    for n in args.pmus:
        for rate in args.rates:
            if args.mode == "offline":
                rows.append(offline(n, rate, args.seconds, pmus_per_stream=args.per_stream))
            else:
                run = live(n // args.per_stream, rate, args.seconds, args.per_stream)
                rows.append({**run_event_loop(run, args.event_loop), "event_loop": args.event_loop})
            print(json.dumps(rows[-1]), flush=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print(
            "| "
            + " | ".join(
                f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
                for v in row.values()
            )
            + " |"
        )


if __name__ == "__main__":
    main()
