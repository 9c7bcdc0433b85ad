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


@dataclass(slots=True)
class _Window:
    """The samples of one PMU in one time window, in arrival order."""

    shape: tuple[int, int, int]
    timestamp_us: list[int] = field(default_factory=list)
    samples: list[Measured] = field(default_factory=list)
    late: list[bool] = field(default_factory=list)
    last_added_s: float = 0.0


def shape_of(sample: Measured) -> tuple[int, int, int]:
    """Return (n_phasors, n_analogs, n_digital_words) of a sample."""
    return len(sample.phasors), len(sample.analogs), len(sample.digitals)


def build_block(pmu_id: int, timestamp_us: list[int], samples: list[Measured], late: list[bool]) -> SampleBlock:
    """Return one SampleBlock of samples sorted by time, duplicates (same stamp) dropped."""
    stamps = np.asarray(timestamp_us, dtype=np.int64)
    order = np.argsort(stamps, kind="stable")
    keep = order[np.concatenate(([True], np.diff(stamps[order]) > 0))] if len(order) else order
    chosen = [samples[i] for i in keep]
    n = len(chosen)
    n_ph, n_an, n_dg = shape_of(chosen[0]) if chosen else (0, 0, 0)
    return SampleBlock(
        pmu_id=pmu_id,
        timestamp_us=stamps[keep],
        stat=np.fromiter((s.stat for s in chosen), dtype=np.uint16, count=n),
        frequency_hz=np.fromiter((s.frequency_hz for s in chosen), dtype=np.float64, count=n),
        rocof_hz_per_s=np.fromiter((s.rocof_hz_per_s for s in chosen), dtype=np.float64, count=n),
        phasors=np.array([s.phasors for s in chosen], dtype=np.complex128).reshape(n, n_ph),
        analogs=np.array([s.analogs for s in chosen], dtype=np.float64).reshape(n, n_an),
        digitals=np.array([s.digitals for s in chosen], dtype=np.uint16).reshape(n, n_dg),
        late=np.asarray(late, dtype=bool)[keep],
    )


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
        return sum(len(w.timestamp_us) for windows in self._windows.values() for w in windows.values())

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
        window.timestamp_us.append(timestamp_us)
        window.samples.append(sample)
        window.late.append(late)
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
        return build_block(pmu_id, window.timestamp_us, window.samples, window.late)
