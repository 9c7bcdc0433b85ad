"""Control views answer bad ids, values and bodies with a 4xx, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from wams.control.models import Command

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.control.urls")]

HUGE = "9" * 30
NESTED = b"[" * 50_000 + b"]" * 50_000


def paths(grid: Any) -> list[tuple[str, str]]:
    """Every control URL, with the ids filled in (an existing device, a missing command)."""
    device = grid.load_block.pk
    return [
        ("GET", "/control/"),
        ("GET", f"/control/devices/{device}/"),
        ("POST", f"/control/devices/{device}/select"),
        ("GET", f"/control/devices/{device}/state"),
        ("POST", "/control/streams/424242/select"),
        ("GET", "/control/commands/424242/"),
        ("POST", "/control/commands/424242/execute"),
        ("POST", "/control/commands/424242/cancel"),
        ("POST", "/control/schemes/424242/change"),
        ("GET", "/control/audit/"),
    ]


@pytest.mark.parametrize(
    "path",
    [
        f"/control/devices/{HUGE}/",
        f"/control/devices/{HUGE}/select",
        f"/control/devices/{HUGE}/state",
        f"/control/streams/{HUGE}/select",
        f"/control/commands/{HUGE}/",
        f"/control/commands/{HUGE}/execute",
        f"/control/commands/{HUGE}/cancel",
        f"/control/schemes/{HUGE}/change",
        "/control/devices/-1/",
        "/control/commands/abc/execute",
    ],
)
def test_ids_out_of_range_are_not_found(client: Client, operator: Any, path: str) -> None:
    client.force_login(operator)
    statuses = {client.get(path).status_code, client.post(path, {"action": "open", "reason": "x"}).status_code}
    assert 404 in statuses and statuses <= {404, 405}  # the wrong method may be told first


GARBAGE: list[tuple[str, dict[str, Any]]] = [
    ("nested JSON", {"data": NESTED, "content_type": "application/json"}),
    ("non-UTF-8 form", {"data": b"action=\xff\xfe&value=\xff&reason=\xc3\x28", "content_type": "application/x-www-form-urlencoded"}),
    ("bad values", {"data": b"action=explode&value=1e999&reason=" + b"r" * 10_000, "content_type": "application/x-www-form-urlencoded"}),
    ("nan value", {"data": b"action=set_point&value=nan&reason=x", "content_type": "application/x-www-form-urlencoded"}),
    ("broken multipart", {"data": b"--x\r\nnonsense", "content_type": "multipart/form-data; boundary=x"}),
    ("oversized form", {"data": b"reason=" + b"r" * (3 * 2**20), "content_type": "application/x-www-form-urlencoded"}),
    ("bad query", {"query": "refresh=%FF&page=-1&outcome=%00&origin=" + HUGE + "&q=%E0%80"}),
]  # fmt: skip


@pytest.mark.parametrize(("label", "request_kwargs"), GARBAGE, ids=[label for label, _ in GARBAGE])
def test_no_garbage_gets_a_500_from_any_control_view(
    client: Client, grid: Any, operator: Any, label: str, request_kwargs: dict[str, Any]
) -> None:
    client.force_login(operator)
    for method, path in paths(grid):
        url = path + ("?" + request_kwargs["query"] if "query" in request_kwargs else "")
        response = client.generic(
            method,
            url,
            request_kwargs.get("data", b""),
            content_type=request_kwargs.get("content_type", "application/octet-stream"),
        )
        assert response.status_code < 500, (label, method, path, response.status_code, response.content[:300])
    assert not Command.objects.filter(state="executing").exists()
