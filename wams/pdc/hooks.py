"""Per-snapshot callbacks: fast detectors and automatic schemes plug in here.

A handler gets every aligned snapshot (`wams.pdc.livefeed.SnapshotView`) of the pdc process it runs
in, in time order, on the pdc's event loop: it must return quickly. A handler may be a coroutine
function; its coroutine then runs as a task of its own. Exceptions are logged, never propagated.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

from wams.pdc.livefeed import SnapshotView

logger = logging.getLogger(__name__)

SnapshotHandler = Callable[[SnapshotView], Awaitable[None] | None]

_handlers: list[SnapshotHandler] = []
_tasks: set[asyncio.Task[None]] = set()
_startup: list[Callable[[], object]] = []


def register_startup(func: Callable[[], object]) -> Callable[[], object]:
    """Call `func()` when a pdc process starts, before its first snapshot (apps register from their config)."""
    if func not in _startup:
        _startup.append(func)
    return func


def run_startup() -> None:
    """Call the registered start-up functions (the pdc runner does, once per process)."""
    for func in tuple(_startup):
        func()


def register_snapshot_handler(handler: SnapshotHandler) -> SnapshotHandler:
    """Call `handler(view)` for every aligned snapshot; return it (usable as a decorator)."""
    if handler not in _handlers:
        _handlers.append(handler)
    return handler


def unregister_snapshot_handler(handler: SnapshotHandler) -> None:
    """Stop calling `handler`."""
    if handler in _handlers:
        _handlers.remove(handler)


def snapshot_handlers() -> tuple[SnapshotHandler, ...]:
    """Return the registered handlers."""
    return tuple(_handlers)


async def _guard(result: Awaitable[None], handler: SnapshotHandler) -> None:
    """Await a handler's coroutine and log what it raises."""
    try:
        await result
    except Exception:
        logger.exception("snapshot handler %r failed", handler)


def dispatch(view: SnapshotView) -> None:
    """Hand one snapshot to every handler."""
    for handler in tuple(_handlers):
        try:
            result = handler(view)
        except Exception:
            logger.exception("snapshot handler %r failed", handler)
            continue
        if inspect.isawaitable(result):
            task = asyncio.get_running_loop().create_task(_guard(result, handler))
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)
