"""Turn the simulated grid into what each PMU of a stream measures, and describe it as CFG-2."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from wams.simulator.engine.noise import MeasurementNoise
from wams.simulator.engine.process import Simulator
from wams.simulator.engine.realtime import GridSample
from wams.simulator.fleet.spec import ChannelSpec, PmuSpec, StreamSpec
from wams.synchrophasor import (
    AnalogChannel,
    ConfigFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuData,
    make_stat,
)

#: TIME_BASE divisible by every reporting rate (10-120 fps, 50 and 60 Hz systems), so FRACSEC of
#: each instant is an exact multiple of 1/rate.
TIME_BASE = 12_000_000
#: 16-bit phasors cover 1.5 pu voltage and 40 pu (system base) current.
INT16_VOLTAGE_RANGE_PU = 1.5
INT16_CURRENT_RANGE_PU = 40.0
#: STAT bits 15-14 of an instant the simulation has not reached: 10, do not use the values.
UNSIMULATED_DATA_ERROR = 0b10


@dataclass
class PmuFlags:
    """STAT conditions injected on one PMU (set by tests, the admin or scenarios)."""

    sync_lost: bool = False
    data_invalid: bool = False
    test_mode: bool = False
    trigger: bool = False
    config_changed: bool = False

    def stat(self, *, simulated: bool = True) -> int:
        """Return the STAT word for these conditions (data error 10 when the instant is not simulated)."""
        data_error = 2 if self.test_mode else (3 if self.data_invalid else 0)
        if not simulated:
            data_error = UNSIMULATED_DATA_ERROR
        return make_stat(
            data_error=data_error,
            pmu_sync=not self.sync_lost,
            trigger=self.trigger,
            config_change=self.config_changed,
            unlock_time=3 if self.sync_lost else 0,
            time_quality=7 if self.sync_lost else 0,
        )


@dataclass
class _PmuPlan:
    """Precomputed indices of one PMU (shapes in comments)."""

    spec: PmuSpec
    freq_col: int
    v_pos: np.ndarray  # (n_v,) phasor positions of bus voltages
    v_col: np.ndarray  # (n_v,) bus columns
    v_volts_per_pu: np.ndarray  # (n_v,)
    i_pos: np.ndarray  # (n_i,) phasor positions of line currents
    i_line: np.ndarray  # (n_i,) line positions
    i_from: np.ndarray  # (n_i,) True: measured at the line's from end
    i_amps_per_pu: np.ndarray  # (n_i,)
    analog_specs: list[ChannelSpec]
    analog_lines: list[tuple[int, bool, float] | None]  # (line, from end, MW per pu) for power
    status_lines: list[int]  # lines whose status fills the digital word (bit order)
    n_phasors: int
    flags: PmuFlags = field(default_factory=PmuFlags)


class StreamMeter:
    """Measurements and CFG-2 of one stream, from a running `RealTimeSimulator`."""

    def __init__(self, stream: StreamSpec, sim: Simulator, *, noise: MeasurementNoise | None = None) -> None:
        """Resolve every channel against the simulated case."""
        self.stream = stream
        self.sim = sim
        self.noise = noise if noise is not None else MeasurementNoise(seed=stream.idcode)
        self.cfgcnt = 0
        self.rate_fps = stream.rate_fps
        self.pmu_specs = [p for p in stream.pmus if p.enabled]
        self.plans = [self._plan(p) for p in self.pmu_specs]
        self.config = self.build_config()

    # ---------------------------------------------------------------------------- resolution

    def _bus_col(self, bus: int) -> int:
        return self.sim.grid.bus_column(bus)

    def _line_index(self, line: tuple[int, int]) -> tuple[int, bool]:
        """Return (line position, whether `line[0]` is the ANDES from bus)."""
        cols = {self._bus_col(line[0]), self._bus_col(line[1])}
        for k, (b1, b2) in enumerate(self.sim.grid.line_buses):
            if {self._bus_col(b1), self._bus_col(b2)} == cols:
                return k, self._bus_col(b1) == self._bus_col(line[0])
        raise KeyError(f"line {line} is not in case {self.sim.grid.spec.name}")

    def _base_kv(self, bus: int, channel: ChannelSpec | None = None) -> float:
        if channel is not None and channel.base_kv:
            return float(channel.base_kv)
        return float(self.sim.grid.bus_nominal_kv[self._bus_col(bus)])

    def _plan(self, pmu: PmuSpec) -> _PmuPlan:
        base_mva = self.sim.grid.base_mva
        phasors = [c for c in pmu.channels if c.kind == "phasor"]
        v_pos, v_col, v_scale, i_pos, i_line, i_from, i_scale = [], [], [], [], [], [], []
        for pos, ch in enumerate(phasors):
            if ch.measures == "line_current" and ch.line is not None:
                end_bus = ch.bus if ch.bus is not None else pmu.bus
                k, first_is_from = self._line_index(ch.line)
                at_from = first_is_from if end_bus == ch.line[0] else not first_is_from
                kv = self._base_kv(end_bus, ch)
                i_pos.append(pos)
                i_line.append(k)
                i_from.append(at_from)
                i_scale.append(base_mva * 1e6 / (math.sqrt(3.0) * kv * 1e3))
            else:
                bus = ch.bus if ch.bus is not None else pmu.bus
                v_pos.append(pos)
                v_col.append(self._bus_col(bus))
                v_scale.append(self._base_kv(bus, ch) * 1e3 / math.sqrt(3.0))
        analogs = [c for c in pmu.channels if c.kind == "analog"]
        analog_lines: list[tuple[int, bool, float] | None] = []
        for ch in analogs:
            if ch.measures == "power" and ch.line is not None:
                k, first_is_from = self._line_index(ch.line)
                end_bus = ch.bus if ch.bus is not None else pmu.bus
                analog_lines.append((k, first_is_from if end_bus == ch.line[0] else not first_is_from, base_mva))
            else:
                analog_lines.append(None)
        col = self._bus_col(pmu.bus)
        status_lines = [
            k for k, (b1, b2) in enumerate(self.sim.grid.line_buses) if col in (self._bus_col(b1), self._bus_col(b2))
        ][:16]
        return _PmuPlan(
            spec=pmu,
            freq_col=col,
            v_pos=np.array(v_pos, dtype=np.int64),
            v_col=np.array(v_col, dtype=np.int64),
            v_volts_per_pu=np.array(v_scale),
            i_pos=np.array(i_pos, dtype=np.int64),
            i_line=np.array(i_line, dtype=np.int64),
            i_from=np.array(i_from, dtype=bool),
            i_amps_per_pu=np.array(i_scale),
            analog_specs=analogs,
            analog_lines=analog_lines,
            status_lines=status_lines,
            n_phasors=len(phasors),
        )

    # ------------------------------------------------------------------------------- config

    def build_config(self) -> ConfigFrame:
        """Return the CFG-2 of the stream as configured now."""
        pmus = []
        for plan in self.plans:
            spec = plan.spec
            phasor_channels = []
            phasors = [c for c in spec.channels if c.kind == "phasor"]
            for pos, ch in enumerate(phasors):
                is_current = pos in set(plan.i_pos.tolist())
                scale = ch.scale
                if not spec.phasor_float and scale in (0.0, 1.0):
                    if is_current:
                        amps = plan.i_amps_per_pu[list(plan.i_pos).index(pos)]
                        scale = INT16_CURRENT_RANGE_PU * amps / 32767.0
                    else:
                        volts = plan.v_volts_per_pu[list(plan.v_pos).index(pos)]
                        scale = INT16_VOLTAGE_RANGE_PU * volts / 32767.0
                    scale = round(scale * 1e5) / 1e5  # PHUNIT counts 1e-5 V or A
                phasor_channels.append(PhasorChannel(ch.name[:16], "A" if is_current else "V", scale))
            analog_channels = [AnalogChannel(ch.name[:16], 1, 1.0) for ch in plan.analog_specs]
            digital_names = [f"LINE{self.sim.grid.line_ids[k]}"[:16] for k in plan.status_lines]
            digital_names += [""] * (16 - len(digital_names))
            digitals = [DigitalWord(digital_names, normal_mask=0, valid_mask=(1 << len(plan.status_lines)) - 1)]
            pmus.append(
                PmuConfig(
                    station_name=spec.station_name[:16],
                    idcode=spec.idcode,
                    phasor_float=spec.phasor_float,
                    polar=spec.polar,
                    freq_float=spec.freq_float,
                    analog_float=spec.analog_float,
                    phasors=phasor_channels,
                    analogs=analog_channels,
                    digitals=digitals,
                    nominal_hz=spec.nominal_hz,
                    cfgcnt=self.cfgcnt,
                    latitude_deg=spec.latitude_deg if spec.latitude_deg is not None else math.inf,
                    longitude_deg=spec.longitude_deg if spec.longitude_deg is not None else math.inf,
                )
            )
        return ConfigFrame(idcode=self.stream.idcode, time_base=TIME_BASE, data_rate=self.rate_fps, pmus=pmus)

    def header_text(self) -> str:
        """Return the header frame text describing the stream."""
        names = ", ".join(f"{p.spec.station_name} (bus {p.spec.bus})" for p in self.plans)
        return f"WAMS simulated {self.sim.grid.spec.title} stream {self.stream.name}: {names}"

    # ---------------------------------------------------------------------------- measuring

    def measure(self, sample: GridSample, row: int = 0) -> list[PmuData]:
        """Return the PMU blocks for instant `row` of `sample` (flagged blocks if it is not simulated)."""
        if not sample.simulated[row]:
            return self.unsimulated()
        snap = sample.snapshot
        f0 = self.sim.grid.nominal_hz
        out = []
        for plan in self.plans:
            phasors = np.zeros(plan.n_phasors, dtype=np.complex128)
            if plan.v_pos.size:
                phasors[plan.v_pos] = snap.bus_voltage_pu[row, plan.v_col] * plan.v_volts_per_pu
            if plan.i_pos.size:
                i_pu = np.where(
                    plan.i_from,
                    sample.line_current_from_pu[row, plan.i_line],
                    sample.line_current_to_pu[row, plan.i_line],
                )
                phasors[plan.i_pos] = i_pu * plan.i_amps_per_pu
            phasors = self.noise.phasors(phasors)
            freq = float(self.noise.frequency_hz(np.array([snap.bus_frequency_pu[row, plan.freq_col] * f0]))[0])
            rocof = float(self.noise.rocof_hz_per_s(np.array([snap.bus_rocof_pu_per_s[row, plan.freq_col] * f0]))[0])
            analogs = np.zeros(len(plan.analog_specs))
            for a, target in enumerate(plan.analog_lines):
                if target is None:
                    continue
                k, at_from, mw_per_pu = target
                b1, b2 = self.sim.network.from_col[k], self.sim.network.to_col[k]
                v = snap.bus_voltage_pu[row, b1 if at_from else b2]
                i = sample.line_current_from_pu[row, k] if at_from else sample.line_current_to_pu[row, k]
                analogs[a] = float(np.real(v * np.conj(i))) * mw_per_pu
            word = 0
            for bit, k in enumerate(plan.status_lines):
                if snap.line_closed[row, k]:
                    word |= 1 << bit
            out.append(
                PmuData(
                    stat=plan.flags.stat(),
                    phasors=phasors,
                    frequency_hz=freq,
                    rocof_hz_per_s=rocof,
                    analogs=analogs,
                    digitals=[word],
                )
            )
        return out

    def unsimulated(self) -> list[PmuData]:
        """Return PMU blocks for an instant with no simulated values: STAT data error 10, values absent."""
        return [
            PmuData(
                stat=plan.flags.stat(simulated=False),
                phasors=np.full(plan.n_phasors, complex(np.nan, np.nan), dtype=np.complex128),
                frequency_hz=math.nan,
                rocof_hz_per_s=math.nan,
                analogs=np.full(len(plan.analog_specs), np.nan),
                digitals=[0],
            )
            for plan in self.plans
        ]

    def flags_of(self, idcode: int) -> PmuFlags:
        """Return the injectable STAT conditions of PMU `idcode`."""
        for plan in self.plans:
            if plan.spec.idcode == idcode:
                return plan.flags
        raise KeyError(f"no PMU {idcode} in stream {self.stream.name}")
