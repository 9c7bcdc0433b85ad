"""Live, controllable time-domain simulation of a standard grid with ANDES.

ANDES integrates the grid in chunks (`TDS.config.tf` moved forward, `TDS.run()` called again).
Two things make a case resume cleanly at every chunk boundary:

* the step size is a power of two (1/32 s by default), so chunk ends land exactly on step
  boundaries; with 1/30 s, thirty steps add up to 0.9999999999999999 s, the run then tries a
  final step of 1e-16 s, Newton cannot converge on it and the run stops with "Time step reduced
  to zero" (what stopped `ieee39_full.xlsx`); a leftover below 1 us is also absorbed here;
* every switching action (line, generator, fault, load) is applied between chunks and flagged as
  a custom event, so the next step refreshes the Jacobian.

Continuous load changes (ambient noise, forced oscillation, ramps) run inside the integrator
through its perturbation hook, called before every step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from wams.simulator.engine.cases import CaseSpec, get_case_spec, load_case_system
from wams.simulator.engine.events import AppliedEvent, LoadModulator, SimulationDivergedError, concatenate
from wams.simulator.engine.gridinfo import GridInfo
from wams.simulator.engine.network import line_admittances
from wams.simulator.engine.trajectory import BoolArray, FloatArray, TrajectoryChunk

__all__ = ["AppliedEvent", "GridDynamics", "LoadModulator", "SimulationDivergedError"]

logger = logging.getLogger(__name__)

#: Load constants scaled by the active-power factor and by the reactive-power factor.
_P_SERVICES = ("Ppf", "Req", "Ipeq")
_Q_SERVICES = ("Qpf", "Xeq", "Iqeq")


class GridDynamics:
    """Step a standard case forward in time and act on it between steps."""

    def __init__(
        self,
        case: str | CaseSpec = "ieee39",
        *,
        step_s: float = 1.0 / 32.0,
        fine_step_s: float = 1.0 / 256.0,
        max_chunk_s: float = 0.25,
    ) -> None:
        """Load `case`, solve its power flow and initialise the dynamics at t = 0."""
        self.spec = case if isinstance(case, CaseSpec) else get_case_spec(case)
        self.step_s = step_s
        self.fine_step_s = fine_step_s
        self.max_chunk_s = max_chunk_s
        self.system: Any = load_case_system(self.spec)
        system = self.system
        if not system.PFlow.run():
            raise SimulationDivergedError(f"power flow of {self.spec.name} did not converge")
        tds = system.TDS
        tds.config.no_tqdm = 1
        tds.config.tstep = step_s
        tds.config.tf = 0.0
        tds.config.criteria = 0  # islands drift apart on purpose; no angle-separation stop
        tds.config.save_every = 1
        tds.init()
        if not tds.initialized:
            raise SimulationDivergedError(f"dynamic initialisation of {self.spec.name} failed")
        tds.callpert = self._perturb
        self.events: list[AppliedEvent] = []
        self._refine_until_s = -math.inf
        self._fault_store: dict[Any, np.ndarray] = {}
        self._modulators: list[LoadModulator] = []
        self._index_network()
        self._index_loads()

    # ----------------------------------------------------------------- indexing

    def _index_network(self) -> None:
        system = self.system
        self.bus_ids: list[Any] = list(system.Bus.idx.v)
        self.bus_names: list[str] = [str(n) for n in system.Bus.name.v]
        self.bus_area: list[Any] = list(system.Bus.area.v)
        self.bus_nominal_kv: FloatArray = np.asarray(system.Bus.Vn.v, dtype=np.float64).copy()
        self.line_ids: list[Any] = list(system.Line.idx.v)
        self.line_buses: list[tuple[Any, Any]] = list(zip(system.Line.bus1.v, system.Line.bus2.v))
        self.generator_ids: list[Any] = list(system.GENROU.idx.v)
        self.generator_buses: list[Any] = list(system.GENROU.bus.v)
        self.nominal_hz = float(system.config.freq)
        self.base_mva = float(system.config.mva)
        self._bus_col = {bus: k for k, bus in enumerate(self.bus_ids)}
        freq_addr: dict[Any, int] = {}
        for bus, addr in zip(system.BusFreq.bus.v, system.BusFreq.f.a):
            freq_addr.setdefault(bus, int(addr))
        self._y_angle = np.asarray(system.Bus.a.a, dtype=np.int64)
        self._y_magnitude = np.asarray(system.Bus.v.a, dtype=np.int64)
        self._y_freq = np.array([freq_addr[bus] for bus in self.bus_ids], dtype=np.int64)
        self._x_speed = np.asarray(system.GENROU.omega.a, dtype=np.int64)
        self._y_power = np.asarray(system.GENROU.Pe.a, dtype=np.int64)
        self._generator_p0_pu = np.asarray(system.GENROU.Pe.v, dtype=np.float64).copy()
        self.line_closed: BoolArray = np.asarray(system.Line.u.v, dtype=bool).copy()
        self.generator_online: BoolArray = np.asarray(system.GENROU.u.v, dtype=bool).copy()

    def _index_loads(self) -> None:
        pq = self.system.PQ
        self.load_ids: list[Any] = list(pq.idx.v)
        self.load_buses: list[Any] = list(pq.bus.v)
        self._load_base = {name: np.asarray(getattr(pq, name).v, dtype=np.float64).copy() for name in _P_SERVICES}
        self._load_base.update({name: np.asarray(getattr(pq, name).v, dtype=np.float64).copy() for name in _Q_SERVICES})
        n = len(self.load_ids)
        self._load_step_p = np.ones(n)
        self._load_step_q = np.ones(n)
        self._load_shed = np.zeros(n)

    @property
    def t_s(self) -> float:
        """Return the simulated time reached, in seconds."""
        return float(self.system.dae.t)

    @property
    def load_base_mw(self) -> FloatArray:
        """Return each load's initial active power in MW, (n_load,)."""
        return self._load_base["Ppf"] * self.base_mva

    def bus_column(self, bus: Any) -> int:
        """Return the column of `bus` in trajectory arrays."""
        return self._bus_col[bus]

    def uid(self, model: str, idx: Any) -> int:
        """Return the position of device `idx` in ANDES model `model`."""
        return int(getattr(self.system, model).idx2uid(idx))

    def tie_lines(self, area_a: Any, area_b: Any) -> list[Any]:
        """Return the lines joining buses of `area_a` to buses of `area_b`."""
        area = dict(zip(self.bus_ids, self.bus_area))
        return [
            line for line, (b1, b2) in zip(self.line_ids, self.line_buses) if {area[b1], area[b2]} == {area_a, area_b}
        ]

    # ---------------------------------------------------------------- stepping

    def advance_to(self, t_end_s: float) -> TrajectoryChunk:
        """Integrate up to `t_end_s` and return every step taken (times after the current one)."""
        parts: list[TrajectoryChunk] = []
        while self.t_s < t_end_s - 1e-9:
            step = self.fine_step_s if self.t_s < self._refine_until_s - 1e-9 else self.step_s
            t_next = min(t_end_s, self.t_s + self.max_chunk_s)
            if step != self.step_s:
                t_next = min(t_next, self._refine_until_s)
            parts.append(self._run_chunk(t_next, step))
        return concatenate(parts, self.line_closed, self.generator_online, len(self.bus_ids))

    def _run_chunk(self, t_next_s: float, step_s: float) -> TrajectoryChunk:
        system = self.system
        tds = system.TDS
        tds.config.tstep = step_s
        tds.config.tf = t_next_s
        tds.run(no_summary=True)
        if tds.busted:
            if abs(t_next_s - self.t_s) < 1e-6:
                # A rounding leftover too short to integrate: the state is already there.
                system.dae.set_t(t_next_s)
                tds.busted = False
                system.exit_code = 0
            else:
                raise SimulationDivergedError(f"integration stopped at t={self.t_s:.4f} s: {tds.err_msg}")
        return self._drain_steps()

    def _drain_steps(self) -> TrajectoryChunk:
        ts = self.system.dae.ts
        times = np.fromiter(ts._ys.keys(), dtype=np.float64, count=len(ts._ys))
        if times.size:
            y = np.vstack(list(ts._ys.values()))
            x = np.vstack(list(ts._xs.values()))
        else:
            y = np.zeros((0, self.system.dae.m))
            x = np.zeros((0, self.system.dae.n))
        for store in (ts._xs, ts._ys, ts._zs, ts._bs, ts._fs, ts._hs, ts._is):
            store.clear()
        return TrajectoryChunk(
            t_s=times,
            bus_angle_rad=y[:, self._y_angle],
            bus_magnitude_pu=y[:, self._y_magnitude],
            bus_frequency_pu=y[:, self._y_freq],
            generator_speed_pu=x[:, self._x_speed],
            generator_power_pu=y[:, self._y_power],
            line_closed=self.line_closed.copy(),
            generator_online=self.generator_online.copy(),
        )

    def current_state(self) -> TrajectoryChunk:
        """Return the present state as a one-step chunk (e.g. t = 0 before any step)."""
        y = np.asarray(self.system.dae.y)[None, :]
        x = np.asarray(self.system.dae.x)[None, :]
        return TrajectoryChunk(
            t_s=np.array([self.t_s]),
            bus_angle_rad=y[:, self._y_angle],
            bus_magnitude_pu=y[:, self._y_magnitude],
            bus_frequency_pu=y[:, self._y_freq],
            generator_speed_pu=x[:, self._x_speed],
            generator_power_pu=y[:, self._y_power],
            line_closed=self.line_closed.copy(),
            generator_online=self.generator_online.copy(),
        )

    def _perturb(self, t_s: Any, system: Any) -> None:
        """Apply the load factors for the step about to be solved (ANDES perturbation hook)."""
        p = self._load_step_p * (1.0 - self._load_shed)
        q = self._load_step_q * (1.0 - self._load_shed)
        alive: list[LoadModulator] = []
        for modulator in self._modulators:
            out = modulator.factors(float(t_s))
            if out is None:
                continue
            alive.append(modulator)
            p = p * out[0]
            q = q * out[1]
        self._modulators = alive
        pq = system.PQ
        for name in _P_SERVICES:
            getattr(pq, name).v[:] = self._load_base[name] * p
        for name in _Q_SERVICES:
            getattr(pq, name).v[:] = self._load_base[name] * q

    def _switched(self, refine_s: float) -> None:
        """Make the next step rebuild its Jacobian and resolve the transient with short steps."""
        self.system.TDS.custom_event = True
        self._refine_until_s = max(self._refine_until_s, self.t_s + refine_s)

    def _record(self, kind: str, element: Any, **detail: Any) -> AppliedEvent:
        event = AppliedEvent(t_s=self.t_s, kind=kind, element=str(element), detail=detail)
        self.events.append(event)
        logger.info("t=%.3f s %s %s %s", event.t_s, kind, element, detail or "")
        return event

    # ----------------------------------------------------------------- actions

    def set_line_status(self, line: Any, closed: bool) -> AppliedEvent:
        """Open or close a line (or transformer) now."""
        uid = self.uid("Line", line)
        self.system.set_status("Line", line, 1 if closed else 0)
        self.line_closed[uid] = closed
        self._switched(0.25)
        return self._record("line_close" if closed else "line_open", line)

    def set_generator_status(self, generator: Any, online: bool) -> AppliedEvent:
        """Trip (or restore) a generator with its controllers now."""
        uid = self.uid("GENROU", generator)
        if not online:
            lost_mw = float(self.system.GENROU.Pe.v[uid]) * self.base_mva
        else:
            lost_mw = 0.0
        self.system.set_status("GENROU", generator, 1 if online else 0)
        self.generator_online[uid] = online
        self._switched(0.25)
        return self._record(
            "generator_online" if online else "generator_trip",
            generator,
            bus=self.generator_buses[uid],
            power_mw=round(lost_mw, 3),
        )

    def apply_fault(self, bus: Any, reactance_pu: float = 1e-4) -> AppliedEvent:
        """Apply a bolted three-phase fault (through `reactance_pu`) at `bus` now."""
        fault = self.system.Fault
        uid = self.uid("Fault", f"FLT_{bus}")
        fault.xf.v[uid] = reactance_pu
        fault.gf.v[uid] = float(np.real(1.0 / (fault.rf.v[uid] + 1j * reactance_pu)))
        fault.bf.v[uid] = float(np.imag(1.0 / (fault.rf.v[uid] + 1j * reactance_pu)))
        self._fault_store[bus] = np.array(self.system.dae.y[self.system.Bus.n :])
        fault.uf.v[uid] = 1
        self._switched(0.3)
        return self._record("fault_on", bus, reactance_pu=reactance_pu)

    def clear_fault(self, bus: Any) -> AppliedEvent:
        """Remove the fault at `bus` now, restarting Newton from pre-fault algebraic values."""
        fault = self.system.Fault
        uid = self.uid("Fault", f"FLT_{bus}")
        fault.uf.v[uid] = 0
        stored = self._fault_store.pop(bus, None)
        if stored is not None:
            self.system.dae.y[self.system.Bus.n :] = stored
            self.system.vars_to_models()
        self._switched(0.5)
        return self._record("fault_off", bus)

    def set_load_factor(self, load: Any, p_factor: float, q_factor: float | None = None) -> AppliedEvent:
        """Set a lasting multiplier on a load's power (1.0 = initial), e.g. a load step."""
        uid = self.uid("PQ", load)
        self._load_step_p[uid] = p_factor
        self._load_step_q[uid] = p_factor if q_factor is None else q_factor
        self._switched(0.1)
        return self._record(
            "load_factor",
            load,
            bus=self.load_buses[uid],
            p_factor=p_factor,
            q_factor=float(self._load_step_q[uid]),
            base_mw=round(float(self.load_base_mw[uid]), 3),
        )

    def shed_load(self, load: Any, fraction: float) -> AppliedEvent:
        """Disconnect `fraction` (0..1) of a load now (0 reconnects it all)."""
        uid = self.uid("PQ", load)
        self._load_shed[uid] = min(max(fraction, 0.0), 1.0)
        self._switched(0.1)
        return self._record(
            "load_shed",
            load,
            bus=self.load_buses[uid],
            fraction=float(self._load_shed[uid]),
            shed_mw=round(float(self.load_base_mw[uid] * self._load_shed[uid]), 3),
        )

    def load_shed_fraction(self, load: Any) -> float:
        """Return the disconnected fraction of a load."""
        return float(self._load_shed[self.uid("PQ", load)])

    def add_modulator(self, modulator: LoadModulator) -> AppliedEvent:
        """Start a continuous load modulation (ambient noise, forced oscillation, ramp)."""
        self.remove_modulator(modulator.name)
        self._modulators.append(modulator)
        return self._record("modulator_start", modulator.name)

    def remove_modulator(self, name: str) -> bool:
        """Stop the modulation called `name`; return whether it was running."""
        before = len(self._modulators)
        self._modulators = [m for m in self._modulators if m.name != name]
        return len(self._modulators) != before

    @property
    def modulator_names(self) -> list[str]:
        """Return the names of the running modulations."""
        return [m.name for m in self._modulators]

    def set_generator_damping(self, damping_pu: Iterable[float]) -> AppliedEvent:
        """Set each generator's mechanical damping D (system base), (n_gen,)."""
        values = np.asarray(list(damping_pu), dtype=np.float64)
        self.system.GENROU.D.v[:] = values
        self.system.TDS.custom_event = True
        return self._record("generator_damping", "GENROU", damping_pu=[round(float(v), 3) for v in values])

    def set_governor_lead(self, lead_s: float | list[float]) -> AppliedEvent:
        """Set the turbine governors' lead time constant T2, one value for all or one per governor."""
        offset = 0
        for name in ("TGOV1N", "TGOV1"):
            model = getattr(self.system, name, None)
            if model is not None and model.n:
                if isinstance(lead_s, list):
                    model.T2.v[:] = lead_s[offset : offset + model.n]
                else:
                    model.T2.v[:] = lead_s
                offset += model.n
        self.system.TDS.custom_event = True
        return self._record("governor_lead", "governors", t2_s=lead_s)

    def governor_lead_s(self) -> list[float]:
        """Return every turbine governor's lead time constant T2, in model order."""
        values: list[float] = []
        for name in ("TGOV1N", "TGOV1"):
            model = getattr(self.system, name, None)
            if model is not None and model.n:
                values.extend(float(v) for v in model.T2.v)
        return values

    def set_generator_setpoint(self, generator: Any, power_mw: float) -> AppliedEvent:
        """Move a generator's governor reference so it settles near `power_mw` (droop permitting)."""
        uid = self.uid("GENROU", generator)
        initial_mw = float(self._generator_p0_pu[uid]) * self.base_mva
        for name in ("TGOV1N", "TGOV1"):
            model = getattr(self.system, name, None)
            if model is None or not model.n:
                continue
            for k, syn in enumerate(model.syn.v):
                if syn == generator:
                    model.paux0.v[k] = (power_mw - initial_mw) / self.base_mva
        self.system.TDS.custom_event = True
        return self._record("generator_setpoint", generator, power_mw=power_mw, initial_mw=round(initial_mw, 3))

    def info(self) -> GridInfo:
        """Return the picklable description of the case (ids, topology, bases, admittances)."""
        y_ff, y_ft, y_tt, y_tf = line_admittances(self.system)
        return GridInfo(
            spec=self.spec,
            nominal_hz=self.nominal_hz,
            base_mva=self.base_mva,
            bus_ids=list(self.bus_ids),
            bus_nominal_kv=self.bus_nominal_kv.copy(),
            line_ids=list(self.line_ids),
            line_buses=list(self.line_buses),
            generator_ids=list(self.generator_ids),
            generator_buses=list(self.generator_buses),
            generator_p0_mw=self._generator_p0_pu * self.base_mva,
            load_ids=list(self.load_ids),
            load_buses=list(self.load_buses),
            load_base_mw=self.load_base_mw.copy(),
            y_ff=y_ff,
            y_ft=y_ft,
            y_tt=y_tt,
            y_tf=y_tf,
        )

    def call_between_steps(self, action: Callable[[GridDynamics], Any]) -> Any:
        """Run `action(self)` at the current step boundary and return its result."""
        return action(self)
