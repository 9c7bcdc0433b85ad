"""Run the real-time simulator in its own process and mirror its trajectory here.

ANDES steps in Python; in the same process as the device servers it holds the interpreter lock
for milliseconds at a time and every socket call of the servers waits for it. In a child process it
uses the machine's second core, and the servers only read a local copy of the trajectory.
`SimulatorProcess` offers the same surface as `RealTimeSimulator` that the fleet uses.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from wams.simulator.engine.gridinfo import GridInfo
from wams.simulator.engine.network import BranchModel
from wams.simulator.engine.realtime import CATCH_UP_TIMEOUT_S, GridSample, RealTimeSimulator, ScheduledScenario
from wams.simulator.engine.trajectory import BoolArray, FloatArray, TrajectoryBuffer

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 120.0
#: Niceness change of the child: it needs little CPU (~0.1 core) but needs it on time.
CHILD_NICE_DELTA = -5


def _renice(delta: int) -> None:
    """Change this process's niceness by `delta` where allowed (raising priority needs privilege)."""
    if delta == 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(-20, min(19, os.getpriority(os.PRIO_PROCESS, 0) + delta)))
    except OSError as exc:
        logger.info("simulator process keeps its priority: %s", exc)


def _child(conn: Connection, options: dict[str, Any], nice_delta: int = 0) -> None:
    """Child process: run a `RealTimeSimulator`, stream its chunks, answer calls."""
    # Ctrl-C reaches the whole process group; the parent decides when the child stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _renice(nice_delta)
    sim = RealTimeSimulator(**options)
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    send(("meta", sim.grid, sim.run_id, sim.truth_path, sim.dyn.current_state()))
    sim.on_chunk = lambda chunk: send(("chunk", chunk))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        kind, call_id, *rest = message
        if kind == "stop":
            sim.stop()
            send(("reply", call_id, True, None))
            break
        if kind in ("call", "schedule"):
            # Answered when the simulation thread gets to it (after `start`, at a step boundary).
            future = sim.call(rest[0], *rest[1]) if kind == "call" else sim.schedule(rest[0], rest[1], **rest[2])
            future.add_done_callback(functools.partial(_reply, send, call_id))
            continue
        try:
            if kind == "start":
                sim.start()
                result: Any = True
            elif kind == "inventory":
                sim.set_inventory(rest[0], rest[1])
                result = True
            elif kind == "stats":
                result = {"late_chunks": sim.late_chunks, "restarts": sim.restarts, "t_s": sim.t_s}
            else:
                raise ValueError(f"unknown request {kind}")
            send(("reply", call_id, True, result))
        except Exception as exc:  # noqa: BLE001 - the caller's future carries it
            send(("reply", call_id, False, exc))


def _reply(send: Callable[[tuple[Any, ...]], None], call_id: int, done: Future[Any]) -> None:
    error = done.exception()
    send(("reply", call_id, error is None, error if error is not None else done.result()))


