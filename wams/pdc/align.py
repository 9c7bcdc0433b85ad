"""Time alignment: PMU samples in, one snapshot per reporting instant out (pure: no Django, no sockets).

Every sample is keyed by its reporting instant (its time stamp snapped to the PMU's reporting grid,
in integer microseconds since the epoch). An instant is released as a `Snapshot` as soon as every
PMU expected at it has reported, or once the wait time has passed since its first sample arrived,
whichever comes first; snapshots leave in time order. A sample arriving after its instant's wait
time (or after its instant was released) is LATE: the caller stores it but it is in no snapshot.
"""

from __future__ import annotations

import enum
import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

S = TypeVar("S")

US_PER_S = 1_000_000
GRID_TOLERANCE_US = 1_000  # a time stamp this close to a reporting instant is that instant
HISTORY_PER_PMU = 512  # recent instants remembered per PMU to recognise duplicates


class Arrival(enum.Enum):
    """What became of one sample handed to the aligner."""

    ON_TIME = "on_time"  # held for its instant's snapshot
    LATE = "late"  # after the wait time: store it, do not broadcast it
    DUPLICATE = "duplicate"  # this PMU already reported this instant: dropped
    UNKNOWN_PMU = "unknown_pmu"  # not registered: dropped
    FUTURE = "future"  # stamped implausibly far ahead of its arrival: dropped


@dataclass(slots=True)
class Snapshot(Generic[S]):
    """The samples of one reporting instant; `missing` lists PMUs expected there that did not report."""

    timestamp_us: int
    samples: dict[int, S]
    missing: tuple[int, ...]
    first_arrival_s: float
    released_s: float

    @property
    def timestamp_s(self) -> float:
        """Return the instant in seconds since 1970 (UTC)."""
        return self.timestamp_us / US_PER_S

    @property
    def complete(self) -> bool:
        """Tell whether every expected PMU reported."""
        return not self.missing


