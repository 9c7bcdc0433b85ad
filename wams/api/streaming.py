"""Large JSON answers of traces written a piece at a time (`wams.streaming`), in bounded memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import numpy as np
from django.http import HttpRequest, HttpResponse, JsonResponse

from wams.historian.query import Trace
from wams.streaming import stream_pieces

STREAM_ABOVE_VALUES = 200_000  # answers holding more numbers than this are streamed


def _numbers(values: np.ndarray) -> str:
    """Return a JSON array of floats with NaN and infinities as null."""
    text = json.dumps(values.tolist())
    return text.replace("NaN", "null").replace("-Infinity", "null").replace("Infinity", "null")


def trace_json_text(trace: Trace) -> str:
    """Return one trace as JSON text, the same object as `Trace.to_json` gives."""
    return (
        f'{{"pmu_id": {trace.pmu_id}, "channel": {json.dumps(trace.channel)}, '
        f'"t": {_numbers(trace.timestamp_us / 1e6)}, "mean": {_numbers(trace.mean)}, '
        f'"min": {_numbers(trace.minimum)}, "max": {_numbers(trace.maximum)}, "bucket_s": {trace.bucket_us / 1e6}}}'
    )


def _pieces(head: dict[str, Any], traces: list[Trace]) -> Iterator[bytes]:
    yield (json.dumps(head)[:-1] + ', "traces": [').encode()
    for index, trace in enumerate(traces):
        yield ((", " if index else "") + trace_json_text(trace)).encode()
    yield b"]}"


def json_traces_response(request: HttpRequest, head: dict[str, Any], traces: list[Trace]) -> HttpResponse:
    """Answer `head` plus `"traces": [...]`: one JsonResponse when small, streamed trace by trace when large."""
    numbers = sum(4 * len(trace.timestamp_us) for trace in traces)
    if numbers <= STREAM_ABOVE_VALUES:
        return JsonResponse(head | {"traces": [trace.to_json() for trace in traces]})
    # A StreamingHttpResponse is answered like an HttpResponse by every caller here (headers, status).
    return cast(HttpResponse, stream_pieces(request, _pieces(head, traces), "application/json"))
