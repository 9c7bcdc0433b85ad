"""C37.118 commands to a PMU stream through execute_command, against the codec's PmuServer on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import make_organisation, make_stream, make_user
from wams.control.models import AuditRecord
from wams.control.services import CommandRequest, execute_command
from wams.grid.models import CommunicationPath
from wams.synchrophasor import ConfigFrame, PhasorChannel, PmuConfig, PmuServer

pytestmark = pytest.mark.django_db


class ServedPmu:
    """A PmuServer at 30 fps on its own event loop thread."""

    def __init__(self, idcode: int) -> None:
        config = ConfigFrame(
            idcode=idcode,
            data_rate=30,
            pmus=[
                PmuConfig(
                    "TEST PMU", idcode, phasor_float=True, polar=True, freq_float=True, phasors=[PhasorChannel("VA")]
                )
            ],
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = PmuServer(config, header="Test PMU at bus 9001")
        self.port = self.call(self.server.start())["tcp"]

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def stop(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def served_stream(db: Any) -> Iterator[tuple[Any, Any]]:
    org = make_organisation()
    stream = make_stream(owner=org, idcode=4242)
    pmu = ServedPmu(4242)
    CommunicationPath.objects.create(stream=stream, name="fibre", host="127.0.0.1", port=pmu.port)
    yield stream, pmu
    pmu.stop()


def send(user, stream, action) -> Any:
    return execute_command(CommandRequest(action=action, stream_id=stream.pk, user=user, reason="check stream"))


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("send_cfg2", "CFG-2: 1 PMU(s) (TEST PMU), 30 fps"),
        ("send_cfg3", "CFG-3: 1 PMU(s)"),
        ("send_header", "header: Test PMU at bus 9001"),
        ("start", "data flowing"),
        ("stop", "transmission stopped"),
    ],
)
def test_stream_commands_are_answered_by_the_device(served_stream, django_user_model, action, expected):
    stream, _ = served_stream
    operator = make_user(django_user_model, "operator", stream.owner)

    result = send(operator, stream, action)

    assert result.state == "completed", result.detail
    assert expected in result.detail
    outcomes = list(AuditRecord.objects.filter(stream=stream).order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["sent", "completed"]


def test_stream_commands_are_refused_to_viewers_and_other_organisations(served_stream, django_user_model):
    stream, _ = served_stream
    viewer = make_user(django_user_model, "viewer", stream.owner)
    stranger = make_user(django_user_model, "operator", make_organisation())

    assert send(viewer, stream, "start").state == "refused"
    assert send(stranger, stream, "start").state == "refused"
    assert send(make_user(django_user_model, "operator", stream.owner), stream, "open").state == "refused"
    assert AuditRecord.objects.filter(stream=stream, outcome="refused").count() == 3


def test_stream_without_a_listening_device_fails(db, django_user_model):
    from tests.control.conftest import free_port

    stream = make_stream(idcode=77)
    CommunicationPath.objects.create(stream=stream, name="fibre", host="127.0.0.1", port=free_port())
    operator = make_user(django_user_model, "operator", stream.owner)

    result = send(operator, stream, "send_cfg2")

    assert result.state == "failed" and "127.0.0.1" in result.detail
