"""Named disturbance scenarios: each plans timed actions on a `GridDynamics`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wams.simulator.engine.dynamics import AppliedEvent, GridDynamics
from wams.simulator.engine.trajectory import FloatArray

Action = Callable[[GridDynamics], "AppliedEvent | None"]


@dataclass(frozen=True)
class TimedAction:
    """One action at a simulated time (dynamics clock)."""

    t_s: float
    label: str
    apply: Action


@dataclass
class ScenarioPlan:
    """What a scenario will do, and what its ground truth should carry."""

    name: str
    t_start_s: float
    params: dict[str, Any]
    actions: list[TimedAction]
    #: (start, end) simulated seconds of a fault window the fault recorder should keep.
    record_window_s: tuple[float, float] | None = None
    #: Take the eigenvalue modes once the first action is applied.
    snapshot_modes: bool = False
    notes: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------- modulators


class AmbientLoadNoise:
    """Random load variation: an Ornstein-Uhlenbeck process per load (relative, dimensionless)."""

    name = "ambient"

    def __init__(self, n_load: int, sigma: float = 0.01, tau_s: float = 2.0, seed: int | None = None) -> None:
        """Vary every load by about `sigma` (relative, 1 sd) with correlation time `tau_s`."""
        self.sigma = sigma
        self.tau_s = tau_s
        self.rng = np.random.default_rng(seed)
        self.state = np.zeros(n_load)
        self.last_t_s: float | None = None

    def factors(self, t_s: float) -> tuple[FloatArray, FloatArray] | None:
        """Advance the process to `t_s` (never backwards) and return the load factors."""
        if self.last_t_s is None:
            self.last_t_s = t_s
        elif t_s > self.last_t_s:
            decay = math.exp(-(t_s - self.last_t_s) / self.tau_s)
            noise = self.rng.standard_normal(self.state.shape)
            self.state = self.state * decay + self.sigma * math.sqrt(1.0 - decay**2) * noise
            self.last_t_s = t_s
        f = 1.0 + self.state
        return f, f


class SinusoidalLoad:
    """A periodic injection: one load's power swings sinusoidally (forced oscillation)."""

    def __init__(
        self, n_load: int, load_uid: int, amplitude: float, frequency_hz: float, t_start_s: float, t_end_s: float
    ) -> None:
        """Swing load `load_uid` by +-`amplitude` (relative) at `frequency_hz` in [t_start_s, t_end_s)."""
        self.name = f"forced_oscillation_{load_uid}"
        self.n_load = n_load
        self.load_uid = load_uid
        self.amplitude = amplitude
        self.frequency_hz = frequency_hz
        self.t_start_s = t_start_s
        self.t_end_s = t_end_s

    def factors(self, t_s: float) -> tuple[FloatArray, FloatArray] | None:
        """Return the load factors at `t_s`, or None after the end."""
        if t_s >= self.t_end_s:
            return None
        f = np.ones(self.n_load)
        if t_s >= self.t_start_s:
            f[self.load_uid] += self.amplitude * math.sin(2.0 * math.pi * self.frequency_hz * (t_s - self.t_start_s))
        return f, np.ones(self.n_load)


class LoadRamp:
    """Loads in a set grow linearly then hold (slow voltage decline)."""

    def __init__(
        self,
        mask: np.ndarray,
        p_rate_per_s: float,
        q_rate_per_s: float,
        t_start_s: float,
        duration_s: float,
        name: str = "load_ramp",
    ) -> None:
        """Grow loads where `mask` (n_load,) is True by the given relative rates for `duration_s`."""
        self.name = name
        self.mask = mask.astype(np.float64)
        self.p_rate_per_s = p_rate_per_s
        self.q_rate_per_s = q_rate_per_s
        self.t_start_s = t_start_s
        self.duration_s = duration_s

    def factors(self, t_s: float) -> tuple[FloatArray, FloatArray] | None:
        """Return the load factors at `t_s` (the reached level holds after the ramp)."""
        elapsed = min(max(t_s - self.t_start_s, 0.0), self.duration_s)
        return 1.0 + self.mask * self.p_rate_per_s * elapsed, 1.0 + self.mask * self.q_rate_per_s * elapsed