class SimulatorProcess:
    """A `RealTimeSimulator` in a child process, used like the in-process one.

    The constructor starts the process and waits for the case to load; `start()` starts its clock.
    The child's niceness is this process's plus `nice_delta` (negative: scheduled sooner; left as is
    without the privilege), so a busy machine does not starve the integration.
    """

    def __init__(
        self,
        case: str = "ieee39",
        *,
        speed: float = 1.0,
        lookahead_s: float = 0.3,
        epoch_utc_s: float | None = None,
        truth_dir: Path | None = None,
        record_dir: Path | None = None,
        run_id: str | None = None,
        nice_delta: int = CHILD_NICE_DELTA,
    ) -> None:
        """Spawn the simulator process and mirror its first state."""
        self.speed = speed
        self.epoch_utc_s = float(math.ceil(time.time())) if epoch_utc_s is None else epoch_utc_s
        options = {
            "case": case,
            "speed": speed,
            "lookahead_s": lookahead_s,
            "epoch_utc_s": self.epoch_utc_s,
            "truth_dir": truth_dir,
            "record_dir": record_dir,
            "run_id": run_id,
        }
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(
            target=_child, args=(child_conn, options, nice_delta), name="grid-simulation", daemon=True
        )
        self._process.start()
        if not self._conn.poll(STARTUP_TIMEOUT_S):
            self._process.kill()
            raise RuntimeError("the simulator process did not start")
        _kind, grid, run_id_, truth_path, first = self._conn.recv()
        self.grid: GridInfo = grid
        self.run_id: str = run_id_
        self.truth_path: Path | None = truth_path
        self.network = BranchModel(grid)
        self.buffer = TrajectoryBuffer(len(grid.bus_ids), len(grid.line_ids), len(grid.generator_ids))
        self.buffer.append(first)
        self._ids = itertools.count()
        self._pending: dict[int, Future[Any]] = {}
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="grid-simulation-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == "chunk":
                self.buffer.append(message[1])
            elif message[0] == "reply":
                _kind, call_id, ok, result = message
                future = self._pending.pop(call_id, None)
                if future is not None:
                    if ok:
                        future.set_result(result)
                    else:
                        future.set_exception(result)
        for future in self._pending.values():
            future.set_exception(ConnectionError("simulator process ended"))
        self._pending.clear()

    def _request(self, kind: str, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        call_id = next(self._ids)
        self._pending[call_id] = future
        with self._send_lock:
            self._conn.send((kind, call_id, *args))
        return future

    # ------------------------------------------------------------------ RealTimeSimulator surface

    def start(self) -> None:
        """Start the simulation clock in the child; return once it leads the wall clock."""
        self._request("start").result(timeout=CATCH_UP_TIMEOUT_S + 10.0)

    def stop(self) -> None:
        """Stop the child (ground truth written) and wait for it."""
        if self._process.is_alive():
            with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                self._request("stop").result(timeout=10.0)
        self._process.join(timeout=10.0)
        if self._process.is_alive():
            self._process.kill()

    def sim_time_at(self, utc_s: float) -> float:
        """Return the simulated time stamped `utc_s`."""
        return (utc_s - self.epoch_utc_s) * self.speed

    def utc_at(self, t_s: float) -> float:
        """Return the UTC seconds stamped on simulated time `t_s`."""
        return self.epoch_utc_s + t_s / self.speed

    def sample_utc(self, utc_s: FloatArray) -> GridSample:
        """Return the grid at instants `utc_s` (k,) from the mirrored trajectory (unsimulated rows flagged)."""
        utc = np.atleast_1d(np.asarray(utc_s, dtype=np.float64))
        snap = self.buffer.sample((utc - self.epoch_utc_s) * self.speed)
        i_from, i_to = self.network.currents_pu(snap.bus_voltage_pu, snap.line_closed)
        return GridSample(utc_s=utc, snapshot=snap, line_current_from_pu=i_from, line_current_to_pu=i_to)

    def call(self, method: str, *args: Any) -> Future[Any]:
        """Call `GridDynamics.<method>(*args)` in the child at its next step boundary."""
        return self._request("call", method, args)

    def schedule(
        self, name: str, at_s: float | None = None, *, lead_s: float = 0.0, **params: Any
    ) -> Future[ScheduledScenario]:
        """Plan scenario `name` at run time `at_s` (None: `lead_s` after the run's present time)."""
        return self._request("schedule", name, at_s, {**params, "lead_s": lead_s})

    def set_inventory(self, pmus: list[dict[str, Any]], rtus: list[dict[str, Any]]) -> None:
        """Record the served fleet in the ground truth."""
        self._request("inventory", pmus, rtus).result(timeout=10.0)

    def stats(self) -> dict[str, Any]:
        """Return the child's counters (late chunks, restarts, simulated time)."""
        return dict(self._request("stats").result(timeout=10.0))

    def latest_line_closed(self) -> BoolArray:
        """Return the line status at the newest simulated instant, (n_line,)."""
        return self.buffer.sample(np.array([self.buffer.end_s])).line_closed[0]


#: Either simulator: in this process (tests, benchmarks of the engine) or in a child process (serving).
Simulator = RealTimeSimulator | SimulatorProcess
