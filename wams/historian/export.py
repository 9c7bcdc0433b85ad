"""Raw exports: CSV (every value at full precision) and COMTRADE (IEEE C37.111-1999/2013, ASCII).

Callers check access (e.g. `wams.grid.services.visible_pmus`) before passing PMU ids.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from wams.grid.models import Channel, Pmu
from wams.historian.blocks import SampleBlock
from wams.historian.models import datetime_from_us, us_from_datetime
from wams.historian.query import channel_counts, channel_names, parse_channel, read_columns, read_samples

F64 = npt.NDArray[np.float64]

# ASCII data values are integers in [-99999, 99998]; 99999 marks a missing value (1999 and 2013).
COMTRADE_MAX_INT = 99998
COMTRADE_MISSING = 99999


def _load(pmu_ids: Sequence[int], start: datetime, end: datetime, include_recent: bool) -> list[SampleBlock]:
    blocks = [read_samples(pmu_id, start, end, include_recent) for pmu_id in pmu_ids]
    return [block for block in blocks if block is not None]


def _align(blocks: Sequence[SampleBlock]) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[np.intp]]]:
    """Return the union of the blocks' timestamps and, per block, the row of each of its samples."""
    if not blocks:
        return np.zeros(0, dtype=np.int64), []
    times = blocks[0].timestamp_us
    for block in blocks[1:]:
        times = np.union1d(times, block.timestamp_us)
    return times, [np.searchsorted(times, block.timestamp_us) for block in blocks]


