"""Keep the resident memory of long-running processes bounded: few malloc arenas, free pages given back.

glibc gives every thread that meets a locked arena a new one (up to 8 per core), and memory freed in an
arena is kept for reuse rather than returned. A process serving requests on thread pools, with a pdc
and detectors on others, grows by fragmented arenas while its Python heap stays flat. `limit_arenas`
caps the arenas (WAMS_MALLOC_ARENAS, 0 keeps glibc's default) before any thread starts, and `trim`
returns the free pages of every arena to the system; the long-running commands call it periodically.
Elsewhere than on glibc both do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
from functools import cache

logger = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)
DEFAULT_ARENAS = 2
#: Seconds between two `trim` calls of the long-running commands.
TRIM_PERIOD_S = 60.0


@cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    return libc


def arenas_setting(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """Return WAMS_MALLOC_ARENAS (default 2); a value that is not a count >= 0 stops the process."""
    raw = environ.get("WAMS_MALLOC_ARENAS", "").strip()
    if not raw:
        return DEFAULT_ARENAS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise SystemExit(f"WAMS_MALLOC_ARENAS must be a whole number >= 0 (0 keeps glibc's default), got {raw!r}")
    return value


def limit_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas at `count` (0: leave the default); return whether the cap was set."""
    libc = _glibc()
    if count <= 0 or libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))


def trim() -> bool:
    """Return the free memory at the top and inside every arena to the system; True if some was."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def configure_process(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Apply WAMS_MALLOC_ARENAS to this process (`wams/__init__.py` does, before threads start)."""
    limit_arenas(arenas_setting(environ))


async def trim_periodically(stop: asyncio.Event, period_s: float = TRIM_PERIOD_S) -> None:
    """Call `trim` every `period_s` (off the event loop) until `stop` is set."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=period_s)
        if not stop.is_set():
            await loop.run_in_executor(None, trim)
