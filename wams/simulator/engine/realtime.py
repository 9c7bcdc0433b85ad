"""Run a `GridDynamics` locked to wall-clock UTC, a little ahead, with scenarios and commands."""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from wams.simulator.engine import comtrade
from wams.simulator.engine.dynamics import AppliedEvent, GridDynamics, SimulationDivergedError
from wams.simulator.engine.gridinfo import GridInfo
from wams.simulator.engine.modes import system_modes
from wams.simulator.engine.network import BranchModel, current_amperes, voltage_volts
from wams.simulator.engine.scenarios import ScenarioPlan, TimedAction, plan_scenario
from wams.simulator.engine.trajectory import BoolArray, FloatArray, Snapshot, TrajectoryBuffer, TrajectoryChunk
from wams.simulator.engine.truth import TruthRecorder

logger = logging.getLogger(__name__)

#: How long `start` waits for the run to catch up with the wall clock (it starts seconds behind).
CATCH_UP_TIMEOUT_S = 60.0
#: A scenario started "now" begins this far ahead of the run (simulated s), so that its actions can be pre-rolled.
SCENARIO_LEAD_S = 2.0
#: Scheduled actions this close to the wall clock (simulated s) are integrated ahead of time ...
PREROLL_BEFORE_S = 3.0
#: ... through this long after them: a fault's short steps cost more than real time, so they are taken early.
PREROLL_AFTER_S = 1.0


@dataclass
class GridSample:
    """Everything a PMU can measure at given instants, in engineering-ready per-unit form."""

    utc_s: FloatArray  #: (k,) stamp of each instant
    snapshot: Snapshot  #: bus voltages, frequencies, switching state
    line_current_from_pu: np.ndarray  #: (k, n_line) complex, into the line at its from bus
    line_current_to_pu: np.ndarray  #: (k, n_line) complex, into the line at its to bus

    @property
    def simulated(self) -> BoolArray:
        """Return (k,) True where the instant was simulated; False rows are not measurements."""
        return self.snapshot.simulated


@dataclass(frozen=True)
class ScheduledScenario:
    """A scenario accepted by the simulator (run time of its start, its parameters)."""

    name: str
    t_start_s: float
    params: dict[str, Any]


@dataclass(order=True)
class _Pending:
    t_s: float
    seq: int
    action: TimedAction = None  # type: ignore[assignment]
    plan: ScenarioPlan = None  # type: ignore[assignment]
    first: bool = False


def next_stop_s(t_s: float, target_s: float, step_s: float, chunk_s: float) -> float:
    """Return where to integrate to next: the first step boundary at or past `target_s`, within a chunk.

    Times are on the integrator's clock, whose boundaries are multiples of `step_s`. Stopping
    anywhere else makes the integrator take a short step to land there, and a stop every few
    milliseconds costs a full step each (ten times the CPU of stepping on the grid).
    """
    target = math.ceil(target_s / step_s - 1e-9) * step_s
    cap = math.floor((t_s + chunk_s) / step_s + 1e-9) * step_s
    stop = min(target, cap)
    if stop <= t_s + 1e-9:  # off the grid (after an action between boundaries): next boundary
        stop = (math.floor(t_s / step_s + 1e-9) + 1) * step_s
    return stop


