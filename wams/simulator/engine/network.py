"""Branch currents and engineering units from bus voltages (pi model as ANDES uses it)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from wams.simulator.engine.gridinfo import GridInfo
from wams.simulator.engine.trajectory import BoolArray, ComplexArray, FloatArray


def line_admittances(system: Any) -> tuple[ComplexArray, ComplexArray, ComplexArray, ComplexArray]:
    """Return (y_ff, y_ft, y_tt, y_tf) (n_line,) of every ANDES line, system per unit."""
    line = system.Line
    r = np.asarray(line.r.v, dtype=np.float64)
    x = np.asarray(line.x.v, dtype=np.float64)
    g = np.asarray(line.g.v, dtype=np.float64)
    b = np.asarray(line.b.v, dtype=np.float64)
    y_series = 1.0 / ((r + 1e-8) + 1j * (x + 1e-8))
    y_from = (np.asarray(line.g1.v) + 0.5 * g) + 1j * (np.asarray(line.b1.v) + 0.5 * b)
    y_to = (np.asarray(line.g2.v) + 0.5 * g) + 1j * (np.asarray(line.b2.v) + 0.5 * b)
    tap = np.asarray(line.tap.v, dtype=np.float64)
    phi = np.asarray(line.phi.v, dtype=np.float64)
    # I_from = (ys + yf)/t^2 V_f - ys e^{j phi}/t V_t ; I_to = (ys + yt) V_t - ys e^{-j phi}/t V_f
    return (
        np.asarray((y_series + y_from) / tap**2, dtype=np.complex128),
        np.asarray(-y_series * np.exp(1j * phi) / tap, dtype=np.complex128),
        np.asarray(y_series + y_to, dtype=np.complex128),
        np.asarray(-y_series * np.exp(-1j * phi) / tap, dtype=np.complex128),
    )


class BranchModel:
    """Compute line currents at both ends from bus voltages, vectorised over instants."""

    def __init__(self, info: GridInfo) -> None:
        """Take the admittances and end buses of every line from `info`."""
        self.from_col = info.from_col
        self.to_col = info.to_col
        self.y_ff, self.y_ft, self.y_tt, self.y_tf = info.y_ff, info.y_ft, info.y_tt, info.y_tf

    def currents_pu(self, bus_voltage_pu: ComplexArray, closed: BoolArray) -> tuple[ComplexArray, ComplexArray]:
        """Return (I_from, I_to) (k, n_line) in system per unit, flowing into the line at each end."""
        vf = bus_voltage_pu[:, self.from_col]
        vt = bus_voltage_pu[:, self.to_col]
        on = closed.astype(np.float64)
        i_from = (self.y_ff * vf + self.y_ft * vt) * on
        i_to = (self.y_tt * vt + self.y_tf * vf) * on
        return i_from, i_to


def voltage_volts(magnitude_pu: FloatArray | ComplexArray, base_kv: float) -> Any:
    """Convert per-unit voltage to line-to-neutral volts on a `base_kv` (line-to-line) base."""
    return magnitude_pu * base_kv * 1e3 / math.sqrt(3.0)


def current_amperes(current_pu: ComplexArray, base_kv: float, base_mva: float) -> ComplexArray:
    """Convert per-unit current (system base `base_mva`, voltage base `base_kv`) to amperes."""
    return np.asarray(current_pu * base_mva * 1e6 / (math.sqrt(3.0) * base_kv * 1e3), dtype=np.complex128)