def nearest_instant(timestamp_us: int, data_rate: int) -> int:
    """Return the reporting instant (us) nearest a time stamp.

    `data_rate` has C37.118 DATA_RATE meaning: > 0 frames per second (instants k/rate in each
    second), < 0 seconds per frame. Integer arithmetic throughout: float seconds lose microseconds.
    """
    if data_rate > 0:
        index = (2 * timestamp_us * data_rate + US_PER_S) // (2 * US_PER_S)
        return (2 * index * US_PER_S + data_rate) // (2 * data_rate)
    if data_rate < 0:
        period_us = -data_rate * US_PER_S
        return ((2 * timestamp_us + period_us) // (2 * period_us)) * period_us
    return timestamp_us


def snap_to_grid(timestamp_us: int, data_rate: int, tolerance_us: int = GRID_TOLERANCE_US) -> int:
    """Return the reporting instant of a time stamp, or the stamp itself when it is off the grid."""
    instant = nearest_instant(timestamp_us, data_rate)
    return instant if abs(instant - timestamp_us) <= tolerance_us else timestamp_us


def on_grid(instant_us: int, data_rate: int) -> bool:
    """Tell whether an instant is one of the reporting instants of `data_rate`."""
    return nearest_instant(instant_us, data_rate) == instant_us


@dataclass(slots=True)
class _Pending(Generic[S]):
    """An instant waiting for its samples."""

    key: int
    first_arrival_s: float
    deadline_s: float
    expected: set[int]
    samples: dict[int, S] = field(default_factory=dict)
    expected_present: int = 0


@dataclass(slots=True)
class AlignerStats:
    """Counters of what the aligner did with the samples it was given."""

    on_time: int = 0
    late: int = 0
    duplicate: int = 0
    unknown_pmu: int = 0
    future: int = 0
    snapshots: int = 0
    incomplete_snapshots: int = 0
    forced_releases: int = 0


class Aligner(Generic[S]):
    """Align samples of registered PMUs into snapshots with a wait time.

    `wait_time_ms`: how long an instant waits for its stragglers after its first sample arrived.
    `max_pending`: instants held at most; beyond it the oldest is released at once.
    `max_future_s`: samples stamped this far ahead of their arrival are dropped (a bad clock would
    otherwise push the release order into the future and make every later sample late).
    """

    def __init__(self, wait_time_ms: float, max_pending: int = 4096, max_future_s: float = 5.0) -> None:
        self.wait_time_s = wait_time_ms / 1000.0
        self.max_pending = max_pending
        self.max_future_s = max_future_s
        self.stats = AlignerStats()
        self._rates: dict[int, int] = {}  # pmu id -> DATA_RATE
        self._inactive: set[int] = set()  # registered, but not waited for (link down)
        self._by_rate: dict[int, set[int]] = {}  # DATA_RATE -> registered PMUs
        self._active_by_rate: dict[int, set[int]] = {}  # DATA_RATE -> registered PMUs waited for
        self._pending: dict[int, _Pending[S]] = {}
        self._heap: list[int] = []
        self._last_released: int | None = None
        self._history: dict[int, tuple[deque[int], set[int]]] = {}

    # registry --------------------------------------------------------------------------------
    def register(self, pmu_id: int, data_rate: int) -> None:
        """Expect samples of `pmu_id` at the instants of `data_rate` (C37.118 DATA_RATE)."""
        if data_rate == 0:
            raise ValueError("DATA_RATE 0 has no reporting instants")
        old = self._rates.get(pmu_id)
        if old == data_rate:
            return
        active = pmu_id not in self._inactive
        if old is not None:
            self._drop_rate(pmu_id, old, active)
        self._rates[pmu_id] = data_rate
        self._by_rate.setdefault(data_rate, set()).add(pmu_id)
        if active:
            self._active_by_rate.setdefault(data_rate, set()).add(pmu_id)
            self._expect_in_pending(pmu_id, data_rate)
        self._history.setdefault(pmu_id, (deque(), set()))

    def unregister(self, pmu_id: int) -> None:
        """Stop expecting `pmu_id`; its later samples are dropped as unknown."""
        rate = self._rates.pop(pmu_id, None)
        if rate is not None:
            self._drop_rate(pmu_id, rate, pmu_id not in self._inactive)
        self._inactive.discard(pmu_id)
        self._history.pop(pmu_id, None)

    def set_expected(self, pmu_id: int, expected: bool) -> None:
        """Wait for `pmu_id` (True) or release instants without waiting for it (False, e.g. link down)."""
        rate = self._rates.get(pmu_id)
        if rate is None:
            self._inactive.discard(pmu_id)
            return
        if expected == (pmu_id not in self._inactive):
            return  # no change: links report their state often, keep this cheap
        if expected:
            self._inactive.discard(pmu_id)
            self._active_by_rate.setdefault(rate, set()).add(pmu_id)
            self._expect_in_pending(pmu_id, rate)
        else:
            self._inactive.add(pmu_id)
            self._discard_set(self._active_by_rate, rate, pmu_id)
            self._unexpect_in_pending(pmu_id)

    @property
    def registered(self) -> dict[int, int]:
        """Return pmu id -> DATA_RATE of every registered PMU."""
        return dict(self._rates)

    @property
    def pending(self) -> int:
        """Return how many instants wait for release."""
        return len(self._pending)

    def _on_grid_pmus(self, key: int, active_only: bool) -> set[int]:
        """Return the registered PMUs reporting at instant `key` (a new set)."""
        found: set[int] = set()
        for rate, pmu_ids in (self._active_by_rate if active_only else self._by_rate).items():
            if pmu_ids and on_grid(key, rate):
                found |= pmu_ids
        return found

    @staticmethod
    def _discard_set(sets: dict[int, set[int]], rate: int, pmu_id: int) -> None:
        """Remove `pmu_id` from the set of `rate`, dropping the set when it empties."""
        members = sets.get(rate)
        if members is not None:
            members.discard(pmu_id)
            if not members:
                del sets[rate]

    def _drop_rate(self, pmu_id: int, rate: int, active: bool) -> None:
        """Forget `pmu_id` at `rate` in the rate sets and the pending instants."""
        self._discard_set(self._by_rate, rate, pmu_id)
        if active:
            self._discard_set(self._active_by_rate, rate, pmu_id)
            self._unexpect_in_pending(pmu_id)

    def _expect_in_pending(self, pmu_id: int, rate: int) -> None:
        """Wait for `pmu_id` at the pending instants on its grid."""
        for pending in self._pending.values():
            if pmu_id not in pending.expected and on_grid(pending.key, rate):
                pending.expected.add(pmu_id)
                if pmu_id in pending.samples:
                    pending.expected_present += 1

    def _unexpect_in_pending(self, pmu_id: int) -> None:
        """Stop waiting for `pmu_id` at every pending instant."""
        for pending in self._pending.values():
            if pmu_id in pending.expected:
                pending.expected.discard(pmu_id)
                if pmu_id in pending.samples:
                    pending.expected_present -= 1

    # samples ---------------------------------------------------------------------------------
    def instant_of(self, pmu_id: int, timestamp_us: int) -> int:
        """Return the instant a registered PMU's time stamp belongs to (the stamp itself if unknown)."""
        rate = self._rates.get(pmu_id)
        return timestamp_us if rate is None else snap_to_grid(timestamp_us, rate)

    def add(self, pmu_id: int, timestamp_us: int, arrival_s: float, sample: S) -> Arrival:
        """Hand over one sample stamped `timestamp_us` that arrived at `arrival_s` (s since 1970)."""
        rate = self._rates.get(pmu_id)
        if rate is None:
            self.stats.unknown_pmu += 1
            return Arrival.UNKNOWN_PMU
        if timestamp_us > (arrival_s + self.max_future_s) * US_PER_S:
            self.stats.future += 1
            return Arrival.FUTURE
        key = snap_to_grid(timestamp_us, rate)
        recent, seen = self._history[pmu_id]
        if key in seen:
            self.stats.duplicate += 1
            return Arrival.DUPLICATE
        recent.append(key)
        seen.add(key)
        if len(recent) > HISTORY_PER_PMU:
            seen.discard(recent.popleft())
        pending = self._pending.get(key)
        if pending is None:
            if self._last_released is not None and key <= self._last_released:
                self.stats.late += 1
                return Arrival.LATE
            pending = _Pending(key, arrival_s, arrival_s + self.wait_time_s, self._on_grid_pmus(key, True))
            self._pending[key] = pending
            heapq.heappush(self._heap, key)
        elif arrival_s > pending.deadline_s:
            self.stats.late += 1
            return Arrival.LATE
        if pmu_id in pending.expected and pmu_id not in pending.samples:  # re-registered: may come twice
            pending.expected_present += 1
        pending.samples[pmu_id] = sample
        self.stats.on_time += 1
        return Arrival.ON_TIME

    def release(self, now_s: float) -> list[Snapshot[S]]:
        """Return, in time order, the snapshots whose instants are complete or past their wait time."""
        released: list[Snapshot[S]] = []
        heap = self._heap
        while heap:
            pending = self._pending[heap[0]]
            ready = pending.expected_present >= len(pending.expected) or now_s >= pending.deadline_s
            if not ready and len(self._pending) <= self.max_pending:
                break
            if not ready:
                self.stats.forced_releases += 1
            heapq.heappop(heap)
            del self._pending[pending.key]
            released.append(self._snapshot(pending, now_s))
        return released

    def flush(self, now_s: float) -> list[Snapshot[S]]:
        """Release every pending instant now, in time order (shutdown)."""
        released: list[Snapshot[S]] = []
        while self._heap:
            pending = self._pending.pop(heapq.heappop(self._heap))
            released.append(self._snapshot(pending, now_s))
        return released

    def next_deadline_s(self) -> float | None:
        """Return when the oldest pending instant times out (None when nothing waits)."""
        if not self._heap:
            return None
        return self._pending[self._heap[0]].deadline_s

    def _snapshot(self, pending: _Pending[S], now_s: float) -> Snapshot[S]:
        """Turn a pending instant into its snapshot and remember it as released."""
        self._last_released = pending.key if self._last_released is None else max(self._last_released, pending.key)
        missing = tuple(sorted(self._on_grid_pmus(pending.key, active_only=False) - pending.samples.keys()))
        self.stats.snapshots += 1
        if missing:
            self.stats.incomplete_snapshots += 1
        return Snapshot(pending.key, pending.samples, missing, pending.first_arrival_s, now_s)


def timestamp_us_of(soc: int, fraction: int, time_base: int) -> int:
    """Return SOC + fraction / TIME_BASE as integer microseconds since 1970 (rounded)."""
    return soc * US_PER_S + (2 * fraction * US_PER_S + time_base) // (2 * time_base)
