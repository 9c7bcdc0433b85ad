"""COMTRADE export (IEEE C37.111-1999/2013, ASCII), written in two passes over time slices.

The configuration file needs each channel's scaling and the number of samples before the first data
line, so a first pass over the slices gathers per-channel extremes and the time axis, and a second
pass writes the data file slice by slice: memory is bounded by one slice, not by the window.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from wams.grid.models import Channel, Pmu
from wams.historian.export.slices import ExportPlan, PmuColumns, plan_export
from wams.historian.models import datetime_from_us

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# ASCII data values are integers in [-99999, 99998]; 99999 marks a missing value (1999 and 2013).
COMTRADE_MAX_INT = 99998
COMTRADE_MISSING = 99999


@dataclass
class ComtradeRecord:
    """A COMTRADE record: the configuration and data files' text (CRLF line ends)."""

    cfg: str
    dat: str

    def to_zip(self, basename: str) -> bytes:
        """Return a zip archive holding `<basename>.cfg` and `<basename>.dat`."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{basename}.cfg", self.cfg)
            archive.writestr(f"{basename}.dat", self.dat)
        return buffer.getvalue()


@dataclass
class _Analog:
    """An analog channel of the record and its extremes over the window (first pass)."""

    pmu_id: int
    column: str  # historian channel name
    name: str
    unit: str
    low: float = math.inf
    high: float = -math.inf
    integral: bool = True

    def see(self, values: F64) -> None:
        finite = values[np.isfinite(values)]
        if len(finite):
            self.low = min(self.low, float(finite.min()))
            self.high = max(self.high, float(finite.max()))
            self.integral = self.integral and bool(np.all(finite == np.round(finite)))

    def scaling(self) -> tuple[float, float]:
        """Return (a, b) so that round((v - b) / a) spans at most +-COMTRADE_MAX_INT."""
        if self.low > self.high:
            return 1.0, 0.0
        if self.low == self.high:
            return 1.0, self.low
        if self.low >= -COMTRADE_MAX_INT and self.high <= COMTRADE_MAX_INT and self.integral:
            return 1.0, 0.0  # integers that fit (STAT, digital-like analogs) stay exact
        return (self.high - self.low) / (2 * COMTRADE_MAX_INT), (self.high + self.low) / 2


@dataclass
class _TimeAxis:
    """The record's instants seen so far (first pass): count, ends and the extremes of the steps."""

    n: int = 0
    first_us: int = 0
    last_us: int = 0
    min_step_us: int = 2**62
    max_step_us: int = 0
    _steps: list[int] = field(default_factory=list)

    def see(self, times: I64) -> None:
        if not len(times):
            return
        steps = np.diff(times)
        if self.n:
            steps = np.concatenate(([int(times[0]) - self.last_us], steps))
        else:
            self.first_us = int(times[0])
        if len(steps):
            self.min_step_us = min(self.min_step_us, int(steps.min()))
            self.max_step_us = max(self.max_step_us, int(steps.max()))
        self.n += len(times)
        self.last_us = int(times[-1])

    def rates(self) -> list[str]:
        """Return the nrates lines: one fixed rate when samples are evenly spaced, else 0 (use timestamps)."""
        if self.n > 1:
            fps = round(1e6 * (self.n - 1) / (self.last_us - self.first_us))
            if fps > 0 and self.min_step_us >= 1e6 / fps - 1.0 and self.max_step_us <= 1e6 / fps + 1.0:
                return ["1", f"{fps},{self.n}"]
        return ["0", f"0,{self.n}"]


def _clean(text: str, limit: int = 64) -> str:
    """Keep a name COMTRADE-safe: no commas or line breaks."""
    return re.sub(r"[,\r\n]", " ", text).strip()[:limit]


