"""Frame and configuration dataclasses of IEEE C37.118.2-2011."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Literal

import numpy as np
import numpy.typing as npt

from wams.synchrophasor.stat import MessageTimeQuality, Stat


class FrameType(IntEnum):
    """Frame type: bits 6-4 of the second SYNC byte."""

    DATA = 0
    HEADER = 1
    CFG1 = 2
    CFG2 = 3
    COMMAND = 4
    CFG3 = 5


class Command(IntEnum):
    """Command codes of a command frame (Table 15); codes 0x0100-0x0FFF are user defined."""

    STOP = 1
    START = 2
    SEND_HEADER = 3
    SEND_CFG1 = 4
    SEND_CFG2 = 5
    SEND_CFG3 = 6
    EXTENDED = 8


class PhasorComponent(IntEnum):
    """CFG-3 phasor component (PHSCALE third byte, bits 2-0)."""

    ZERO_SEQUENCE = 0
    POSITIVE_SEQUENCE = 1
    NEGATIVE_SEQUENCE = 2
    RESERVED_3 = 3
    PHASE_A = 4
    PHASE_B = 5
    PHASE_C = 6
    RESERVED_7 = 7


class AnalogKind(IntEnum):
    """ANUNIT type byte; 65-255 are user defined and kept as plain ints."""

    POINT_ON_WAVE = 0
    RMS = 1
    PEAK = 2


PhasorKind = Literal["V", "A"]


@dataclass(slots=True)
class PhasorChannel:
    """One phasor channel.

    `scale` converts 16-bit integer phasors to volts or amperes per count (CFG-1/2: PHUNIT x 1e-5;
    CFG-3: PHSCALE magnitude factor); `angle_offset_rad` is the CFG-3 angle adjustment subtracted from
    integer phasors. Floating-point phasors are in engineering units already and are not scaled.
    """

    name: str
    kind: PhasorKind = "V"
    scale: float = 1.0
    angle_offset_rad: float = 0.0
    component: int = 0  # CFG-3 PhasorComponent
    modification_flags: int = 0  # CFG-3 16-bit data modification flags
    user_flags: int = 0  # CFG-3 fourth byte


@dataclass(slots=True)
class AnalogChannel:
    """One analog channel.

    `kind` is the ANUNIT type byte (0 point-on-wave, 1 rms, 2 peak, 65-255 user defined).
    16-bit integer analogs decode to ``raw * scale + offset`` (CFG-1/2: `scale` is the signed 24-bit
    ANUNIT word, a zero read as 1, `offset` unused; CFG-3: ANSCALE M and B). Floating-point analogs are
    engineering units and are not scaled.
    """

    name: str
    kind: int = 0
    scale: float = 1.0
    offset: float = 0.0


@dataclass(slots=True)
class DigitalWord:
    """One 16-bit digital status word: 16 channel names (bit 0 first) and its DIGUNIT masks."""

    names: list[str] = field(default_factory=lambda: [""] * 16)
    normal_mask: int = 0
    valid_mask: int = 0xFFFF


@dataclass(slots=True)
class PmuConfig:
    """Configuration of one PMU block (CFG-1/2 fields 8-19, CFG-3 fields 9-27)."""

    station_name: str
    idcode: int
    phasor_float: bool = False
    polar: bool = False
    freq_float: bool = False
    analog_float: bool = False
    phasors: list[PhasorChannel] = field(default_factory=list)
    analogs: list[AnalogChannel] = field(default_factory=list)
    digitals: list[DigitalWord] = field(default_factory=list)
    nominal_hz: int = 60
    cfgcnt: int = 0
    # CFG-3 only
    global_pmu_id: bytes = b"\x00" * 16
    latitude_deg: float = math.inf
    longitude_deg: float = math.inf
    elevation_m: float = math.inf
    svc_class: str = "M"
    window_us: int = 0
    group_delay_us: int = 0

    @property
    def format_word(self) -> int:
        """Return the FORMAT word (bit 3 freq float, 2 analog float, 1 phasor float, 0 polar)."""
        return (
            (int(self.freq_float) << 3)
            | (int(self.analog_float) << 2)
            | (int(self.phasor_float) << 1)
            | int(self.polar)
        )

    @property
    def data_block_size(self) -> int:
        """Return the bytes this PMU's block takes in a data frame."""
        phasor = 8 if self.phasor_float else 4
        freq = 8 if self.freq_float else 4
        analog = 4 if self.analog_float else 2
        return 2 + phasor * len(self.phasors) + freq + analog * len(self.analogs) + 2 * len(self.digitals)