def _iso(timestamp_us: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """Format UTC microsecond timestamps as ISO 8601 with a Z suffix."""
    text = np.datetime_as_string(timestamp_us.astype("datetime64[us]"), unit="us")
    return np.char.add(text, "Z")


def _station_labels(pmu_ids: Sequence[int]) -> dict[int, str]:
    names = dict(Pmu.objects.filter(pk__in=pmu_ids).values_list("pk", "station_name"))
    return {pmu_id: f"{names.get(pmu_id, 'PMU')}[{pmu_id}]" for pmu_id in pmu_ids}


def iter_csv(
    pmu_ids: Sequence[int],
    start: datetime,
    end: datetime,
    channels: Sequence[str] | None = None,
    include_recent: bool = True,
) -> Iterator[str]:
    """Yield CSV lines: one row per instant, one column per PMU channel (default: all); empty = missing.

    Values are those of `query_traces` undecimated, written so that they read back bit-exact.
    """
    start_us, end_us = us_from_datetime(start), us_from_datetime(end)
    labels = _station_labels(pmu_ids)
    series = []
    for pmu_id in pmu_ids:
        names = channels or channel_names(*channel_counts(pmu_id, start_us, end_us, include_recent))
        specs = [parse_channel(name) for name in names]
        timestamp_us, columns = read_columns(pmu_id, specs, start_us, end_us, include_recent)
        if len(timestamp_us):
            series.append((pmu_id, specs, timestamp_us, columns))
    times = np.unique(np.concatenate([s[2] for s in series])) if series else np.zeros(0, dtype=np.int64)
    header = ["timestamp_utc", "timestamp_us"]
    table: list[list[str]] = [_iso(times).tolist(), [str(t) for t in times.tolist()]]
    for pmu_id, specs, timestamp_us, columns in series:
        rows = np.searchsorted(times, timestamp_us).tolist()
        for spec in specs:
            header.append(f"{labels[pmu_id]}.{spec.name}")
            text = [""] * len(times)
            as_text = _integer_text if spec.kind in ("stat", "digital") else _float_text
            for index, value in zip(rows, columns[spec.name].tolist(), strict=True):
                text[index] = as_text(value)
            table.append(text)
    yield ",".join(header) + "\r\n"
    for line in zip(*table, strict=True):
        yield ",".join(line) + "\r\n"


def _float_text(value: float) -> str:
    """Write a float so that it reads back bit-exact; empty when missing."""
    return "" if math.isnan(value) else repr(value)


def _integer_text(value: float) -> str:
    return "" if math.isnan(value) else str(int(value))


def export_csv(
    pmu_ids: Sequence[int],
    start: datetime,
    end: datetime,
    channels: Sequence[str] | None = None,
    include_recent: bool = True,
) -> str:
    """Return the CSV of `iter_csv` as one string."""
    return "".join(iter_csv(pmu_ids, start, end, channels, include_recent))


def _counts(block: SampleBlock) -> tuple[int, int, int]:
    return block.phasors.shape[1], block.analogs.shape[1], block.digitals.shape[1]


# --- COMTRADE ------------------------------------------------------------------------------------


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
    name: str
    unit: str
    values: F64  # (n,) on the record's time axis, NaN = missing


def _clean(text: str, limit: int = 64) -> str:
    """Keep a name COMTRADE-safe: no commas or line breaks."""
    return re.sub(r"[,\r\n]", " ", text).strip()[:limit]


def _scaling(values: F64) -> tuple[float, float]:
    """Return (a, b) so that round((v - b) / a) spans at most +-COMTRADE_MAX_INT for the finite values."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return 1.0, 0.0
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        return 1.0, low
    if low >= -COMTRADE_MAX_INT and high <= COMTRADE_MAX_INT and np.all(finite == np.round(finite)):
        return 1.0, 0.0  # integers that fit (STAT, digital-like analogs) stay exact
    return (high - low) / (2 * COMTRADE_MAX_INT), (high + low) / 2


def _channel_names(pmu_ids: Sequence[int]) -> dict[tuple[int, str, int], tuple[str, str]]:
    """Return (pmu id, kind, order) -> (CHNAM, unit) from the grid model."""
    rows = Channel.objects.filter(pmu_id__in=pmu_ids).values_list("pmu_id", "kind", "order", "name", "unit")
    return {(pmu_id, kind, order): (name, unit) for pmu_id, kind, order, name, unit in rows}


def _pmu_channels(
    block: SampleBlock,
    row: npt.NDArray[np.intp],
    n: int,
    station: str,
    names: dict[tuple[int, str, int], tuple[str, str]],
) -> tuple[list[_Analog], list[tuple[str, npt.NDArray[np.uint8]]]]:
    """Return the analog channels and status bits of one PMU spread onto the record's n instants."""

    def spread(values: F64) -> F64:
        out = np.full(n, np.nan)
        out[row] = values
        return out

    analogs = [
        _Analog(f"{station} FREQ", "Hz", spread(block.frequency_hz)),
        _Analog(f"{station} ROCOF", "Hz/s", spread(block.rocof_hz_per_s)),
        _Analog(f"{station} STAT", "", spread(block.stat.astype(np.float64))),
    ]
    for k in range(block.phasors.shape[1]):
        name, unit = names.get((block.pmu_id, Channel.Kind.PHASOR, k), (f"PH{k}", ""))
        analogs.append(_Analog(f"{station} {name} MAG", unit, spread(np.abs(block.phasors[:, k]))))
        analogs.append(_Analog(f"{station} {name} ANG", "deg", spread(np.degrees(np.angle(block.phasors[:, k])))))
    for k in range(block.analogs.shape[1]):
        name, unit = names.get((block.pmu_id, Channel.Kind.ANALOG, k), (f"AN{k}", ""))
        analogs.append(_Analog(f"{station} {name}", unit, spread(block.analogs[:, k])))
    bits = []
    for k in range(block.digitals.shape[1]):
        name, _ = names.get((block.pmu_id, Channel.Kind.DIGITAL, k), (f"DG{k}", ""))
        word = np.zeros(n, dtype=np.uint16)
        word[row] = block.digitals[:, k]
        for bit in range(16):
            bits.append((f"{station} {name} B{bit}", ((word >> bit) & 1).astype(np.uint8)))
    return analogs, bits


def _timestamp(timestamp_us: int) -> str:
    moment = datetime_from_us(timestamp_us)
    return f"{moment:%d/%m/%Y,%H:%M:%S.%f}"


def export_comtrade(
    pmu_ids: Sequence[int],
    start: datetime,
    end: datetime,
    rev_year: int = 1999,
    station_name: str = "WAMS",
    include_recent: bool = True,
) -> ComtradeRecord:
    """Return an ASCII COMTRADE record of the PMUs' samples over [start, end], time-aligned.

    Analog channels per PMU: frequency, ROCOF, STAT, each phasor's magnitude and angle (deg), each
    analog; status channels: the 16 bits of each digital word. Values are scaled integers (a * x + b).
    """
    if rev_year not in (1999, 2013):
        raise ValueError("COMTRADE revision must be 1999 or 2013")
    blocks = _load(pmu_ids, start, end, include_recent)
    if not blocks:
        raise LookupError("no samples in the window")
    times, rows = _align(blocks)
    n = len(times)
    stations = dict(Pmu.objects.filter(pk__in=pmu_ids).values_list("pk", "station_name"))
    frequencies = dict(Pmu.objects.filter(pk__in=pmu_ids).values_list("pk", "nominal_frequency_hz"))
    names = _channel_names(pmu_ids)
    analogs: list[_Analog] = []
    bits: list[tuple[str, npt.NDArray[np.uint8]]] = []
    for block, row in zip(blocks, rows, strict=True):
        more_analogs, more_bits = _pmu_channels(
            block, row, n, _clean(stations.get(block.pmu_id, f"PMU{block.pmu_id}"), 16), names
        )
        analogs += more_analogs
        bits += more_bits
    span_us = int(times[-1] - times[0])
    time_mult = max(1, math.ceil(span_us / 9_999_999_999))  # the timestamp field holds at most 10 digits
    lines = [
        f"{_clean(station_name)},{'+'.join(str(block.pmu_id) for block in blocks)},{rev_year}",
        f"{len(analogs) + len(bits)},{len(analogs)}A,{len(bits)}D",
    ]
    columns = []
    for index, channel in enumerate(analogs, start=1):
        a, b = _scaling(channel.values)
        scaled = np.round((channel.values - b) / a)
        ints = np.where(np.isfinite(scaled), scaled, COMTRADE_MISSING).astype(np.int64)
        present = ints[ints != COMTRADE_MISSING]
        low, high = (int(present.min()), int(present.max())) if len(present) else (0, 0)
        lines.append(f"{index},{_clean(channel.name)},,,{_clean(channel.unit, 8)},{a!r},{b!r},0,{low},{high},1,1,P")
        columns.append(ints.astype(str))
    for index, (name, values) in enumerate(bits, start=1):
        lines.append(f"{index},{_clean(name)},,,0")
        columns.append(values.astype(str))
    lines.append(str(frequencies.get(blocks[0].pmu_id, 60)))
    lines += _rates(times)
    lines += [_timestamp(int(times[0])), _timestamp(int(times[0])), "ASCII", str(time_mult)]
    if rev_year == 2013:
        lines += ["0,0", "0,0"]  # time code and local code (UTC); time quality and leap second
    sample = np.arange(1, n + 1).astype(str)
    offsets = ((times - times[0]) // time_mult).astype(str)
    dat = "".join(",".join(fields) + "\r\n" for fields in zip(sample, offsets, *columns, strict=True))
    return ComtradeRecord(cfg="\r\n".join(lines) + "\r\n", dat=dat)


def _rates(times: npt.NDArray[np.int64]) -> list[str]:
    """Return the nrates lines: one fixed rate when samples are evenly spaced, else 0 (use timestamps)."""
    if len(times) > 1:
        step = np.diff(times)
        rate = 1e6 / float(np.mean(step))
        fps = round(rate)
        if fps > 0 and np.all(np.abs(step - 1e6 / fps) <= 1.0):
            return ["1", f"{fps},{len(times)}"]
    return ["0", f"0,{len(times)}"]