def shift_governor_reference(dyn: GridDynamics, generator: Any, delta_mw: float) -> None:
    """Move a generator's governor reference by `delta_mw` (between steps or from the step hook)."""
    for name in ("TGOV1N", "TGOV1"):
        model = getattr(dyn.system, name, None)
        if model is None or not model.n:
            continue
        for k, syn in enumerate(model.syn.v):
            if syn == generator:
                model.paux0.v[k] += delta_mw / dyn.base_mva


class GeneratorRamp:
    """A generator's governor reference moves at a steady rate for a while (a scheduled ramp).

    Increments are added to whatever reference the unit has, so a set point written meanwhile
    (an operator or a scheme running the unit back) is kept and the ramp goes on from it.
    """

    def __init__(
        self, dyn: GridDynamics, generator: Any, rate_mw_per_s: float, t_start_s: float, duration_s: float
    ) -> None:
        """Move `generator`'s reference by `rate_mw_per_s` from `t_start_s` for `duration_s`."""
        self.name = f"generator_ramp_{generator}"
        self.dyn = dyn
        self.generator = generator
        self.rate_mw_per_s = rate_mw_per_s
        self.t_start_s = t_start_s
        self.t_end_s = t_start_s + duration_s
        self.done_s = t_start_s
        self.ones = np.ones(len(dyn.load_ids))

    def factors(self, t_s: float) -> tuple[FloatArray, FloatArray] | None:
        """Add the ramp's increment since the last step to the reference; leave the loads alone."""
        reach_s = min(max(t_s, self.t_start_s), self.t_end_s)
        if reach_s > self.done_s:
            shift_governor_reference(self.dyn, self.generator, self.rate_mw_per_s * (reach_s - self.done_s))
            self.done_s = reach_s
        return None if t_s >= self.t_end_s else (self.ones, self.ones)


# ---------------------------------------------------------------------------------- planners


def plan_ambient(
    dyn: GridDynamics, t0: float, *, sigma: float = 0.01, tau_s: float = 2.0, seed: int = 0
) -> ScenarioPlan:
    """Start random load variation on every load."""
    noise = AmbientLoadNoise(len(dyn.load_ids), sigma=sigma, tau_s=tau_s, seed=seed)
    return ScenarioPlan(
        "ambient",
        t0,
        {"sigma": sigma, "tau_s": tau_s, "seed": seed},
        [TimedAction(t0, "ambient on", lambda d: d.add_modulator(noise))],
        snapshot_modes=True,
    )


def plan_generator_trip(dyn: GridDynamics, t0: float, *, generator: Any = None) -> ScenarioPlan:
    """Trip a generator with its controllers."""
    gen = dyn.spec.generator_trip if generator is None else _coerce(dyn.generator_ids, generator)
    return ScenarioPlan(
        "generator_trip",
        t0,
        {"generator": gen},
        [TimedAction(t0, f"trip {gen}", lambda d: d.set_generator_status(gen, False))],
    )


def plan_line_trip(dyn: GridDynamics, t0: float, *, line: Any = None) -> ScenarioPlan:
    """Open a line."""
    ln = dyn.spec.line_trip if line is None else _coerce(dyn.line_ids, line)
    return ScenarioPlan(
        "line_trip", t0, {"line": ln}, [TimedAction(t0, f"open {ln}", lambda d: d.set_line_status(ln, False))]
    )


def plan_fault(
    dyn: GridDynamics, t0: float, *, bus: Any = None, duration_s: float = 0.1, trip_line: Any = None
) -> ScenarioPlan:
    """Apply a three-phase fault at a bus and clear it after `duration_s` (optionally tripping a line)."""
    b = dyn.spec.fault_bus if bus is None else _coerce(dyn.bus_ids, bus)
    actions = [TimedAction(t0, f"fault on bus {b}", lambda d: d.apply_fault(b))]
    actions.append(TimedAction(t0 + duration_s, f"clear fault bus {b}", lambda d: d.clear_fault(b)))
    if trip_line is not None:
        ln = _coerce(dyn.line_ids, trip_line)
        actions.append(TimedAction(t0 + duration_s, f"open {ln}", lambda d: d.set_line_status(ln, False)))
    return ScenarioPlan(
        "fault",
        t0,
        {"bus": b, "duration_s": duration_s, "trip_line": trip_line},
        actions,
        record_window_s=(t0 - 0.2, t0 + duration_s + 0.8),
    )


