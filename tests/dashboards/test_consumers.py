from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from tests.conftest import make_substation
from tests.dashboards.conftest import make_event
from wams import live
from wams.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

APP = URLRouter(websocket_urlpatterns)


def snapshot(pmu_ids, t=(1000.0, 1000.1), value=60.0):
    return {
        "t": list(t),
        "sent_at": t[-1] + 0.2,
        "pmus": {
            str(i): {
                "frequency_hz": [value] * len(t),
                "rocof_hz_per_s": [0.0] * len(t),
                "magnitude_pu": [1.0] * len(t),
                "angle_deg": [5.0] * len(t),
                "stat": [0] * len(t),
            }
            for i in pmu_ids
        },
    }


async def connect(user: Any, path: str = "/ws/live/") -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(APP, path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    return communicator, connected


async def open_live(user: Any, path: str = "/ws/live/") -> tuple[WebsocketCommunicator, dict]:
    communicator, connected = await connect(user, path)
    assert connected
    hello = await communicator.receive_json_from()
    assert hello["type"] == "hello"
    return communicator, hello


def run(coro_fn, *args):
    return async_to_sync(coro_fn)(*args)


def test_anonymous_and_roleless_users_are_refused(scenario):
    from django.contrib.auth.models import AnonymousUser

    async def body():
        for user in (AnonymousUser(), scenario.nobody):
            _communicator, connected = await connect(user)
            assert not connected

    run(body)


def test_snapshots_are_filtered_to_the_pmus_the_user_may_see(scenario):
    async def body():
        communicator, hello = await open_live(scenario.viewer_a)
        assert hello["pmus"] == sorted([scenario.a1.pk, scenario.a2.pk, scenario.b2.pk])
        await live.apublish(
            live.GROUP_SNAPSHOTS, live.EVENT_SNAPSHOT, snapshot([scenario.a1.pk, scenario.b1.pk, scenario.b2.pk])
        )
        message = await communicator.receive_json_from(timeout=2)
        assert message["type"] == "snapshot"
        assert set(message["pmus"]) == {str(scenario.a1.pk), str(scenario.b2.pk)}
        assert message["t"] == [1000.0, 1000.1]
        await communicator.disconnect()

    run(body)


def test_a_snapshot_of_only_invisible_pmus_sends_nothing(scenario):
    async def body():
        communicator, _ = await open_live(scenario.viewer_a)
        await live.apublish(live.GROUP_SNAPSHOTS, live.EVENT_SNAPSHOT, snapshot([scenario.b1.pk]))
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    run(body)


def test_link_and_control_updates_are_scoped_by_stream_and_device(scenario):
    async def body():
        communicator, _ = await open_live(scenario.viewer_a)
        for stream in (scenario.b1.stream, scenario.a1.stream):
            await live.apublish(
                live.GROUP_LINKS, live.EVENT_LINK, {"stream_id": stream.pk, "stream": stream.name, "state": "streaming"}
            )
        message = await communicator.receive_json_from(timeout=2)
        # Stream B carries B2 (shared), so both streams are visible to A; B's device is not.
        assert message["type"] == "link"
        await communicator.receive_json_from(timeout=2)
        await live.apublish(
            live.GROUP_CONTROL, live.EVENT_CONTROL, {"device_id": scenario.device_b.pk, "state": "executed"}
        )
        await live.apublish(
            live.GROUP_CONTROL, live.EVENT_CONTROL, {"device_id": scenario.device_a.pk, "state": "executed"}
        )
        message = await communicator.receive_json_from(timeout=2)
        assert message == {"type": "control", "device_id": scenario.device_a.pk, "state": "executed"}
        await communicator.disconnect()

    run(body)


def test_alarms_are_forwarded_with_only_the_visible_pmus_named(scenario):
    async def body():
        communicator, _ = await open_live(scenario.viewer_a)
        private = {"event_id": 1, "kind": "rocof", "state": "raised", "pmu_ids": [scenario.b1.pk]}
        mixed = {"event_id": 2, "kind": "rocof", "state": "raised", "pmu_ids": [scenario.b1.pk, scenario.a2.pk]}
        await live.apublish(live.GROUP_ALARMS, live.EVENT_ALARM, private)
        await live.apublish(live.GROUP_ALARMS, live.EVENT_ALARM, mixed)
        message = await communicator.receive_json_from(timeout=2)
        assert message["event_id"] == 2
        assert message["pmu_ids"] == [scenario.a2.pk]
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()

    run(body)


def test_an_alarm_naming_no_pmu_follows_the_events_visibility(scenario):
    private = make_event([], dedup_key="x")
    private.substations.set([make_substation(owner=scenario.org_b)])  # hosts nothing shared with A
    system_wide = make_event([], dedup_key="y")

    async def body():
        communicator, _ = await open_live(scenario.viewer_a)
        for event in (private, system_wide):
            await live.apublish(
                live.GROUP_ALARMS, live.EVENT_ALARM, {"event_id": event.pk, "state": "raised", "pmu_ids": []}
            )
        message = await communicator.receive_json_from(timeout=2)
        assert message["event_id"] == system_wide.pk
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()

    run(body)


def test_pmu_socket_of_another_organisations_pmu_is_refused(scenario):
    async def body():
        _, connected = await connect(scenario.viewer_a, f"/ws/pmu/{scenario.b1.pk}/")
        assert not connected
        _, connected = await connect(scenario.viewer_a, f"/ws/live/?pmus={scenario.a1.pk},{scenario.b1.pk}")
        assert not connected
        _, connected = await connect(scenario.viewer_a, "/ws/live/?pmus=1,x")
        assert not connected

    run(body)


def test_pmu_socket_carries_its_pmu_and_its_channel_detail_only(scenario):
    async def body():
        communicator, hello = await open_live(scenario.viewer_a, f"/ws/pmu/{scenario.b2.pk}/")
        assert hello["pmus"] == [scenario.b2.pk]
        await live.apublish(live.GROUP_SNAPSHOTS, live.EVENT_SNAPSHOT, snapshot([scenario.a1.pk, scenario.b2.pk]))
        message = await communicator.receive_json_from(timeout=2)
        assert list(message["pmus"]) == [str(scenario.b2.pk)]
        detail = {"t": [1000.0], "pmu_id": scenario.b2.pk, "channels": {"phasor:1:magnitude": [412.0]}}
        await live.apublish(live.group_pmu(scenario.b2.pk), live.EVENT_SNAPSHOT, detail)
        message = await communicator.receive_json_from(timeout=2)
        assert message["type"] == "channels"
        assert message["channels"] == {"phasor:1:magnitude": [412.0]}
        await communicator.disconnect()

    run(body)


@override_settings(WAMS_LIVE_RATE_HZ=2)
def test_a_burst_of_snapshots_is_coalesced_into_few_updates_on_a_ten_per_second_grid(scenario):
    async def body():
        communicator, _ = await open_live(scenario.viewer_a)
        for k in range(20):
            t = 1000.0 + k / 30
            await live.apublish(
                live.GROUP_SNAPSHOTS, live.EVENT_SNAPSHOT, snapshot([scenario.a1.pk], t=(t,), value=60.0 + k)
            )
        messages = []
        while not await communicator.receive_nothing(timeout=1.0):
            messages.append(await communicator.receive_json_from())
        # The first goes out at once, the rest wait for the next slot of the 2 Hz update rate.
        assert 2 <= len(messages) <= 3
        last = messages[-1]
        assert last["t"][-1] == pytest.approx(1000.0 + 18 / 30)  # first instant of the last 0.1 s bucket
        assert last["pmus"][str(scenario.a1.pk)]["frequency_hz"][-1] == 78.0
        # 10 points per second of measurement time: 20 instants 1/30 s apart thin to 7.
        assert [t for m in messages for t in m["t"]] == pytest.approx([1000.0 + k / 30 for k in range(0, 20, 3)])
        await communicator.disconnect()

    run(body)


def test_topics_limit_what_a_page_receives(scenario):
    async def body():
        communicator, _ = await open_live(scenario.viewer_a, "/ws/live/?topics=alarms")
        await live.apublish(live.GROUP_SNAPSHOTS, live.EVENT_SNAPSHOT, snapshot([scenario.a1.pk]))
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    run(body)


def test_the_full_asgi_stack_authenticates_the_socket_with_the_session_cookie(client, scenario):
    from wams.asgi import application

    client.force_login(scenario.viewer_a)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    async def body():
        headers = [(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
        communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        await communicator.disconnect()
        refused = WebsocketCommunicator(application, f"/ws/pmu/{scenario.b1.pk}/", headers=headers)
        connected, _ = await refused.connect()
        assert not connected

    run(body)
    assert get_channel_layer() is not None