def _channels(plan: ExportPlan) -> tuple[list[_Analog], list[tuple[int, str, int, str]]]:
    """Return the analog channels and the status bits (PMU, digital column, bit, name) of a plan."""
    rows = Channel.objects.filter(pmu_id__in=[p.pmu_id for p in plan.pmus]).values_list(
        "pmu_id", "kind", "order", "name", "unit"
    )
    names = {(pmu_id, kind, order): (name, unit) for pmu_id, kind, order, name, unit in rows}
    analogs: list[_Analog] = []
    bits: list[tuple[int, str, int, str]] = []
    for pmu in plan.pmus:
        station = _clean(pmu.station, 16)
        analogs += [
            _Analog(pmu.pmu_id, "frequency_hz", f"{station} FREQ", "Hz"),
            _Analog(pmu.pmu_id, "rocof_hz_per_s", f"{station} ROCOF", "Hz/s"),
            _Analog(pmu.pmu_id, "stat", f"{station} STAT", ""),
        ]
        n_phasors, n_analogs, n_digitals = pmu.counts
        for k in range(n_phasors):
            name, unit = names.get((pmu.pmu_id, Channel.Kind.PHASOR, k), (f"PH{k}", ""))
            analogs.append(_Analog(pmu.pmu_id, f"phasor_{k}_magnitude", f"{station} {name} MAG", unit))
            analogs.append(_Analog(pmu.pmu_id, f"phasor_{k}_angle_deg", f"{station} {name} ANG", "deg"))
        for k in range(n_analogs):
            name, unit = names.get((pmu.pmu_id, Channel.Kind.ANALOG, k), (f"AN{k}", ""))
            analogs.append(_Analog(pmu.pmu_id, f"analog_{k}", f"{station} {name}", unit))
        for k in range(n_digitals):
            name, _ = names.get((pmu.pmu_id, Channel.Kind.DIGITAL, k), (f"DG{k}", ""))
            bits += [(pmu.pmu_id, f"digital_{k}", bit, f"{station} {name} B{bit}") for bit in range(16)]
    return analogs, bits


def _slice_table(
    series: list[tuple[PmuColumns, I64, dict[str, F64]]],
) -> tuple[I64, dict[int, tuple[npt.NDArray[np.intp], dict[str, F64]]]]:
    """Return the union of a slice's times and, per PMU, the row of each sample and its columns."""
    times = np.unique(np.concatenate([timestamp_us for _, timestamp_us, _ in series]))
    return times, {pmu.pmu_id: (np.searchsorted(times, stamps), columns) for pmu, stamps, columns in series}


def _timestamp(timestamp_us: int) -> str:
    moment = datetime_from_us(timestamp_us)
    return f"{moment:%d/%m/%Y,%H:%M:%S.%f}"


def _cfg(
    plan: ExportPlan,
    analogs: list[_Analog],
    bits: list[tuple[int, str, int, str]],
    axis: _TimeAxis,
    rev_year: int,
    station_name: str,
    time_mult: int,
) -> str:
    nominal = Pmu.objects.filter(pk=plan.pmus[0].pmu_id).values_list("nominal_frequency_hz", flat=True).first()
    lines = [
        f"{_clean(station_name)},{'+'.join(str(pmu.pmu_id) for pmu in plan.pmus)},{rev_year}",
        f"{len(analogs) + len(bits)},{len(analogs)}A,{len(bits)}D",
    ]
    for index, channel in enumerate(analogs, start=1):
        a, b = channel.scaling()
        if channel.low <= channel.high:
            low, high = round((channel.low - b) / a), round((channel.high - b) / a)
        else:
            low, high = 0, 0
        lines.append(f"{index},{_clean(channel.name)},,,{_clean(channel.unit, 8)},{a!r},{b!r},0,{low},{high},1,1,P")
    for index, (_, _, _, name) in enumerate(bits, start=1):
        lines.append(f"{index},{_clean(name)},,,0")
    lines.append(str(nominal or 60))
    lines += axis.rates()
    lines += [_timestamp(axis.first_us), _timestamp(axis.first_us), "ASCII", str(time_mult)]
    if rev_year == 2013:
        lines += ["0,0", "0,0"]  # time code and local code (UTC); time quality and leap second
    return "\r\n".join(lines) + "\r\n"


