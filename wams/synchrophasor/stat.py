"""STAT word of data frames and the message time quality byte of FRACSEC."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt


class DataError(IntEnum):
    """STAT bits 15-14: data error indicator."""

    GOOD = 0
    PMU_ERROR = 1
    TEST_MODE = 2  # test mode, or absent data inserted by a PDC: do not use values
    PMU_ERROR_NO_DATA = 3  # PMU error: do not use values


class TriggerReason(IntEnum):
    """STAT bits 3-0: initial cause of a trigger (8-15 are user defined)."""

    MANUAL = 0
    MAGNITUDE_LOW = 1
    MAGNITUDE_HIGH = 2
    PHASE_ANGLE_DIFF = 3
    FREQUENCY_HIGH_OR_LOW = 4
    DF_DT_HIGH = 5
    RESERVED = 6
    DIGITAL = 7


class UnlockTime(IntEnum):
    """STAT bits 5-4: time since the PMU lost its time lock."""

    LOCKED_OR_UNDER_10_S = 0
    UNDER_100_S = 1
    UNDER_1000_S = 2
    OVER_1000_S = 3


# Worst-case time error (s) for the 3-bit PMU time quality code in STAT bits 8-6 (None: unknown).
PMU_TIME_QUALITY_MAX_ERROR_S: dict[int, float | None] = {
    0: None,
    1: 100e-9,
    2: 1e-6,
    3: 10e-6,
    4: 100e-6,
    5: 1e-3,
    6: 10e-3,
    7: None,
}

# Worst-case time error (s) for the 4-bit message time quality code (FRACSEC bits 27-24).
MESSAGE_TIME_QUALITY_MAX_ERROR_S: dict[int, float | None] = {
    0: 0.0,
    **{code: 10.0 ** (code - 10) for code in range(1, 12)},
    15: None,
}


@dataclass(frozen=True, slots=True)
class Stat:
    """Decoded STAT word of one PMU block."""

    data_error: int
    pmu_sync: bool  # True when locked to a UTC traceable source (bit 13 clear)
    sorting: int  # 0 sorted by time stamp, 1 by arrival (bit 12)
    trigger: bool
    config_change: bool
    data_modified: bool
    time_quality: int  # PMU_TQ, 3 bits (0 = not used)
    unlock_time: int  # UnlockTime code
    trigger_reason: int

    @classmethod
    def from_word(cls, stat: int) -> Stat:
        """Decode a 16-bit STAT word."""
        return cls(
            data_error=(stat >> 14) & 0x3,
            pmu_sync=not (stat >> 13) & 1,
            sorting=(stat >> 12) & 1,
            trigger=bool((stat >> 11) & 1),
            config_change=bool((stat >> 10) & 1),
            data_modified=bool((stat >> 9) & 1),
            time_quality=(stat >> 6) & 0x7,
            unlock_time=(stat >> 4) & 0x3,
            trigger_reason=stat & 0xF,
        )

    def to_word(self) -> int:
        """Encode back to the 16-bit STAT word."""
        return make_stat(
            data_error=self.data_error,
            pmu_sync=self.pmu_sync,
            sorting=self.sorting,
            trigger=self.trigger,
            config_change=self.config_change,
            data_modified=self.data_modified,
            time_quality=self.time_quality,
            unlock_time=self.unlock_time,
            trigger_reason=self.trigger_reason,
        )

    @property
    def data_valid(self) -> bool:
        """Return True when the values may be used (data error 0 or 1)."""
        return self.data_error < 2

    @property
    def time_quality_max_error_s(self) -> float | None:
        """Return the worst-case time error of the PMU time quality code (None if unknown)."""
        return PMU_TIME_QUALITY_MAX_ERROR_S[self.time_quality]


def make_stat(
    *,
    data_error: int = 0,
    pmu_sync: bool = True,
    sorting: int = 0,
    trigger: bool = False,
    config_change: bool = False,
    data_modified: bool = False,
    time_quality: int = 0,
    unlock_time: int = 0,
    trigger_reason: int = 0,
) -> int:
    """Build a 16-bit STAT word from its fields."""
    return (
        ((data_error & 0x3) << 14)
        | ((0 if pmu_sync else 1) << 13)
        | ((sorting & 1) << 12)
        | (int(trigger) << 11)
        | (int(config_change) << 10)
        | (int(data_modified) << 9)
        | ((time_quality & 0x7) << 6)
        | ((unlock_time & 0x3) << 4)
        | (trigger_reason & 0xF)
    )


def decode_stat_array(stat: npt.NDArray[np.integer]) -> dict[str, npt.NDArray[np.integer]]:
    """Split an array of STAT words (any shape) into arrays of the same shape, one per field."""
    s = stat.astype(np.uint16, copy=False)
    return {
        "data_error": (s >> 14) & 0x3,
        "pmu_sync": ((s >> 13) & 1) == 0,
        "sorting": (s >> 12) & 1,
        "trigger": ((s >> 11) & 1) == 1,
        "config_change": ((s >> 10) & 1) == 1,
        "data_modified": ((s >> 9) & 1) == 1,
        "time_quality": (s >> 6) & 0x7,
        "unlock_time": (s >> 4) & 0x3,
        "trigger_reason": s & 0xF,
    }


@dataclass(frozen=True, slots=True)
class MessageTimeQuality:
    """Message time quality: the top byte of FRACSEC."""

    leap_second_direction: int  # 0 add, 1 delete (bit 6)
    leap_second_occurred: bool  # bit 5
    leap_second_pending: bool  # bit 4
    code: int  # bits 3-0: 0 locked, 1..11 within 10^(code-10) s, 15 clock failure

    @classmethod
    def from_byte(cls, byte: int) -> MessageTimeQuality:
        """Decode the time quality byte (FRACSEC bits 31-24)."""
        return cls(
            leap_second_direction=(byte >> 6) & 1,
            leap_second_occurred=bool((byte >> 5) & 1),
            leap_second_pending=bool((byte >> 4) & 1),
            code=byte & 0xF,
        )

    def to_byte(self) -> int:
        """Encode back to the time quality byte."""
        return (
            ((self.leap_second_direction & 1) << 6)
            | (int(self.leap_second_occurred) << 5)
            | (int(self.leap_second_pending) << 4)
            | (self.code & 0xF)
        )

    @property
    def max_error_s(self) -> float | None:
        """Return the worst-case clock error the code states (None: fault or reserved)."""
        return MESSAGE_TIME_QUALITY_MAX_ERROR_S.get(self.code)


def make_fracsec(fraction: int, time_quality: int | MessageTimeQuality = 0) -> int:
    """Build the 32-bit FRACSEC word from a 24-bit fraction count and the time quality byte."""
    tq = time_quality.to_byte() if isinstance(time_quality, MessageTimeQuality) else time_quality
    return ((tq & 0xFF) << 24) | (fraction & 0xFFFFFF)