class RealTimeSimulator:
    """Keep the simulated grid a little ahead of wall-clock UTC and answer samples at any instant.

    Simulated time t_s = (utc - epoch_utc_s) * speed. A worker thread keeps the integration at least
    `lookahead_s` (wall seconds) beyond now, stepping on the step grid as soon as the lead falls
    below it; scenario actions fall exactly on their times; commands submitted with `submit` run at
    the next step boundary (at most about `lookahead_s` + one step after now in simulated time).
    `advance_to` drives the same machinery without a clock (tests, benchmarks). Instants not yet
    simulated are never presented as measured: `sample_utc` flags them (`GridSample.simulated`).
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
        step_s: float = 1.0 / 32.0,
        chunk_s: float = 0.125,
        record_rate_hz: float | None = None,
    ) -> None:
        """Load the case and prepare the run (the clock starts with `start`)."""
        self.case = case
        self.speed = speed
        self.lookahead_s = lookahead_s
        self.step_s = step_s
        self.chunk_s = chunk_s
        self.dyn = GridDynamics(case, step_s=step_s, max_chunk_s=chunk_s)
        self.grid: GridInfo = self.dyn.info()
        self.network = BranchModel(self.grid)
        self.on_chunk: Callable[[TrajectoryChunk], None] | None = None
        self.buffer = TrajectoryBuffer(len(self.dyn.bus_ids), len(self.dyn.line_ids), len(self.dyn.generator_ids))
        self.buffer.append(self.dyn.current_state())
        self.epoch_utc_s = float(math.ceil(time.time())) if epoch_utc_s is None else epoch_utc_s
        self.run_id = (
            run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.epoch_utc_s)) + "-" + uuid.uuid4().hex[:6]
        )
        truth_path = truth_dir / f"{self.run_id}.json" if truth_dir is not None else None
        self.truth = TruthRecorder(truth_path, run_id=self.run_id, case=case, epoch_utc_s=self.epoch_utc_s, speed=speed)
        self.record_dir = record_dir or (truth_dir / "comtrade" if truth_dir is not None else None)
        self.record_rate_hz = record_rate_hz or 32.0 * self.dyn.nominal_hz
        self._offset_s = 0.0  # run time minus dynamics time (grows after a restart)
        self._actions: list[_Pending] = []
        self._seq = itertools.count()
        self._commands: queue.Queue[tuple[Callable[[GridDynamics], Any], Future[Any]]] = queue.Queue()
        self._windows: list[tuple[float, float, ScenarioPlan]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # a command arrived or the run stops: look now
        self._leading = threading.Event()  # the run is (or was) ahead of the wall clock
        self._lock = threading.RLock()
        self.restarts = 0
        self.late_chunks = 0
        self.truth.modes(0.0, system_modes(self.dyn), "initial")

    # ------------------------------------------------------------------------------- clocks

    @property
    def t_s(self) -> float:
        """Return the simulated run time reached, in seconds."""
        return self.dyn.t_s + self._offset_s

    def sim_time_at(self, utc_s: float) -> float:
        """Return the simulated time stamped `utc_s`."""
        return (utc_s - self.epoch_utc_s) * self.speed

    def utc_at(self, t_s: float) -> float:
        """Return the UTC seconds stamped on simulated time `t_s`."""
        return self.epoch_utc_s + t_s / self.speed

    # --------------------------------------------------------------------------- scheduling

    def schedule(
        self, name: str, at_s: float | None = None, *, lead_s: float = 0.0, **params: Any
    ) -> Future[ScheduledScenario]:
        """Plan scenario `name` at run time `at_s` (None: `lead_s` after the run's present time); thread-safe."""

        def plan(dyn: GridDynamics) -> ScheduledScenario:
            start = self.t_s + lead_s if at_s is None else max(at_s, self.t_s)
            shifted = self._enqueue_plan(plan_scenario(dyn, name, start - self._offset_s, **params))
            return ScheduledScenario(shifted.name, shifted.t_start_s, dict(shifted.params))

        return self.submit(plan)

    def call(self, method: str, *args: Any) -> Future[Any]:
        """Call `GridDynamics.<method>(*args)` at the next step boundary (e.g. "set_line_status")."""
        return self.submit(lambda dyn: getattr(dyn, method)(*args))

    def set_inventory(self, pmus: list[dict[str, Any]], rtus: list[dict[str, Any]]) -> None:
        """Record the served fleet in the ground truth."""
        self.truth.set_inventory(pmus, rtus)

    @property
    def truth_path(self) -> Path | None:
        """Return where the ground truth is written."""
        return self.truth.path

    def latest_line_closed(self) -> BoolArray:
        """Return the line status at the newest simulated instant, (n_line,)."""
        return self.buffer.sample(np.array([self.buffer.end_s])).line_closed[0]

    def _enqueue_plan(self, plan: ScenarioPlan) -> ScenarioPlan:
        shifted = replace(
            plan,
            t_start_s=plan.t_start_s + self._offset_s,
            actions=[replace(a, t_s=a.t_s + self._offset_s) for a in plan.actions],
            record_window_s=(
                None
                if plan.record_window_s is None
                else (plan.record_window_s[0] + self._offset_s, plan.record_window_s[1] + self._offset_s)
            ),
        )
        self.truth.scenario(shifted.name, shifted.t_start_s, shifted.params, shifted.notes)
        for k, action in enumerate(shifted.actions):
            heapq.heappush(self._actions, _Pending(action.t_s, next(self._seq), action, shifted, first=k == 0))
        if shifted.record_window_s is not None:
            self._windows.append((*shifted.record_window_s, shifted))
        return shifted

    def submit(self, fn: Callable[[GridDynamics], Any]) -> Future[Any]:
        """Run `fn(dynamics)` at the next step boundary; the future holds its result."""
        future: Future[Any] = Future()
        self._commands.put((fn, future))
        self._wake.set()
        return future

    def record_event(self, event: AppliedEvent | None, scenario: str | None) -> None:
        """Put an applied action into the ground truth (on the run clock)."""
        if event is not None:
            self.truth.event(event, scenario, t_s=event.t_s + self._offset_s)

    # ------------------------------------------------------------------------------ stepping

    def _drain_commands(self) -> None:
        while True:
            try:
                fn, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(self.dyn)
            except Exception as exc:  # noqa: BLE001 - a bad command must not stop the grid; its caller gets it
                future.set_exception(exc)
                continue
            if isinstance(result, AppliedEvent):
                self.record_event(result, "command")
            future.set_result(result)

    def _apply_due(self) -> None:
        while self._actions and self._actions[0].t_s <= self.t_s + 1e-9:
            pending = heapq.heappop(self._actions)
            try:
                event = pending.action.apply(self.dyn)
            except (KeyError, ValueError) as exc:
                logger.error("scenario %s action %s failed: %s", pending.plan.name, pending.action.label, exc)
                continue
            self.record_event(event, pending.plan.name)
            if pending.first and pending.plan.snapshot_modes:
                self.truth.modes(self.t_s, system_modes(self.dyn), pending.plan.name)

    def advance_to(self, run_t_s: float) -> None:
        """Integrate to run time `run_t_s`, applying commands and due actions on the way."""
        with self._lock:
            self._drain_commands()
            self._apply_due()
            while self.t_s < run_t_s - 1e-9:
                next_action = self._actions[0].t_s if self._actions else math.inf
                stop = min(run_t_s, next_action, self.t_s + self.chunk_s)
                if stop > self.t_s + 1e-9:
                    self._integrate(stop)
                self._drain_commands()
                self._apply_due()
            self._write_due_records()

    def _integrate(self, run_stop_s: float) -> None:
        try:
            chunk = self.dyn.advance_to(run_stop_s - self._offset_s)
        except SimulationDivergedError as exc:
            self._restart(str(exc))
            return
        if self._offset_s:
            chunk = replace(chunk, t_s=chunk.t_s + self._offset_s)
        self.buffer.append(chunk)
        if self.on_chunk is not None:
            self.on_chunk(chunk)

    def _restart(self, reason: str) -> None:
        """Start the case afresh after the integrator gave up (e.g. voltage collapse)."""
        run_t = self.t_s
        logger.error("simulation restarted at t=%.3f s: %s", run_t, reason)
        self.restarts += 1
        self.dyn = GridDynamics(self.case, step_s=self.step_s, max_chunk_s=self.chunk_s)
        self._offset_s = run_t
        self._actions = []
        restart = AppliedEvent(t_s=0.0, kind="simulation_restart", element=self.case, detail={"reason": reason})
        self.record_event(restart, None)
        first = self.dyn.current_state()
        first = replace(first, t_s=first.t_s + self._offset_s + 1e-6)
        self.buffer.append(first)
        if self.on_chunk is not None:
            self.on_chunk(first)

    # ------------------------------------------------------------------------------ real time

    def start(self, catch_up_timeout_s: float = CATCH_UP_TIMEOUT_S) -> None:
        """Start the worker thread; return once it has caught up with the wall clock (or timed out).

        The epoch is fixed when the case loads, so the run starts seconds behind; serving before it
        caught up would only delay or invalidate the first frames.
        """
        if self._thread is not None:
            return
        self._stop.clear()
        self._leading.clear()
        self._thread = threading.Thread(target=self._run, name="grid-simulation", daemon=True)
        self._thread.start()
        if not self._leading.wait(catch_up_timeout_s):
            logger.warning("simulation still behind the wall clock %.0f s after start", catch_up_timeout_s)

    def stop(self) -> None:
        """Stop the worker thread and write the ground truth."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self.truth.flush()

    def _run(self) -> None:
        lookahead_t = self.lookahead_s * self.speed
        while not self._stop.is_set():
            now_t = self.sim_time_at(time.time())
            lead_t = self.t_s - now_t
            if lead_t < 0.0:
                self.late_chunks += 1
            target_t, wake_t = self._target(now_t, lookahead_t)
            if self.t_s < target_t - 1e-9:
                offset = self._offset_s
                dyn_t = self.t_s - offset
                self.advance_to(offset + next_stop_s(dyn_t, target_t - offset, self.step_s, self.chunk_s))
                continue
            self._leading.set()
            self._drain_commands_locked()
            # Sleep until the lead falls to the lookahead (or an action comes near); a command or stop wakes it.
            self._wake.wait(max(min(lead_t - lookahead_t, wake_t - now_t) / self.speed, 0.001))
            self._wake.clear()

    def _target(self, now_t: float, lookahead_t: float) -> tuple[float, float]:
        """Return how far to integrate now (run time) and when to look again.

        Normally `lookahead_t` past the present. A scheduled action within `PREROLL_BEFORE_S` is
        integrated through `PREROLL_AFTER_S` after it at once: switching steps (a fault's above all)
        cost more than real time, and taken early they keep the frames on time. Commands that arrive
        meanwhile apply at the end of what was integrated, at most that much later.
        """
        target_t = now_t + lookahead_t
        wake_t = math.inf
        with self._lock:
            upcoming = [p.t_s for p in self._actions[:8]]
        for t_s in sorted(upcoming):
            if t_s - now_t <= PREROLL_BEFORE_S * self.speed:
                target_t = max(target_t, t_s + PREROLL_AFTER_S * self.speed)
            else:
                wake_t = min(wake_t, t_s - PREROLL_BEFORE_S * self.speed)
        return target_t, wake_t

    def _drain_commands_locked(self) -> None:
        with self._lock:
            self._drain_commands()
            self._apply_due()

    # ---------------------------------------------------------------------------- measurement

    def sample_utc(self, utc_s: FloatArray) -> GridSample:
        """Return the grid at reporting instants `utc_s` (k,); rows not yet simulated are flagged."""
        utc = np.atleast_1d(np.asarray(utc_s, dtype=np.float64))
        snap = self.buffer.sample((utc - self.epoch_utc_s) * self.speed)
        i_from, i_to = self.network.currents_pu(snap.bus_voltage_pu, snap.line_closed)
        return GridSample(utc_s=utc, snapshot=snap, line_current_from_pu=i_from, line_current_to_pu=i_to)

    # ---------------------------------------------------------------------------- fault records

    def _write_due_records(self) -> None:
        if not self._windows or self.record_dir is None:
            return
        done = [w for w in self._windows if w[1] <= self.buffer.end_s]
        self._windows = [w for w in self._windows if w[1] > self.buffer.end_s]
        for start, end, plan in done:
            try:
                cfg, dat = self.write_fault_record(start, end, plan)
            except (OSError, LookupError) as exc:
                logger.error("fault record of %s failed: %s", plan.name, exc)
                continue
            self.truth.fault_record(start, cfg, dat, plan.name)

    def write_fault_record(self, start_s: float, end_s: float, plan: ScenarioPlan) -> tuple[Path, Path]:
        """Write a COMTRADE record of run times [start_s, end_s] around the plan's fault bus."""
        assert self.record_dir is not None
        dyn = self.grid
        bus = plan.params.get("bus", dyn.spec.fault_bus)
        t_utc = comtrade.sample_instants(self.utc_at(start_s), self.utc_at(end_s), self.record_rate_hz)
        sample = self.sample_utc(t_utc)
        if not np.all(sample.simulated):
            raise LookupError(f"record window {start_s:.3f}-{end_s:.3f} s is not all simulated")
        col = dyn.bus_column(bus)
        base_kv = float(dyn.bus_nominal_kv[col])
        f0 = dyn.nominal_hz
        analogs = comtrade.voltage_signals(
            f"BUS{bus}", voltage_volts(sample.snapshot.bus_voltage_pu[:, col], base_kv), t_utc, f0
        )
        for k, (b1, b2) in enumerate(dyn.line_buses):
            if bus not in (b1, b2) or len(analogs) >= 3 + 3 * 4:
                continue
            current = sample.line_current_from_pu[:, k] if b1 == bus else sample.line_current_to_pu[:, k]
            analogs += comtrade.current_signals(
                f"{dyn.line_ids[k]}", current_amperes(current, base_kv, dyn.base_mva), t_utc, f0
            )
        fault_start = plan.t_start_s
        fault_end = fault_start + float(plan.params.get("duration_s", 0.0))
        run_t = (t_utc - self.epoch_utc_s) * self.speed
        digitals = [comtrade.DigitalSignal("FAULT", comtrade.digital_from_intervals(run_t, [(fault_start, fault_end)]))]
        record = comtrade.ComtradeRecord(
            station_name=f"{dyn.spec.title} BUS{bus}",
            device_id=f"SIM-{self.run_id}",
            frequency_hz=f0,
            sample_rate_hz=self.record_rate_hz,
            start_utc_s=float(t_utc[0]),
            trigger_utc_s=self.utc_at(fault_start),
            analogs=analogs,
            digitals=digitals,
        )
        stem = self.record_dir / f"{self.run_id}_{plan.name}_bus{bus}_{round(fault_start * 1000)}ms"
        return comtrade.write_comtrade(record, stem)
