"""Reporting-rate conversion: integer decimation behind a linear-phase anti-alias FIR filter.

A stream at `in_rate` frames/s is turned into one at `in_rate / factor`: every input vector is
filtered by a symmetric low-pass FIR (Kaiser window) whose stop band starts at the new Nyquist
frequency, and every `factor`-th filtered value is kept. The filter is linear phase with a delay
of (n_taps - 1) / 2 input samples, so output instant m carries the filtered value centred on input
instant m: time stamps stay true and phasor angles are not shifted. Pure numpy/scipy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import signal

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]


def design_decimation_filter(factor: int, attenuation_db: float = 60.0, passband_fraction: float = 0.6) -> FloatArray:
    """Return the taps (n_taps,) of an anti-alias low-pass for decimation by `factor`; n_taps is odd.

    Pass band up to `passband_fraction` of the new Nyquist frequency, stop band (attenuated by
    `attenuation_db`) from the new Nyquist frequency up; unit gain at 0 Hz.
    """
    if factor < 1:
        raise ValueError("the decimation factor is a positive integer")
    if factor == 1:
        return np.ones(1)
    if not 0.0 < passband_fraction < 1.0:
        raise ValueError("passband_fraction is within (0, 1)")
    # Frequencies relative to the input Nyquist frequency (1.0).
    stop_edge = 1.0 / factor
    pass_edge = passband_fraction / factor
    n_taps, beta = signal.kaiserord(attenuation_db, stop_edge - pass_edge)
    n_taps |= 1  # odd: an integer group delay
    taps = signal.firwin(n_taps, (pass_edge + stop_edge) / 2.0, window=("kaiser", beta))
    return np.asarray(taps / taps.sum(), dtype=np.float64)


class StreamingDecimator:
    """Decimate a stream of vectors (n_channels,) on consecutive reporting instants by an integer factor.

    Push each input with its instant index (an integer counting input instants, e.g. round(t * rate)).
    Output instants are the indices divisible by `factor`; the output for instant m is available once
    input m + delay has been pushed. Skipped indices (gaps) are filled by holding the last vector;
    a gap longer than the filter restarts the filter (no outputs for the gap).
    """

    def __init__(self, factor: int, n_channels: int, taps: FloatArray | None = None) -> None:
        self.factor = factor
        self.taps = design_decimation_filter(factor) if taps is None else np.asarray(taps, dtype=np.float64)
        if len(self.taps) % 2 == 0:
            raise ValueError("use an odd number of taps (integer delay)")
        self.n_taps = len(self.taps)
        self.delay = (self.n_taps - 1) // 2
        self.n_channels = n_channels
        # Doubled ring buffer: the window of the last n_taps inputs is always one contiguous slice.
        self._buf: ComplexArray = np.zeros((2 * self.n_taps, n_channels), dtype=np.complex128)
        self._pos = 0
        self._first: int | None = None
        self._last: int | None = None

    @property
    def last_index(self) -> int | None:
        """Return the index of the last input pushed (None before the first)."""
        return self._last

    def reset(self) -> None:
        """Forget the history; the next push starts afresh."""
        self._first = None
        self._last = None

    def _write(self, x: ComplexArray) -> None:
        """Append one input vector to the ring buffer."""
        self._pos = (self._pos + 1) % self.n_taps
        self._buf[self._pos] = x
        self._buf[self._pos + self.n_taps] = x

    def _output(self, index: int) -> tuple[int, ComplexArray] | None:
        """Return the output centred on `index - delay` when that is an output instant."""
        centre = index - self.delay
        assert self._first is not None
        if centre % self.factor or centre < self._first:
            return None
        window = self._buf[self._pos + 1 : self._pos + 1 + self.n_taps]  # oldest .. newest
        return centre, self.taps @ window

    def push(self, index: int, x: npt.ArrayLike) -> list[tuple[int, ComplexArray]]:
        """Add input instant `index`; return the (output index, vector) pairs it completes."""
        vector = np.asarray(x, dtype=np.complex128).reshape(self.n_channels)
        if self._last is not None and index <= self._last:
            return []  # duplicate or out of order: the filter only moves forward
        if self._last is not None and index - self._last > self.n_taps:
            self.reset()
        outputs: list[tuple[int, ComplexArray]] = []
        if self._last is None:
            self._buf[:] = vector  # hold the first value backwards: no start-up transient from zeros
            self._first = index
        else:
            held = self._buf[self._pos].copy()
            for skipped in range(self._last + 1, index):
                self._write(held)
                out = self._output(skipped)
                if out is not None:
                    outputs.append(out)
        self._write(vector)
        self._last = index
        out = self._output(index)
        if out is not None:
            outputs.append(out)
        return outputs


def decimate(x: npt.ArrayLike, factor: int, first_index: int = 0) -> tuple[npt.NDArray[np.int64], ComplexArray]:
    """Decimate a whole record x (n,) or (n, n_channels) -> (output indices (m,), values (m, n_channels)).

    Input sample k has instant index `first_index + k`; only outputs whose filter window lies
    inside the record are returned.
    """
    data = np.asarray(x)
    matrix = data.reshape(len(data), -1)
    decimator = StreamingDecimator(factor, matrix.shape[1])
    indices: list[int] = []
    values: list[ComplexArray] = []
    for k, row in enumerate(matrix):
        for index, value in decimator.push(first_index + k, row):
            if index - decimator.delay >= first_index:
                indices.append(index)
                values.append(value)
    out = np.array(values, dtype=np.complex128).reshape(len(values), matrix.shape[1])
    return np.array(indices, dtype=np.int64), out
