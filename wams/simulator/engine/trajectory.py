"""Simulated trajectories: chunks from the integrator and a buffer that interpolates them."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
BoolArray = npt.NDArray[np.bool_]

#: Simulated times this close past the buffer's end count as simulated (float rounding of UTC <-> t).
COVER_TOLERANCE_S = 1e-9


@dataclass
class TrajectoryChunk:
    """Integrator output for consecutive steps; the switching state holds for the whole chunk."""

    t_s: FloatArray  #: (n,) simulated seconds, increasing
    bus_angle_rad: FloatArray  #: (n, n_bus) positive-sequence voltage angle, continuous (not wrapped)
    bus_magnitude_pu: FloatArray  #: (n, n_bus) positive-sequence voltage magnitude, system per unit
    bus_frequency_pu: FloatArray  #: (n, n_bus) bus frequency in per unit of nominal
    generator_speed_pu: FloatArray  #: (n, n_gen) rotor speed in per unit
    generator_power_pu: FloatArray  #: (n, n_gen) electrical power on the system base
    line_closed: BoolArray  #: (n_line,) line status during the chunk
    generator_online: BoolArray  #: (n_gen,) generator status during the chunk

    @property
    def n_steps(self) -> int:
        """Return the number of integration steps in the chunk."""
        return int(self.t_s.shape[0])


@dataclass
class Snapshot:
    """Interpolated grid state at given instants."""

    t_s: FloatArray  #: (k,) simulated seconds
    bus_angle_rad: FloatArray  #: (k, n_bus) continuous angle
    bus_voltage_pu: ComplexArray  #: (k, n_bus)
    bus_frequency_pu: FloatArray  #: (k, n_bus)
    bus_rocof_pu_per_s: FloatArray  #: (k, n_bus) slope of the bus frequency
    line_closed: BoolArray  #: (k, n_line)
    generator_online: BoolArray  #: (k, n_gen)
    #: (k,) True where the instant lies in the simulated span; False rows hold the nearest state
    #: (clamped) and must never be presented as measurements.
    simulated: BoolArray


class TrajectoryBuffer:
    """Keep the recent trajectory and interpolate it at reporting instants (thread-safe)."""

    def __init__(self, n_bus: int, n_line: int, n_gen: int, capacity_steps: int = 4096) -> None:
        """Allocate a ring of `capacity_steps` integration steps."""
        self.capacity = capacity_steps
        self._t = np.full(capacity_steps, np.nan)
        self._angle = np.zeros((capacity_steps, n_bus))
        self._magnitude = np.zeros((capacity_steps, n_bus))
        self._freq = np.ones((capacity_steps, n_bus))
        self._lines = np.ones((capacity_steps, n_line), dtype=bool)
        self._gens = np.ones((capacity_steps, n_gen), dtype=bool)
        self._count = 0  # total steps ever appended
        self._lock = threading.Lock()
        # Event-loop waiters: (simulated time awaited, its loop, the future to resolve).
        self._async_waiters: list[tuple[float, asyncio.AbstractEventLoop, asyncio.Future[bool]]] = []

    @property
    def end_s(self) -> float:
        """Return the last simulated time held, or -inf when empty."""
        with self._lock:
            return self._end_locked()

    @property
    def start_s(self) -> float:
        """Return the oldest simulated time still held, or +inf when empty."""
        with self._lock:
            if self._count == 0:
                return float("inf")
            first = max(0, self._count - self.capacity)
            return float(self._t[first % self.capacity])

    def step_times_s(self) -> FloatArray:
        """Return the simulated times of the steps held, oldest first, (n,) seconds."""
        with self._lock:
            n = min(self._count, self.capacity)
            return self._t[(self._count - n + np.arange(n)) % self.capacity].copy()

    def covers(self, t_s: float) -> bool:
        """Return True when simulated time `t_s` is no later than the newest step held."""
        return t_s <= self.end_s + COVER_TOLERANCE_S

    def append(self, chunk: TrajectoryChunk) -> None:
        """Append a chunk; times must increase past the current end. Wakes whoever waits for it."""
        n = chunk.n_steps
        if n == 0:
            return
        if n > self.capacity:
            raise ValueError("chunk larger than the buffer")
        with self._lock:
            slots = (self._count + np.arange(n)) % self.capacity
            self._t[slots] = chunk.t_s
            self._angle[slots] = chunk.bus_angle_rad
            self._magnitude[slots] = chunk.bus_magnitude_pu
            self._freq[slots] = chunk.bus_frequency_pu
            self._lines[slots] = chunk.line_closed
            self._gens[slots] = chunk.generator_online
            self._count += n
            end = float(chunk.t_s[-1])
            due = [w for w in self._async_waiters if w[0] <= end + COVER_TOLERANCE_S]
            self._async_waiters = [w for w in self._async_waiters if w[0] > end + COVER_TOLERANCE_S]
        for _t, loop, future in due:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, future)

    async def wait_covered(self, t_s: float, timeout_s: float) -> bool:
        """Wait in the event loop until simulated time `t_s` is held, at most `timeout_s`; say if it is."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        waiter = (t_s, loop, future)
        with self._lock:
            if self._end_locked() + COVER_TOLERANCE_S >= t_s:
                return True
            self._async_waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, max(timeout_s, 0.0))
        except TimeoutError:
            return self.covers(t_s)
        finally:
            with self._lock:
                if waiter in self._async_waiters:
                    self._async_waiters.remove(waiter)

    def _end_locked(self) -> float:
        if self._count == 0:
            return float("-inf")
        return float(self._t[(self._count - 1) % self.capacity])

    def sample(self, t_s: FloatArray) -> Snapshot:
        """Interpolate the state at times `t_s` (k,); rows outside the span are clamped and flagged.

        Before the first step ever taken the grid sat at its initial (steady) state, so those
        instants count as simulated; instants past the newest step, or older than the ring still
        holds, do not (`Snapshot.simulated` False).
        """
        t_query = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
        with self._lock:
            n = min(self._count, self.capacity)
            if n == 0:
                raise LookupError("trajectory buffer is empty")
            first = self._count - n
            order = (first + np.arange(n)) % self.capacity
            times = self._t[order]
            simulated = t_query <= times[-1] + COVER_TOLERANCE_S
            if first > 0:  # the oldest steps were overwritten
                simulated &= t_query >= times[0] - COVER_TOLERANCE_S
            hi = np.clip(np.searchsorted(times, t_query, side="right"), 1, max(n - 1, 1))
            lo = hi - 1
            if n == 1:
                hi = lo
            t_lo = times[lo]
            t_hi = times[hi]
            span = np.where(t_hi > t_lo, t_hi - t_lo, 1.0)
            w = np.clip((t_query - t_lo) / span, 0.0, 1.0)[:, None]
            rows_lo = order[lo]
            rows_hi = order[hi]
            angle = (1.0 - w) * self._angle[rows_lo] + w * self._angle[rows_hi]
            magnitude = (1.0 - w) * self._magnitude[rows_lo] + w * self._magnitude[rows_hi]
            freq = (1.0 - w) * self._freq[rows_lo] + w * self._freq[rows_hi]
            rocof = (self._freq[rows_hi] - self._freq[rows_lo]) / span[:, None]
            # Switching state follows the later step: an event takes effect right after its instant.
            later = np.where(w[:, 0] > 0.0, rows_hi, rows_lo)
            lines = self._lines[later].copy()
            gens = self._gens[later].copy()
        return Snapshot(
            t_s=t_query,
            bus_angle_rad=angle,
            bus_voltage_pu=magnitude * np.exp(1j * angle),
            bus_frequency_pu=freq,
            bus_rocof_pu_per_s=rocof,
            line_closed=lines,
            generator_online=gens,
            simulated=simulated,
        )


def _resolve(future: asyncio.Future[bool]) -> None:
    """Mark an event-loop waiter covered (in its own loop)."""
    if not future.done():
        future.set_result(True)