def comtrade_files(
    pmu_ids: Sequence[int],
    start: datetime,
    end: datetime,
    rev_year: int = 1999,
    station_name: str = "WAMS",
    include_recent: bool = True,
) -> tuple[str, Iterator[str]]:
    """Return an ASCII COMTRADE record of the PMUs over [start, end]: the cfg text and the dat text slice by slice.

    Analog channels per PMU: frequency, ROCOF, STAT, each phasor's magnitude and angle (deg), each
    analog; status channels: the 16 bits of each digital word. Values are scaled integers (a * x + b).
    Raises LookupError when the window holds no sample, budget.BudgetExceeded when it is over budget.
    """
    if rev_year not in (1999, 2013):
        raise ValueError("COMTRADE revision must be 1999 or 2013")
    plan = plan_export(pmu_ids, start, end, None, include_recent)
    analogs, bits = _channels(plan)
    axis = _TimeAxis()
    for first_us, last_us in plan.slices():  # first pass: extremes and the time axis
        series = plan.read(first_us, last_us)
        if series:
            times, _ = _slice_table(series)
            axis.see(times)
            by_pmu = {pmu.pmu_id: columns for pmu, _, columns in series}
            for channel in analogs:
                if channel.pmu_id in by_pmu:
                    channel.see(by_pmu[channel.pmu_id][channel.column])
    if axis.n == 0:
        raise LookupError("no samples in the window")
    time_mult = max(1, math.ceil((axis.last_us - axis.first_us) / 9_999_999_999))  # the field holds 10 digits
    cfg = _cfg(plan, analogs, bits, axis, rev_year, station_name, time_mult)
    return cfg, _dat(plan, analogs, bits, axis.first_us, time_mult)


def _dat(
    plan: ExportPlan, analogs: list[_Analog], bits: list[tuple[int, str, int, str]], first_us: int, time_mult: int
) -> Iterator[str]:
    """Yield the data file's lines one slice at a time (second pass)."""
    scales = [channel.scaling() for channel in analogs]
    sample = 1
    for first, last in plan.slices():
        series = plan.read(first, last)
        if not series:
            continue
        times, by_pmu = _slice_table(series)
        n = len(times)
        columns = []
        for channel, (a, b) in zip(analogs, scales, strict=True):
            values = np.full(n, np.nan)
            if channel.pmu_id in by_pmu:
                rows, pmu_columns = by_pmu[channel.pmu_id]
                values[rows] = pmu_columns[channel.column]
            scaled = np.round((values - b) / a)
            columns.append(np.where(np.isfinite(scaled), scaled, COMTRADE_MISSING).astype(np.int64).astype(str))
        for pmu_id, column, bit, _ in bits:
            word = np.zeros(n, dtype=np.uint16)
            if pmu_id in by_pmu:
                rows, pmu_columns = by_pmu[pmu_id]
                digital = pmu_columns[column]
                word[rows] = np.where(np.isfinite(digital), digital, 0).astype(np.uint16)
            columns.append(((word >> bit) & 1).astype(str))
        numbers = np.arange(sample, sample + n).astype(str)
        offsets = ((times - first_us) // time_mult).astype(str)
        yield "".join(",".join(fields) + "\r\n" for fields in zip(numbers, offsets, *columns, strict=True))
        sample += n


def export_comtrade(
    pmu_ids: Sequence[int],
    start: datetime,
    end: datetime,
    rev_year: int = 1999,
    station_name: str = "WAMS",
    include_recent: bool = True,
) -> ComtradeRecord:
    """Return the record of `comtrade_files` whole (for small windows; stream `iter_comtrade_zip` otherwise)."""
    cfg, dat = comtrade_files(pmu_ids, start, end, rev_year, station_name, include_recent)
    return ComtradeRecord(cfg=cfg, dat="".join(dat))


class _Pipe(io.RawIOBase):
    """A write-only stream whose bytes are taken out as they come (zipfile writes to it unseekably)."""

    def __init__(self) -> None:
        self.pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.pending += data
        return len(data)

    def take(self) -> bytes:
        out, self.pending = bytes(self.pending), bytearray()
        return out


def iter_zip(files: Sequence[tuple[str, Iterator[str] | str]]) -> Iterator[bytes]:
    """Yield a deflated zip archive of text files, each given whole or as an iterator of pieces."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            with archive.open(name, "w", force_zip64=True) as member:
                for piece in [content] if isinstance(content, str) else content:
                    member.write(piece.encode())
                    if len(pipe.pending) >= 1 << 16:
                        yield pipe.take()
            yield pipe.take()
    yield pipe.take()
