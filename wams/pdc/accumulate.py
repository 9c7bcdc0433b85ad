"""Cut each PMU's samples into SampleBlocks on fixed time windows for the historian (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from wams.historian.blocks import SampleBlock

US_PER_S = 1_000_000


class Measured(Protocol):
    """What a sample offers: the fields of a decoded PMU block (the codec's PmuData)."""

    stat: int
    frequency_hz: float
    rocof_hz_per_s: float
    phasors: npt.NDArray[np.complex128]
    analogs: npt.NDArray[np.float64]
    digitals: list[int]


class Columns:
    """One PMU's samples kept as columns, in arrival order.

    A sample's fields go into per-field lists (its arrays by reference, its digital words as a tuple),
    so the sample objects themselves are not kept: seconds of samples of many PMUs then cost the
    garbage collector a few lists per PMU instead of several objects per sample.
    """

    __slots__ = ("analogs", "digitals", "frequency_hz", "late", "phasors", "rocof_hz_per_s", "stat", "timestamp_us")

    def __init__(self) -> None:
        self.timestamp_us: list[int] = []
        self.stat: list[int] = []
        self.frequency_hz: list[float] = []
        self.rocof_hz_per_s: list[float] = []
        self.phasors: list[npt.NDArray[np.complex128]] = []
        self.analogs: list[npt.NDArray[np.float64]] = []
        self.digitals: list[tuple[int, ...]] = []
        self.late: list[bool] = []

    def __len__(self) -> int:
        """Return the number of samples held."""
        return len(self.timestamp_us)

    def add(self, timestamp_us: int, sample: Measured, late: bool) -> None:
        """Append one sample."""
        self.timestamp_us.append(timestamp_us)
        self.stat.append(sample.stat)
        self.frequency_hz.append(sample.frequency_hz)
        self.rocof_hz_per_s.append(sample.rocof_hz_per_s)
        self.phasors.append(sample.phasors)
        self.analogs.append(sample.analogs)
        self.digitals.append(tuple(sample.digitals))
        self.late.append(late)

    def block(self, pmu_id: int) -> SampleBlock:
        """Return the samples as one SampleBlock sorted by time, duplicates (same stamp) dropped."""
        stamps = np.asarray(self.timestamp_us, dtype=np.int64)
        n = len(stamps)
        order = np.argsort(stamps, kind="stable")
        keep = order[np.concatenate(([True], np.diff(stamps[order]) > 0))] if n else order
        n_ph, n_an, n_dg = (len(self.phasors[0]), len(self.analogs[0]), len(self.digitals[0])) if n else (0, 0, 0)
        return SampleBlock(
            pmu_id=pmu_id,
            timestamp_us=stamps[keep],
            stat=np.asarray(self.stat, dtype=np.uint16)[keep],
            frequency_hz=np.asarray(self.frequency_hz, dtype=np.float64)[keep],
            rocof_hz_per_s=np.asarray(self.rocof_hz_per_s, dtype=np.float64)[keep],
            phasors=np.array(self.phasors, dtype=np.complex128).reshape(n, n_ph)[keep],
            analogs=np.array(self.analogs, dtype=np.float64).reshape(n, n_an)[keep],
            digitals=np.array(self.digitals, dtype=np.uint16).reshape(n, n_dg)[keep],
            late=np.asarray(self.late, dtype=bool)[keep],
        )


@dataclass(slots=True)
class _Window:
    """The samples of one PMU in one time window, in arrival order."""

    shape: tuple[int, int, int]
    columns: Columns = field(default_factory=Columns)
    last_added_s: float = 0.0


def shape_of(sample: Measured) -> tuple[int, int, int]:
    """Return (n_phasors, n_analogs, n_digital_words) of a sample."""
    return len(sample.phasors), len(sample.analogs), len(sample.digitals)


class BlockAccumulator:
    """Collect samples per PMU and cut them into blocks on windows of `block_seconds`.

    A window is cut when a sample of a later window of the same PMU arrives, when the PMU has added
    nothing to it for `idle_s` (see `cut_idle`), or on `cut_all`. Windows are aligned to multiples of
    the block length since the epoch, so the same data always gives the same blocks. A change in the
    number of channels (a new configuration) cuts the window so that a block has one shape.
    """

    def __init__(self, block_seconds: float = 5.0, idle_s: float = 2.0) -> None:
        if block_seconds <= 0:
            raise ValueError("block_seconds must be positive")
        self.block_us = round(block_seconds * US_PER_S)
        self.idle_s = idle_s
        self._windows: dict[int, dict[int, _Window]] = {}  # pmu id -> window index -> samples
        self.samples_added = 0
        self.blocks_cut = 0

    @property
    def buffered(self) -> int:
        """Return how many samples wait in open windows."""
        return sum(len(w.columns) for windows in self._windows.values() for w in windows.values())

    def add(self, pmu_id: int, timestamp_us: int, sample: Measured, late: bool, now_s: float) -> list[SampleBlock]:
        """Add one sample; return the blocks this completes."""
        index = timestamp_us // self.block_us
        windows = self._windows.setdefault(pmu_id, {})
        blocks: list[SampleBlock] = []
        shape = shape_of(sample)
        window = windows.get(index)
        if window is not None and window.shape != shape:
            blocks.append(self._cut(pmu_id, windows.pop(index)))
            window = None
        if window is None:
            window = windows[index] = _Window(shape)
        window.columns.add(timestamp_us, sample, late)
        window.last_added_s = now_s
        self.samples_added += 1
        if len(windows) > 1:
            for older in sorted(i for i in windows if i < index):
                blocks.append(self._cut(pmu_id, windows.pop(older)))
        return blocks

    def cut_idle(self, now_s: float) -> list[SampleBlock]:
        """Return the blocks of windows that received nothing for `idle_s`."""
        blocks: list[SampleBlock] = []
        for pmu_id, windows in self._windows.items():
            for index in sorted(windows):
                if now_s - windows[index].last_added_s >= self.idle_s:
                    blocks.append(self._cut(pmu_id, windows.pop(index)))
        return blocks

    def cut_all(self) -> list[SampleBlock]:
        """Return every open window as a block (shutdown)."""
        blocks = [
            self._cut(pmu_id, windows[index]) for pmu_id, windows in self._windows.items() for index in sorted(windows)
        ]
        self._windows.clear()
        return blocks

    def _cut(self, pmu_id: int, window: _Window) -> SampleBlock:
        """Turn one window into a block."""
        self.blocks_cut += 1
        return window.columns.block(pmu_id)
