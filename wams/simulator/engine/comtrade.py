"""Fault recorder: IEEE C37.111-1999 COMTRADE (ASCII cfg + dat) of a fault window.

Point-on-wave signals are synthesised from the simulated positive-sequence phasors
(balanced three-phase: x_a(t) = sqrt(2) |X(t)| cos(2 pi f0 t + angle X(t)), b and c -120/+120 deg),
with t counted from the UTC second, the same reference the PMUs' phasor angles use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from wams.simulator.engine.trajectory import BoolArray, ComplexArray, FloatArray

#: ASCII COMTRADE-1999 sample values are integers; this keeps them inside 16 bits.
_RAW_FULL_SCALE = 32767


@dataclass
class AnalogSignal:
    """One analog channel: instantaneous samples in engineering units."""

    name: str
    phase: str  #: "A", "B", "C" or ""
    circuit: str  #: circuit component being monitored (bus or line name)
    unit: str  #: "V" or "A"
    samples: FloatArray  #: (n,)


@dataclass
class DigitalSignal:
    """One status channel, sampled like the analogs."""

    name: str
    samples: BoolArray  #: (n,)
    normal_state: int = 0


@dataclass
class ComtradeRecord:
    """Everything one cfg/dat pair holds."""

    station_name: str
    device_id: str
    frequency_hz: float
    sample_rate_hz: float
    start_utc_s: float
    trigger_utc_s: float
    analogs: list[AnalogSignal] = field(default_factory=list)
    digitals: list[DigitalSignal] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        """Return the number of samples per channel."""
        if self.analogs:
            return int(self.analogs[0].samples.shape[0])
        return int(self.digitals[0].samples.shape[0]) if self.digitals else 0


def three_phase(phasor_rms: ComplexArray, t_utc_s: FloatArray, frequency_hz: float) -> FloatArray:
    """Return (n, 3) instantaneous phase values from positive-sequence phasors (n,) at times (n,)."""
    seconds = t_utc_s - np.floor(t_utc_s[0])
    wt = 2.0 * np.pi * frequency_hz * seconds
    shifts = np.array([0.0, -2.0 * np.pi / 3.0, 2.0 * np.pi / 3.0])
    angle = wt[:, None] + np.angle(phasor_rms)[:, None] + shifts[None, :]
    return np.asarray(math.sqrt(2.0) * np.abs(phasor_rms)[:, None] * np.cos(angle), dtype=np.float64)


def _timestamp(utc_s: float) -> str:
    dt = datetime.fromtimestamp(utc_s, tz=UTC)
    return dt.strftime("%d/%m/%Y,%H:%M:%S.") + f"{dt.microsecond:06d}"


def _clean(text: str) -> str:
    return text.replace(",", " ")


def write_comtrade(record: ComtradeRecord, stem: Path) -> tuple[Path, Path]:
    """Write `stem`.cfg and `stem`.dat (ASCII, 1999 revision); return both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    n = record.n_samples
    scales: list[float] = []
    raws: list[np.ndarray] = []
    for signal in record.analogs:
        peak = float(np.max(np.abs(signal.samples))) if n else 0.0
        scale = peak / _RAW_FULL_SCALE if peak > 0 else 1.0
        scales.append(scale)
        raws.append(np.rint(signal.samples / scale).astype(np.int64))
    lines = [
        f"{_clean(record.station_name)},{_clean(record.device_id)},1999",
        f"{len(record.analogs) + len(record.digitals)},{len(record.analogs)}A,{len(record.digitals)}D",
    ]
    for k, (signal, scale) in enumerate(zip(record.analogs, scales), start=1):
        lines.append(
            f"{k},{_clean(signal.name)},{signal.phase},{_clean(signal.circuit)},{signal.unit},"
            f"{scale:.9g},0,0,{-_RAW_FULL_SCALE},{_RAW_FULL_SCALE},1,1,P"
        )
    for k, digital in enumerate(record.digitals, start=1):
        lines.append(f"{k},{_clean(digital.name)},,,{digital.normal_state}")
    lines += [
        f"{record.frequency_hz:g}",
        "1",
        f"{record.sample_rate_hz:g},{n}",
        _timestamp(record.start_utc_s),
        _timestamp(record.trigger_utc_s),
        "ASCII",
        "1",
    ]
    cfg = stem.with_suffix(".cfg")
    cfg.write_text("\r\n".join(lines) + "\r\n")
    period_us = 1e6 / record.sample_rate_hz
    columns = [np.arange(1, n + 1), np.rint(np.arange(n) * period_us).astype(np.int64), *raws]
    columns += [d.samples.astype(np.int64) for d in record.digitals]
    table = np.column_stack(columns) if n else np.zeros((0, len(columns)), dtype=np.int64)
    dat = stem.with_suffix(".dat")
    dat.write_text("".join(",".join(str(int(v)) for v in row) + "\r\n" for row in table))
    return cfg, dat


def voltage_signals(name: str, phasor_v: ComplexArray, t_utc_s: FloatArray, frequency_hz: float) -> list[AnalogSignal]:
    """Return the three phase-voltage channels of one bus."""
    wave = three_phase(phasor_v, t_utc_s, frequency_hz)
    return [AnalogSignal(f"{name} V{p}", p, name, "V", wave[:, k]) for k, p in enumerate("ABC")]


def current_signals(name: str, phasor_a: ComplexArray, t_utc_s: FloatArray, frequency_hz: float) -> list[AnalogSignal]:
    """Return the three phase-current channels of one line end."""
    wave = three_phase(phasor_a, t_utc_s, frequency_hz)
    return [AnalogSignal(f"{name} I{p}", p, name, "A", wave[:, k]) for k, p in enumerate("ABC")]


def sample_instants(start_utc_s: float, end_utc_s: float, sample_rate_hz: float) -> FloatArray:
    """Return the sample times (n,) of a window at `sample_rate_hz`."""
    n = math.floor((end_utc_s - start_utc_s) * sample_rate_hz) + 1
    return np.asarray(start_utc_s + np.arange(n) / sample_rate_hz, dtype=np.float64)


def digital_from_intervals(t_s: FloatArray, intervals: Sequence[tuple[float, float]]) -> BoolArray:
    """Return True where `t_s` (n,) falls inside any [start, end) interval."""
    out = np.zeros(t_s.shape, dtype=bool)
    for start, end in intervals:
        out |= (t_s >= start) & (t_s < end)
    return out
