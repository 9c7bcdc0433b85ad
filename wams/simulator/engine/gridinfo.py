"""A picklable description of the simulated case: what measurement and control code needs to know."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wams.simulator.engine.cases import CaseSpec
from wams.simulator.engine.trajectory import ComplexArray, FloatArray


@dataclass(frozen=True)
class GridInfo:
    """Element ids, topology, bases and line admittances of the case (no ANDES object inside)."""

    spec: CaseSpec
    nominal_hz: float
    base_mva: float
    bus_ids: list[Any]
    bus_nominal_kv: FloatArray  #: (n_bus,) line-to-line kV
    line_ids: list[Any]
    line_buses: list[tuple[Any, Any]]
    generator_ids: list[Any]
    generator_buses: list[Any]
    generator_p0_mw: FloatArray  #: (n_gen,) initial electrical power
    load_ids: list[Any]
    load_buses: list[Any]
    load_base_mw: FloatArray  #: (n_load,)
    #: pi-model admittances per line, system per unit: I_from = y_ff V_f + y_ft V_t, I_to = y_tt V_t + y_tf V_f
    y_ff: ComplexArray
    y_ft: ComplexArray
    y_tt: ComplexArray
    y_tf: ComplexArray

    def bus_column(self, bus: Any) -> int:
        """Return the column of `bus` in trajectory arrays (KeyError if unknown)."""
        for k, candidate in enumerate(self.bus_ids):
            if candidate == bus or str(candidate) == str(bus):
                return k
        raise KeyError(f"bus {bus} is not in case {self.spec.name}")

    def line_between(self, bus_a: Any, bus_b: Any) -> Any:
        """Return the first line joining two buses (KeyError if none)."""
        pair = {str(bus_a), str(bus_b)}
        for line, (b1, b2) in zip(self.line_ids, self.line_buses):
            if {str(b1), str(b2)} == pair:
                return line
        raise KeyError(f"no line between {bus_a} and {bus_b}")

    def line_position(self, line: Any) -> int:
        """Return the position of `line` among the lines."""
        return self.line_ids.index(line)

    def generator_at_bus(self, bus: Any) -> Any:
        """Return the generator connected at `bus` (KeyError if none)."""
        for gen, gen_bus in zip(self.generator_ids, self.generator_buses):
            if str(gen_bus) == str(bus):
                return gen
        raise KeyError(f"no generator at bus {bus}")

    def loads_at_bus(self, bus: Any) -> list[Any]:
        """Return the loads connected at `bus`."""
        return [ld for ld, b in zip(self.load_ids, self.load_buses) if str(b) == str(bus)]

    @property
    def from_col(self) -> np.ndarray:
        """Return the bus column of each line's from end, (n_line,)."""
        return np.array([self.bus_column(b1) for b1, _b2 in self.line_buses], dtype=np.int64)

    @property
    def to_col(self) -> np.ndarray:
        """Return the bus column of each line's to end, (n_line,)."""
        return np.array([self.bus_column(b2) for _b1, b2 in self.line_buses], dtype=np.int64)
