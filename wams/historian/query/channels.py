"""Channel names of queries and the columns they read from a block of samples.

Channel names: `frequency_hz`, `rocof_hz_per_s`, `stat`, `phasor_<k>_magnitude` (V or A),
`phasor_<k>_angle_deg`, `analog_<k>`, `digital_<k>` (k = the channel's `order`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from wams.historian.blocks import SampleBlock

F64 = npt.NDArray[np.float64]

_CHANNEL = re.compile(
    r"^(?:(frequency_hz|rocof_hz_per_s|stat)|phasor_(\d+)_(magnitude|angle_deg)|(analog|digital)_(\d+))$"
)


@dataclass(frozen=True)
class ChannelSpec:
    """A parsed channel name: which column of a PMU's samples it reads."""

    name: str
    kind: str  # frequency_hz, rocof_hz_per_s, stat, magnitude, angle_deg, analog, digital
    index: int = 0


def parse_channel(name: str) -> ChannelSpec:
    """Parse a channel name, failing with ValueError on an unknown one."""
    match = _CHANNEL.match(name)
    if match is None:
        raise ValueError(
            f"unknown channel {name!r}: use frequency_hz, rocof_hz_per_s, stat, phasor_<k>_magnitude, "
            "phasor_<k>_angle_deg, analog_<k> or digital_<k>"
        )
    simple, phasor, part, kind, index = match.groups()
    if simple:
        return ChannelSpec(name, simple)
    if phasor is not None:
        return ChannelSpec(name, part, int(phasor))
    return ChannelSpec(name, kind, int(index))


def channel_names(n_phasors: int, n_analogs: int = 0, n_digitals: int = 0) -> list[str]:
    """Return every channel name of a PMU with the given channel counts."""
    names = ["frequency_hz", "rocof_hz_per_s", "stat"]
    for k in range(n_phasors):
        names += [f"phasor_{k}_magnitude", f"phasor_{k}_angle_deg"]
    names += [f"analog_{k}" for k in range(n_analogs)]
    names += [f"digital_{k}" for k in range(n_digitals)]
    return names


def _column(matrix: npt.NDArray[Any], index: int, fill: float = np.nan) -> F64:
    """Return column `index` of an (n, k) matrix as float64, or `fill` when the PMU lacks it."""
    if index < matrix.shape[1]:
        return matrix[:, index].astype(np.float64)
    return np.full(matrix.shape[0], fill)


def block_columns(block: SampleBlock, specs: Sequence[ChannelSpec]) -> dict[str, F64]:
    """Return the columns `specs` name from a block -> name -> (n,) values."""
    columns: dict[str, F64] = {}
    for spec in specs:
        if spec.kind == "stat":
            columns[spec.name] = block.stat.astype(np.float64)
        elif spec.kind == "frequency_hz":
            columns[spec.name] = block.frequency_hz
        elif spec.kind == "rocof_hz_per_s":
            columns[spec.name] = block.rocof_hz_per_s
        elif spec.kind == "magnitude":
            columns[spec.name] = np.abs(_complex_column(block.phasors, spec.index))
        elif spec.kind == "angle_deg":
            columns[spec.name] = np.degrees(np.angle(_complex_column(block.phasors, spec.index)))
        elif spec.kind == "analog":
            columns[spec.name] = _column(block.analogs, spec.index)
        else:
            columns[spec.name] = _column(block.digitals, spec.index, fill=0.0)
    return columns


def _complex_column(phasors: npt.NDArray[np.complex128], index: int) -> npt.NDArray[np.complex128]:
    if index < phasors.shape[1]:
        return phasors[:, index]
    return np.full(phasors.shape[0], complex(np.nan, np.nan))
