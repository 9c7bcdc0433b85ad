"""CSV export: one row per instant, one column per PMU channel, every value at full precision, slice by slice."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt

from wams.historian.export.slices import ExportPlan, plan_export


def iso_times(timestamp_us: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """Format UTC microsecond timestamps as ISO 8601 with a Z suffix."""
    text = np.datetime_as_string(timestamp_us.astype("datetime64[us]"), unit="us")
    return np.char.add(text, "Z")


def _float_text(value: float) -> str:
    """Write a float so that it reads back bit-exact; empty when missing."""
    return "" if math.isnan(value) else repr(value)


def _integer_text(value: float) -> str:
    return "" if math.isnan(value) else str(int(value))


def iter_csv(
    pmu_ids: Sequence[int],
    start: datetime,
    end: datetime,
    channels: Sequence[str] | None = None,
    include_recent: bool = True,
    plan: ExportPlan | None = None,
) -> Iterator[str]:
    """Yield CSV text: a header line, then rows of one slice of the window at a time; empty cell = missing.

    Values are those of `query_traces` undecimated, written so that they read back bit-exact. The
    export is planned (and priced) first unless `plan` is given; an empty window yields the header only.
    """
    if plan is None:
        try:
            plan = plan_export(pmu_ids, start, end, channels, include_recent)
        except LookupError:
            yield "timestamp_utc,timestamp_us\r\n"
            return
    header = ["timestamp_utc", "timestamp_us"]
    header += [f"{pmu.label}.{spec.name}" for pmu in plan.pmus for spec in pmu.specs]
    yield ",".join(header) + "\r\n"
    width = len(header) - 2
    for first_us, last_us in plan.slices():
        series = plan.read(first_us, last_us)
        if not series:
            continue
        times = np.unique(np.concatenate([timestamp_us for _, timestamp_us, _ in series]))
        table: list[list[str]] = [iso_times(times).tolist(), [str(t) for t in times.tolist()]]
        table += [[""] * len(times) for _ in range(width)]
        offsets = {}
        column = 2
        for pmu in plan.pmus:
            offsets[pmu.pmu_id] = column
            column += len(pmu.specs)
        for pmu, timestamp_us, columns in series:
            rows = np.searchsorted(times, timestamp_us).tolist()
            for k, spec in enumerate(pmu.specs):
                text = table[offsets[pmu.pmu_id] + k]
                as_text = _integer_text if spec.kind in ("stat", "digital") else _float_text
                for index, value in zip(rows, columns[spec.name].tolist(), strict=True):
                    text[index] = as_text(value)
        yield "".join(",".join(line) + "\r\n" for line in zip(*table, strict=True))


def export_csv(
    pmu_ids: Sequence[int],
    start: datetime,
    end: datetime,
    channels: Sequence[str] | None = None,
    include_recent: bool = True,
) -> str:
    """Return the CSV of `iter_csv` as one string (for small windows; stream `iter_csv` otherwise)."""
    return "".join(iter_csv(pmu_ids, start, end, channels, include_recent))
