"""Errors raised by the C37.118 codec; every bad input ends as a `C37118Error`."""

from __future__ import annotations


class C37118Error(Exception):
    """Reject a frame or a value the codec cannot handle; `reason` is a short stable code."""

    default_reason = "invalid_frame"

    def __init__(self, detail: str = "", reason: str | None = None) -> None:
        self.reason: str = reason or self.default_reason
        self.detail: str = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class SyncError(C37118Error):
    """Reject bytes that do not start with the SYNC byte 0xAA or a known frame type."""

    default_reason = "bad_sync"


class FrameSizeError(C37118Error):
    """Reject a FRAMESIZE that disagrees with the bytes at hand or with the configuration."""

    default_reason = "bad_framesize"


class CrcError(C37118Error):
    """Reject a frame whose CHK does not match the CRC-CCITT of its bytes."""

    default_reason = "bad_crc"


class TruncatedFrameError(C37118Error):
    """Reject a frame whose fields run past its end."""

    default_reason = "truncated"


class ConfigMismatchError(C37118Error):
    """Reject a data frame that does not fit the configuration given to decode it."""

    default_reason = "config_mismatch"


class MissingConfigError(C37118Error):
    """Reject a data frame when no configuration is known for its stream."""

    default_reason = "no_config"


class EncodeError(C37118Error):
    """Reject a frame or configuration that cannot be written in C37.118."""

    default_reason = "cannot_encode"
