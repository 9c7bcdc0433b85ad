"""Streaming reader: cut a byte stream of arbitrary chunks into whole, CRC-checked frames."""

from __future__ import annotations

from wams.synchrophasor.crc import crc_ccitt
from wams.synchrophasor.decode import MIN_FRAME_SIZE

SYNC_BYTE = 0xAA


class StreamReader:
    """Reassemble frames from a TCP byte stream (or UDP datagrams) fed in arbitrary chunks.

    `feed(chunk)` returns the whole frames completed by `chunk`, each CRC-checked, as bytes.
    Bytes that cannot start a frame are skipped until the next SYNC byte; each rejected candidate is
    counted in `rejected[reason]` ("garbage", "bad_sync", "bad_framesize", "bad_crc") and the search
    goes on one byte after it, so the link survives. The buffer never holds more than one partial
    frame, at most `max_frame_size` bytes (lower it to the largest frame you expect, e.g. the
    configuration's data frame size, to resynchronise faster after a false SYNC with a huge size).
    """

    def __init__(self, max_frame_size: int = 0xFFFF) -> None:
        if not MIN_FRAME_SIZE <= max_frame_size <= 0xFFFF:
            raise ValueError("max_frame_size must be within 16..65535")
        self.max_frame_size = max_frame_size
        self.rejected: dict[str, int] = {}
        self.frames_ok = 0
        self.bytes_skipped = 0
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Return the number of bytes waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        """Drop any partial frame (e.g. after a reconnect)."""
        self._buf.clear()

    def _reject(self, reason: str) -> None:
        """Count one rejected frame candidate."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[bytes]:
        """Add `chunk` and return every whole frame with a good CRC now available."""
        buf = self._buf
        buf += chunk
        frames: list[bytes] = []
        pos = 0
        n = len(buf)
        while True:
            if pos < n and buf[pos] != SYNC_BYTE:
                nxt = buf.find(SYNC_BYTE, pos)
                skip_to = n if nxt < 0 else nxt
                self.bytes_skipped += skip_to - pos
                self._reject("garbage")
                pos = skip_to
            if n - pos < 4:
                break
            second = buf[pos + 1]
            if second & 0x80 or ((second >> 4) & 0x7) > 5 or (second & 0xF) == 0:
                self._reject("bad_sync")
                pos += 1
                continue
            size = buf[pos + 2] << 8 | buf[pos + 3]
            if size < MIN_FRAME_SIZE or size > self.max_frame_size:
                self._reject("bad_framesize")
                pos += 1
                continue
            if n - pos < size:
                break
            end = pos + size
            if crc_ccitt(memoryview(buf)[pos : end - 2]) != (buf[end - 2] << 8 | buf[end - 1]):
                self._reject("bad_crc")
                pos += 1
                continue
            frames.append(bytes(buf[pos:end]))
            self.frames_ok += 1
            pos = end
        if pos:
            del buf[:pos]
        return frames
