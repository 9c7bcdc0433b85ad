"""Real-time benchmark of the simulated PMU fleet: do frames leave on schedule?

The fleet (IEEE 39-bus, N single-PMU TCP streams at R fps, ambient load variation) runs in a child
process; this process connects one PDC client per stream and records, per data frame, arrival time
minus time stamp. Real time holds when the median lateness stays below 20 ms, the last fifth of the
run is not later than the first (no growing backlog) and (almost) every frame arrives.

    python bench/bench_simulator.py --pmus 10 --rate 30 --duration 600
    python bench/bench_simulator.py --sweep          # 30 and 60 fps, growing fleets, 60 s each
    python bench/bench_simulator.py --engine         # ANDES stepping speed versus real time
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def serve(n_pmus: int, rate: int, duration_s: float, ports: mp.Queue, cpu: mp.Queue) -> None:
    """Child process: run the fleet (the simulator in its own process), report ports, then CPU used."""
    from wams.simulator.engine.process import SimulatorProcess
    from wams.simulator.fleet import Fleet, synthetic_fleet_spec

    async def main() -> None:
        sim = SimulatorProcess("ieee39")
        sim.schedule("ambient", 0.0)  # taken once the clock starts
        fleet = Fleet(sim, synthetic_fleet_spec(n_pmus, rate_fps=rate))
        await fleet.start()
        ports.put([(s.spec.idcode, s.relays["fibre"].listen_port) for s in fleet.streams])
        start = time.process_time()
        await asyncio.sleep(duration_s + 6.0)
        cpu.put({"cpu_s": time.process_time() - start, "sim_late_chunks": sim.stats()["late_chunks"]})
        await fleet.stop()

    asyncio.run(main())


async def receive(ports: list[tuple[int, int]], duration_s: float) -> np.ndarray:
    """Start every stream and collect (idcode, stamp, lateness) per data frame for `duration_s`.

    A lean receiver (asyncio protocol, header fields only) so the measurement costs little CPU
    next to the fleet on this small machine; the CFG-2 gives TIME_BASE.
    """
    from wams.synchrophasor import Command, CommandFrame, ConfigFrame, StreamReader, decode_frame, encode_frame

    rows: list[tuple[int, float, float]] = []
    loop = asyncio.get_running_loop()

    class Receiver(asyncio.Protocol):
        def __init__(self, idcode: int) -> None:
            self.idcode = idcode
            self.reader = StreamReader()
            self.time_base = 0
            self.ready: asyncio.Future[None] = loop.create_future()

        def data_received(self, data: bytes) -> None:
            now = time.time()
            for raw in self.reader.feed(data):
                kind = (raw[1] >> 4) & 0x7
                if kind == 0 and self.time_base:
                    soc = int.from_bytes(raw[6:10], "big")
                    fraction = int.from_bytes(raw[11:14], "big")
                    stamp = soc + fraction / self.time_base
                    rows.append((self.idcode, stamp, now - stamp))
                elif kind == 3:
                    config = decode_frame(raw)
                    assert isinstance(config, ConfigFrame)
                    self.time_base = config.time_base
                    if not self.ready.done():
                        self.ready.set_result(None)

    transports = []
    for idcode, port in ports:
        transport, protocol = await loop.create_connection(lambda i=idcode: Receiver(i), "127.0.0.1", port)
        transport.write(encode_frame(CommandFrame(idcode, 0, 0, Command.SEND_CFG2)))
        await asyncio.wait_for(protocol.ready, 10.0)
        transport.write(encode_frame(CommandFrame(idcode, 0, 0, Command.START)))
        transports.append(transport)
    await asyncio.sleep(duration_s)
    for transport in transports:
        transport.close()
    return np.array(rows)


def run(n_pmus: int, rate: int, duration_s: float) -> dict[str, float]:
    """Run one fleet size and return its lateness figures."""
    ctx = mp.get_context("spawn")
    ports_q: mp.Queue = ctx.Queue()
    cpu_q: mp.Queue = ctx.Queue()
    child = ctx.Process(target=serve, args=(n_pmus, rate, duration_s, ports_q, cpu_q))
    child.start()
    ports = ports_q.get(timeout=60)
    rows = asyncio.run(receive(ports, duration_s))
    cpu = cpu_q.get(timeout=30)
    child.join(30)
    late_ms = rows[:, 2] * 1000.0
    stamps = rows[:, 1]
    first = late_ms[stamps < stamps.min() + 0.2 * (stamps.max() - stamps.min())]
    last = late_ms[stamps > stamps.max() - 0.2 * (stamps.max() - stamps.min())]
    span = stamps.max() - stamps.min()
    expected = n_pmus * rate * span
    return {
        "pmus": n_pmus,
        "rate_fps": rate,
        "duration_s": round(float(span), 1),
        "frames": int(rows.shape[0]),
        "delivered_pct": round(100.0 * rows.shape[0] / expected, 2),
        "median_late_ms": round(float(np.median(late_ms)), 2),
        "p99_late_ms": round(float(np.percentile(late_ms, 99)), 2),
        "first_fifth_median_ms": round(float(np.median(first)), 2),
        "last_fifth_median_ms": round(float(np.median(last)), 2),
        "fleet_process_cpu_pct": round(100.0 * cpu["cpu_s"] / (duration_s + 6.0), 1),
        "sim_late_chunks": cpu["sim_late_chunks"],
    }


def engine_speed(seconds: float = 60.0) -> dict[str, float]:
    """Return how many simulated seconds the IEEE 39-bus engine steps per wall-clock second."""
    from wams.simulator.engine.realtime import RealTimeSimulator

    sim = RealTimeSimulator("ieee39")
    sim.schedule("ambient", 0.0)
    start = time.perf_counter()
    sim.advance_to(seconds)
    wall = time.perf_counter() - start
    return {"simulated_s": seconds, "wall_s": round(wall, 2), "times_real_time": round(seconds / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pmus", type=int, default=10)
    parser.add_argument("--rate", type=int, default=30)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--engine", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    if args.engine:
        print(json.dumps(engine_speed()))
        return
    if args.sweep:
        for rate, sizes in ((30, (50, 100, 150, 200)), (60, (25, 50, 75, 100))):
            for n in sizes:
                print(json.dumps(run(n, rate, args.duration)), flush=True)
        return
    print(json.dumps(run(args.pmus, args.rate, args.duration)))


if __name__ == "__main__":
    main()
