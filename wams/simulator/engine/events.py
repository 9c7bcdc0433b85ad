"""Actions applied to the simulation, load modulators, and joining trajectory chunks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from wams.simulator.engine.trajectory import BoolArray, FloatArray, TrajectoryChunk


class SimulationDivergedError(RuntimeError):
    """The integrator could not continue (e.g. voltage collapse); the case must be restarted."""


@dataclass(frozen=True)
class AppliedEvent:
    """One switching or parameter action applied to the running simulation."""

    t_s: float
    kind: str
    element: str
    detail: dict[str, Any] = field(default_factory=dict)


class LoadModulator(Protocol):
    """Multiply load powers over time; return None once finished (it is then dropped)."""

    name: str

    def factors(self, t_s: float) -> tuple[FloatArray, FloatArray] | None:
        """Return (p_factor, q_factor), each (n_load,), for simulated time `t_s`."""
        ...


def concatenate(
    parts: list[TrajectoryChunk], line_closed: BoolArray, generator_online: BoolArray, n_bus: int
) -> TrajectoryChunk:
    """Join chunks; the switching state is the last chunk's (it held since the last action)."""
    if not parts:
        n_gen = generator_online.shape[0]
        return TrajectoryChunk(
            t_s=np.zeros(0),
            bus_angle_rad=np.zeros((0, n_bus)),
            bus_magnitude_pu=np.zeros((0, n_bus)),
            bus_frequency_pu=np.zeros((0, n_bus)),
            generator_speed_pu=np.zeros((0, n_gen)),
            generator_power_pu=np.zeros((0, n_gen)),
            line_closed=line_closed.copy(),
            generator_online=generator_online.copy(),
        )
    if len(parts) == 1:
        return parts[0]
    return TrajectoryChunk(
        t_s=np.concatenate([p.t_s for p in parts]),
        bus_angle_rad=np.vstack([p.bus_angle_rad for p in parts]),
        bus_magnitude_pu=np.vstack([p.bus_magnitude_pu for p in parts]),
        bus_frequency_pu=np.vstack([p.bus_frequency_pu for p in parts]),
        generator_speed_pu=np.vstack([p.generator_speed_pu for p in parts]),
        generator_power_pu=np.vstack([p.generator_power_pu for p in parts]),
        line_closed=parts[-1].line_closed,
        generator_online=parts[-1].generator_online,
    )