def plan_load_step(dyn: GridDynamics, t0: float, *, load: Any = None, step_pct: float = 10.0) -> ScenarioPlan:
    """Step a load by `step_pct` percent of its initial power."""
    ld = dyn.spec.load_step if load is None else _coerce(dyn.load_ids, load)
    factor = 1.0 + step_pct / 100.0
    return ScenarioPlan(
        "load_step",
        t0,
        {"load": ld, "step_pct": step_pct},
        [TimedAction(t0, f"step {ld}", lambda d: d.set_load_factor(ld, factor))],
    )


def plan_oscillation(
    dyn: GridDynamics, t0: float, *, duration_s: float = 120.0, kick_pct: float = 20.0, kick_s: float = 0.5
) -> ScenarioPlan:
    """Leave one poorly damped inter-area mode (case preset), then kick it with a load pulse."""
    spec = dyn.spec
    if not spec.oscillation_damping_pu:
        raise ValueError(f"case {spec.name} has no oscillation preset")
    original_d = [float(v) for v in dyn.system.GENROU.D.v]
    original_t2 = dyn.governor_lead_s()
    ld = spec.load_step

    def weaken(d: GridDynamics) -> AppliedEvent:
        if spec.oscillation_governor_t2_s is not None:
            d.set_governor_lead(spec.oscillation_governor_t2_s)
        return d.set_generator_damping(spec.oscillation_damping_pu)

    def restore(d: GridDynamics) -> AppliedEvent:
        if spec.oscillation_governor_t2_s is not None:
            d.set_governor_lead(original_t2)
        return d.set_generator_damping(original_d)

    kick = 1.0 + kick_pct / 100.0
    return ScenarioPlan(
        "oscillation",
        t0,
        {"duration_s": duration_s, "kick_load": ld, "kick_pct": kick_pct, "kick_s": kick_s},
        [
            TimedAction(t0, "weaken damping", weaken),
            TimedAction(t0 + 0.5, f"kick {ld}", lambda d: d.set_load_factor(ld, kick)),
            TimedAction(t0 + 0.5 + kick_s, f"release {ld}", lambda d: d.set_load_factor(ld, 1.0)),
            TimedAction(t0 + duration_s, "restore damping", restore),
        ],
        snapshot_modes=True,
    )


def plan_forced_oscillation(
    dyn: GridDynamics,
    t0: float,
    *,
    load: Any = None,
    frequency_hz: float = 1.25,
    amplitude_mw: float = 30.0,
    duration_s: float = 60.0,
) -> ScenarioPlan:
    """Swing a load sinusoidally (a periodic injection) for `duration_s`."""
    ld = dyn.spec.forced_oscillation_load if load is None else _coerce(dyn.load_ids, load)
    uid = dyn.uid("PQ", ld)
    base_mw = float(dyn.load_base_mw[uid])
    modulator = SinusoidalLoad(len(dyn.load_ids), uid, amplitude_mw / base_mw, frequency_hz, t0, t0 + duration_s)
    return ScenarioPlan(
        "forced_oscillation",
        t0,
        {"load": ld, "bus": dyn.load_buses[uid], "frequency_hz": frequency_hz, "amplitude_mw": amplitude_mw,
         "duration_s": duration_s},
        [TimedAction(t0, f"modulate {ld}", lambda d: d.add_modulator(modulator))],
    )  # fmt: skip


def plan_islanding(dyn: GridDynamics, t0: float, *, area_a: Any = None, area_b: Any = None) -> ScenarioPlan:
    """Open every tie line between two areas at once."""
    areas = sorted(set(dyn.bus_area))
    a = areas[0] if area_a is None else type(areas[0])(area_a)
    b = areas[1] if area_b is None else type(areas[0])(area_b)
    ties = dyn.tie_lines(a, b)

    def separate(d: GridDynamics) -> AppliedEvent | None:
        last = None
        for line in ties:
            if d.line_closed[d.uid("Line", line)]:
                last = d.set_line_status(line, False)
        return last

    return ScenarioPlan(
        "islanding",
        t0,
        {"area_a": a, "area_b": b, "tie_lines": [str(t) for t in ties]},
        [TimedAction(t0, f"open ties {a}-{b}", separate)],
    )


