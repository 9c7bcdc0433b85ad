"""Responses written a piece at a time, in bounded memory and off the event loop.

Under ASGI a synchronous iterator given to `StreamingHttpResponse` is first consumed whole into a
list; here each piece is produced on a worker thread through `sync_to_async` (thread-sensitive, so
database reads stay on Django's one sync thread), so a large answer never exists whole and the
event loop (which runs the pdc in embedded mode) only copies bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse

_DONE = object()


async def _off_loop(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Yield the pieces, each made by `next()` on Django's sync thread."""

    def step() -> object:
        return next(pieces, _DONE)

    while True:
        piece = await sync_to_async(step, thread_sensitive=True)()
        if piece is _DONE:
            return
        if isinstance(piece, bytes) and piece:
            yield piece


def stream_pieces(request: HttpRequest, pieces: Iterable[bytes], content_type: str) -> StreamingHttpResponse:
    """Return a streaming response over `pieces`; under ASGI each piece is made on a worker thread."""
    iterator = iter(pieces)
    content: Any = _off_loop(iterator) if isinstance(request, ASGIRequest) else iterator
    return StreamingHttpResponse(content, content_type=content_type)