@dataclass(slots=True)
class ConfigFrame:
    """A configuration frame (CFG-1, CFG-2 or CFG-3) describing one data stream.

    `fracsec` is the whole 32-bit FRACSEC word (time quality byte and 24-bit fraction);
    `time_base` is the 24-bit TIME_BASE; `data_rate` > 0 is frames/s, < 0 is seconds per frame.
    """

    idcode: int
    soc: int = 0
    fracsec: int = 0
    time_base: int = 1_000_000
    data_rate: int = 30
    pmus: list[PmuConfig] = field(default_factory=list)
    version: int = 1
    cfg_type: int = 2
    cont_idx: int = 0  # CFG-3 continuation index
    time_base_flags: int = 0  # TIME_BASE bits 31-24, reserved
    # Compiled data-frame layout, built on first use; call `invalidate_layout()` after changing
    # pmus, formats or scales of a configuration already used to encode or decode.
    _layout: object = field(default=None, init=False, repr=False, compare=False)

    def invalidate_layout(self) -> None:
        """Forget the compiled data-frame layout after the configuration was changed."""
        self._layout = None

    @property
    def frame_type(self) -> FrameType:
        """Return CFG1, CFG2 or CFG3."""
        return {1: FrameType.CFG1, 2: FrameType.CFG2, 3: FrameType.CFG3}[self.cfg_type]

    @property
    def rate_hz(self) -> float:
        """Return the reporting rate in frames per second."""
        if self.data_rate > 0:
            return float(self.data_rate)
        if self.data_rate < 0:
            return 1.0 / -self.data_rate
        return 0.0

    @property
    def data_frame_size(self) -> int:
        """Return the size in bytes of one data frame of this configuration."""
        return 16 + sum(p.data_block_size for p in self.pmus)

    @property
    def timestamp_s(self) -> float:
        """Return SOC + fraction / TIME_BASE in seconds since 1970 (UTC, no leap seconds)."""
        return self.soc + (self.fracsec & 0xFFFFFF) / self.time_base


@dataclass(slots=True)
class PmuData:
    """Measurements of one PMU block in a data frame, in engineering units.

    phasors: complex128 (n_phasors,) in V or A; analogs: float64 (n_analogs,); digitals: raw 16-bit
    words; absent values (NaN floats, 0x8000 integers) decode to NaN.
    """

    stat: int
    phasors: npt.NDArray[np.complex128]
    frequency_hz: float
    rocof_hz_per_s: float
    analogs: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    digitals: list[int] = field(default_factory=list)

    @property
    def stat_flags(self) -> Stat:
        """Return the decoded STAT word."""
        return Stat.from_word(self.stat)


@dataclass(slots=True)
class DataFrame:
    """A data frame: one time stamp, one block per PMU of the configuration.

    `fracsec` is the whole 32-bit FRACSEC word; `time_base` comes from the configuration.
    """

    idcode: int
    soc: int
    fracsec: int
    pmus: list[PmuData]
    time_base: int = 1_000_000
    version: int = 1

    @property
    def fraction(self) -> int:
        """Return the 24-bit fraction-of-second count."""
        return self.fracsec & 0xFFFFFF

    @property
    def timestamp_s(self) -> float:
        """Return SOC + fraction / TIME_BASE in seconds since 1970 (UTC, no leap seconds)."""
        return self.soc + (self.fracsec & 0xFFFFFF) / self.time_base

    @property
    def timestamp(self) -> datetime:
        """Return the time stamp as a timezone-aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp_s, tz=UTC)

    @property
    def time_quality(self) -> MessageTimeQuality:
        """Return the message time quality (leap second flags and clock code)."""
        return MessageTimeQuality.from_byte(self.fracsec >> 24)


@dataclass(slots=True)
class HeaderFrame:
    """A header frame: free text describing the stream."""

    idcode: int
    soc: int = 0
    fracsec: int = 0
    text: str = ""
    version: int = 1


@dataclass(slots=True)
class CommandFrame:
    """A command frame sent to a PMU/PDC; `extended` carries EXTFRAME bytes."""

    idcode: int
    soc: int = 0
    fracsec: int = 0
    command: Command | int = Command.START
    extended: bytes = b""
    version: int = 1


Frame = DataFrame | ConfigFrame | HeaderFrame | CommandFrame