def plan_voltage_decline(
    dyn: GridDynamics,
    t0: float,
    *,
    area: Any = None,
    q_pct_per_min: float = 40.0,
    p_pct_per_min: float = 5.0,
    duration_s: float = 120.0,
) -> ScenarioPlan:
    """Grow the loads of one area slowly (mostly reactive), so its voltages sag over minutes."""
    areas = sorted(set(dyn.bus_area))
    ar = areas[-1] if area is None else type(areas[0])(area)
    bus_area = dict(zip(dyn.bus_ids, dyn.bus_area))
    mask = np.array([bus_area[b] == ar for b in dyn.load_buses])
    ramp = LoadRamp(mask, p_pct_per_min / 6000.0, q_pct_per_min / 6000.0, t0, duration_s, name="voltage_decline")
    return ScenarioPlan(
        "voltage_decline",
        t0,
        {"area": ar, "q_pct_per_min": q_pct_per_min, "p_pct_per_min": p_pct_per_min, "duration_s": duration_s,
         "loads": [str(ld) for ld, m in zip(dyn.load_ids, mask) if m]},
        [TimedAction(t0, f"ramp loads of area {ar}", lambda d: d.add_modulator(ramp))],
    )  # fmt: skip


#: Per case: the exporting unit, the parallel path lost first and the cut set joining its pocket to the grid.
ANGLE_SEPARATION_DEFAULTS: dict[str, dict[str, Any]] = {
    # Seabrook (GENROU_9, bus 38, 1684 MVA, 765 MW) reaches the grid through buses 29 and 28 and
    # the two lines 26-29 and 26-28; the rest of the 39-bus network is too stiff for a ramp to pull
    # an area out of step. With 26-29 lost, the unit's export over 26-28 loses synchronism near
    # 1300 MW of output (about 810 MW exported), some 33 s into the default 20 MW/s ramp.
    "ieee39": {"generator": "GENROU_9", "trip_line": "Line_33", "cut_lines": ("Line_32", "Line_33")},
}


def plan_angle_separation(
    dyn: GridDynamics,
    t0: float,
    *,
    generator: Any = None,
    trip_line: Any = None,
    cut_lines: Any = None,
    rate_mw_per_s: float = 20.0,
    duration_s: float = 35.0,
    ramp_delay_s: float = 2.0,
) -> ScenarioPlan:
    """Lose a parallel path out of a generation pocket, then ramp the pocket's export until it slips.

    The unit's governor reference rises by `rate_mw_per_s` for `duration_s` while the loads outside
    the pocket grow by as much (constant power factor), so the transfer over the cut set grows and
    the system frequency stays near nominal; the angle across the cut grows towards loss of
    synchronism, after which the pocket slips poles against the grid.
    """
    defaults = ANGLE_SEPARATION_DEFAULTS.get(dyn.spec.name, {})
    if (generator is None or cut_lines is None) and not defaults:
        raise ValueError(f"case {dyn.spec.name} has no angle-separation preset; give generator and cut_lines")
    gen = _coerce(dyn.generator_ids, defaults["generator"] if generator is None else generator)
    names = defaults["cut_lines"] if cut_lines is None else cut_lines
    cut = [_coerce(dyn.line_ids, ln) for ln in (names.split("+") if isinstance(names, str) else names)]
    lost = defaults.get("trip_line") if trip_line is None else trip_line
    tripped = None if lost in (None, "", "none") else _coerce(dyn.line_ids, lost)
    gen_bus = dyn.generator_buses[dyn.uid("GENROU", gen)]
    pocket = _component(dyn, gen_bus, set(cut))
    if len(pocket) == len(dyn.bus_ids):
        raise ValueError(f"lines {cut} do not cut bus {gen_bus} off the grid")
    outside = np.array([bus not in pocket for bus in dyn.load_buses])
    outside_mw = float(dyn.load_base_mw[outside].sum())
    relative_per_s = rate_mw_per_s / outside_mw
    ramp_start_s = t0 + ramp_delay_s
    unit_ramp = GeneratorRamp(dyn, gen, rate_mw_per_s, ramp_start_s, duration_s)
    load_ramp = LoadRamp(outside, relative_per_s, relative_per_s, ramp_start_s, duration_s, name="transfer_ramp_loads")

    def start_ramps(d: GridDynamics) -> AppliedEvent:
        d.add_modulator(load_ramp)
        return d.add_modulator(unit_ramp)

    actions = []
    if tripped is not None:
        actions.append(TimedAction(t0, f"open {tripped}", lambda d: d.set_line_status(tripped, False)))
    actions.append(TimedAction(ramp_start_s, f"ramp {gen} +{rate_mw_per_s:g} MW/s", start_ramps))
    pocket_load_mw = float(dyn.load_base_mw[~outside].sum())
    initial_mw = float(dyn.system.GENROU.Pe.v[dyn.uid("GENROU", gen)]) * dyn.base_mva
    return ScenarioPlan(
        "angle_separation",
        t0,
        {"generator": gen, "generator_bus": gen_bus, "trip_line": None if tripped is None else str(tripped),
         "cut_lines": [str(ln) for ln in cut], "pocket_buses": sorted(pocket), "rate_mw_per_s": rate_mw_per_s,
         "duration_s": duration_s, "ramp_start_s": ramp_start_s},
        actions,
        notes={"initial_generation_mw": round(initial_mw, 1), "pocket_load_mw": round(pocket_load_mw, 1),
               "initial_export_mw": round(initial_mw - pocket_load_mw, 1),
               "ramp_mw": rate_mw_per_s * duration_s},
    )  # fmt: skip


