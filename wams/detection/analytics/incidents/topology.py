"""The grid as the correlator needs it: buses, lines, PMU positions, units; graph questions on it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Unit:
    """An online generating unit: where, how much it produces and its inertia."""

    name: str
    bus: int
    output_mw: float
    rating_mva: float
    inertia_s: float  # H on its own rating


@dataclass(frozen=True)
class GridTopology:
    """Buses joined by lines, the bus of each PMU (snapshot order) and of each current channel's line."""

    lines: tuple[tuple[str, int, int], ...]  # (name, from bus, to bus)
    pmu_buses: tuple[int | None, ...]  # (n_pmu,) bus of each PMU, None if unknown
    current_lines: tuple[str | None, ...] = ()  # (n_current,) line name each current channel measures
    substation_of_bus: dict[int, str] = field(default_factory=dict)
    units: tuple[Unit, ...] = ()
    nominal_hz: float = 60.0
    #: Settled MW per Hz of the whole system (governors and load relief), from the grid model.
    frequency_response_mw_per_hz: float | None = None

    def __post_init__(self) -> None:
        """Build the adjacency once."""
        neighbours: dict[int, set[int]] = {}
        for _name, a, b in self.lines:
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
        object.__setattr__(self, "_neighbours", neighbours)

    @property
    def neighbours(self) -> dict[int, set[int]]:
        """Return each bus's neighbouring buses."""
        return self._neighbours  # type: ignore[attr-defined,no-any-return]

    def hops_from(self, buses: Iterable[int], removed: Iterable[str] = ()) -> dict[int, int]:
        """Return the number of lines from the nearest of `buses` to every reachable bus (breadth first)."""
        cut = set(removed)
        blocked = {frozenset((a, b)) for name, a, b in self.lines if name in cut}
        distance = dict.fromkeys(buses, 0)
        frontier = list(distance)
        while frontier:
            nxt = []
            for bus in frontier:
                for other in self.neighbours.get(bus, ()):
                    if other not in distance and frozenset((bus, other)) not in blocked:
                        distance[other] = distance[bus] + 1
                        nxt.append(other)
            frontier = nxt
        return distance

    def line_buses(self, name: str) -> tuple[int, int] | None:
        """Return the buses of a line by name."""
        for line, a, b in self.lines:
            if line == name:
                return a, b
        return None

    def line_between(self, bus_a: int, bus_b: int) -> str | None:
        """Return the name of a line joining two buses, if any."""
        for line, a, b in self.lines:
            if {a, b} == {bus_a, bus_b}:
                return line
        return None

    def buses_of(self, pmu_indices: Sequence[int]) -> list[int]:
        """Return the known buses of some PMUs."""
        return [b for b in (self.pmu_buses[i] for i in pmu_indices if 0 <= i < len(self.pmu_buses)) if b is not None]

    def substation(self, bus: int | None) -> str | None:
        """Return the substation code of a bus."""
        return None if bus is None else self.substation_of_bus.get(bus)

    def nearest_pmu_side(self, seeds: dict[int, int]) -> dict[int, int]:
        """Assign every bus the label of its nearest seed bus ({bus: label}), ties to the first found."""
        label: dict[int, int] = dict(seeds)
        frontier = list(seeds)
        while frontier:
            nxt = []
            for bus in frontier:
                for other in sorted(self.neighbours.get(bus, ())):
                    if other not in label:
                        label[other] = label[bus]
                        nxt.append(other)
            frontier = nxt
        return label

    def components(self, removed: Iterable[str]) -> list[set[int]]:
        """Return the connected sets of buses once the named lines are open."""
        seen: set[int] = set()
        out = []
        cut = list(removed)
        for bus in sorted(self.neighbours):
            if bus not in seen:
                part = set(self.hops_from([bus], cut))
                seen |= part
                out.append(part)
        return out
