"""Exports read their window in time slices: a plan priced before the first byte, columns one slice at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from wams.grid.models import Pmu
from wams.historian import budget
from wams.historian.models import Chunk, us_from_datetime
from wams.historian.query import ChannelSpec, channel_counts, channel_names, parse_channel, read_columns
from wams.historian.recent import read_recent

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

SLICE_VALUES = 400_000  # values (samples x channels, all PMUs) one slice holds while it is written
MIN_SLICE_US = 1_000_000


@dataclass(frozen=True)
class PmuColumns:
    """What an export writes of one PMU: its label and channels."""

    pmu_id: int
    label: str
    station: str
    specs: tuple[ChannelSpec, ...]
    counts: tuple[int, int, int]  # phasors, analogs, digital words


@dataclass(frozen=True)
class ExportPlan:
    """A priced export: the PMUs with samples in the window, their channels and the slices to read."""

    pmus: tuple[PmuColumns, ...]
    start_us: int
    end_us: int
    slice_us: int
    include_recent: bool
    recent_spans: dict[int, tuple[int, int]]  # PMU -> first and last time held in the recent window

    def slices(self) -> Iterator[tuple[int, int]]:
        """Yield [first, last] microsecond bounds (inclusive) covering the window without overlap."""
        first = self.start_us
        while first <= self.end_us:
            last = min(self.end_us, first + self.slice_us - 1)
            yield first, last
            first = last + 1

    def read(self, first_us: int, last_us: int) -> list[tuple[PmuColumns, I64, dict[str, F64]]]:
        """Return each PMU's times and columns in [first_us, last_us] (PMUs without samples there left out)."""
        out = []
        for pmu in self.pmus:
            span = self.recent_spans.get(pmu.pmu_id)
            recent = self.include_recent and span is not None and span[0] <= last_us and span[1] >= first_us
            timestamp_us, columns = read_columns(pmu.pmu_id, pmu.specs, first_us, last_us, include_recent=recent)
            if len(timestamp_us):
                out.append((pmu, timestamp_us, columns))
        return out


def _recent_spans(pmu_ids: Sequence[int], start_us: int, end_us: int) -> dict[int, tuple[int, int]]:
    spans = {}
    for pmu_id in pmu_ids:
        recent = read_recent(pmu_id, seconds=1e9)
        if recent is not None and len(recent):
            inside = recent.timestamp_us[(recent.timestamp_us >= start_us) & (recent.timestamp_us <= end_us)]
            if len(inside):
                spans[pmu_id] = (int(inside[0]), int(inside[-1]))
    return spans


def plan_export(
    pmu_ids: Sequence[int],
    start: datetime,
    end: datetime,
    channels: Sequence[str] | None = None,
    include_recent: bool = True,
) -> ExportPlan:
    """Price an export and plan its slices; raise budget.BudgetExceeded when over budget, LookupError when empty."""
    ids = list(dict.fromkeys(pmu_ids))
    start_us, end_us = us_from_datetime(start), us_from_datetime(end)
    spans = _recent_spans(ids, start_us, end_us) if include_recent else {}
    stored = set(
        Chunk.objects.filter(pmu_id__in=ids, start_us__lte=end_us, end_us__gte=start_us)
        .values_list("pmu_id", flat=True)
        .distinct()
    )
    present = [pmu_id for pmu_id in ids if pmu_id in stored or pmu_id in spans]
    if not present:
        raise LookupError("no samples in the window")
    names = dict(Pmu.objects.filter(pk__in=present).values_list("pk", "station_name"))
    pmus = []
    for pmu_id in present:
        counts = channel_counts(pmu_id, start_us, end_us, include_recent and pmu_id in spans)
        specs = tuple(parse_channel(name) for name in (channels or channel_names(*counts)))
        station = names.get(pmu_id, "PMU")
        pmus.append(PmuColumns(pmu_id, f"{station}[{pmu_id}]", station, specs, counts))
    per_pmu_values = {pmu.pmu_id: len(pmu.specs) for pmu in pmus}
    cost = budget.check_export(present, per_pmu_values, start_us, end_us)
    window_us = max(1, end_us - start_us + 1)
    values_per_us = sum(cost.per_pmu[p.pmu_id] * len(p.specs) for p in pmus) / window_us
    slice_us = int(min(window_us, max(MIN_SLICE_US, SLICE_VALUES / max(values_per_us, 1e-12))))
    return ExportPlan(tuple(pmus), start_us, end_us, slice_us, include_recent, spans)