def _component(dyn: GridDynamics, start: Any, removed: set[Any]) -> set[Any]:
    """Return the buses reached from `start` over closed lines not in `removed`."""
    neighbours: dict[Any, list[Any]] = {}
    for line, (b1, b2), closed in zip(dyn.line_ids, dyn.line_buses, dyn.line_closed):
        if closed and line not in removed:
            neighbours.setdefault(b1, []).append(b2)
            neighbours.setdefault(b2, []).append(b1)
    seen = {start}
    todo = [start]
    while todo:
        for bus in neighbours.get(todo.pop(), []):
            if bus not in seen:
                seen.add(bus)
                todo.append(bus)
    return seen


Planner = Callable[..., ScenarioPlan]

SCENARIOS: dict[str, Planner] = {
    "ambient": plan_ambient,
    "generator_trip": plan_generator_trip,
    "line_trip": plan_line_trip,
    "fault": plan_fault,
    "load_step": plan_load_step,
    "oscillation": plan_oscillation,
    "forced_oscillation": plan_forced_oscillation,
    "islanding": plan_islanding,
    "voltage_decline": plan_voltage_decline,
    "angle_separation": plan_angle_separation,
}


def scenario_names() -> list[str]:
    """Return the names of the scenarios."""
    return sorted(SCENARIOS)


def plan_scenario(dyn: GridDynamics, name: str, t0: float, **params: Any) -> ScenarioPlan:
    """Plan scenario `name` (hyphens or underscores) starting at simulated time `t0`."""
    key = name.replace("-", "_").lower()
    if key not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}")
    return SCENARIOS[key](dyn, t0, **params)


def parse_scenario_arg(text: str) -> tuple[str, dict[str, Any], float | None]:
    """Parse `NAME[:key=value,...][@T_SECONDS]` into (name, params, start time or None)."""
    at: float | None = None
    if "@" in text:
        text, when = text.rsplit("@", 1)
        at = float(when)
    params: dict[str, Any] = {}
    if ":" in text:
        text, rest = text.split(":", 1)
        for item in filter(None, rest.split(",")):
            key, _, value = item.partition("=")
            params[key.strip()] = _number(value.strip())
    name = text.strip().replace("-", "_").lower()
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}")
    return name, params, at


def _number(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _coerce(known: list[Any], value: Any) -> Any:
    """Return the element of `known` equal to `value` or to its string form."""
    for item in known:
        if item == value or str(item) == str(value):
            return item
    raise KeyError(f"unknown element {value!r}")
