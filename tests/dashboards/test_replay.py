from datetime import UTC, datetime

import numpy as np
import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from dashboards import history, replay
from tests.dashboards.conftest import make_event
from wams.routing import websocket_urlpatterns


def window(pmu_id, t, values):
    return history.PmuWindow(pmu_id, np.asarray(t, dtype=float), {"frequency_hz": np.asarray(values, dtype=float)})


def test_frames_cut_history_into_spans_on_a_common_timeline():
    windows = [window(1, [0.0, 0.1, 0.2, 0.3], [60.0, 60.1, 60.2, 60.3]), window(2, [0.1, 0.3], [59.0, 59.3])]
    frames = replay.build_frames(windows, start_s=0.0, end_s=0.4, span_s=0.2, max_instants=10)
    assert [f.clock_s for f in frames] == pytest.approx([0.2, 0.4])
    assert frames[0].payload["t"] == pytest.approx([0.0, 0.1])
    assert frames[0].payload["pmus"]["1"]["frequency_hz"] == pytest.approx([60.0, 60.1])
    assert frames[0].payload["pmus"]["2"]["frequency_hz"] == [None, 59.0]
    assert frames[1].payload["pmus"]["2"]["frequency_hz"] == [None, 59.3]


def test_frames_are_decimated_to_the_live_point_budget():
    t = np.arange(0, 1.0, 1 / 30)
    frames = replay.build_frames([window(1, t, 60 + t)], start_s=0.0, end_s=1.0, span_s=1.0, max_instants=10)
    assert len(frames) == 1
    assert len(frames[0].payload["t"]) == 10
    assert frames[0].payload["t"][-1] == pytest.approx(29 / 30)


def test_an_empty_span_still_moves_the_replay_clock():
    frames = replay.build_frames([window(1, [0.0, 0.9], [60.0, 60.0])], 0.0, 1.0, 0.25, 5)
    assert [len(f.payload["t"]) for f in frames] == [1, 0, 0, 1]


@pytest.mark.django_db(transaction=True)
def test_replay_socket_plays_an_event_window_in_the_live_format_then_ends(
    scenario, fake_history, settings, monkeypatch
):
    settings.WAMS_LIVE_RATE_HZ = 10
    monkeypatch.setattr(replay, "EVENT_PRE_S", 3.0)
    monkeypatch.setattr(replay, "EVENT_POST_S", 6.0)
    started = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
    event = make_event([scenario.a1], started_at=started, ended_at=started)
    app = URLRouter(websocket_urlpatterns)

    async def body():
        communicator = WebsocketCommunicator(
            app, f"/ws/replay/?replay=1&event={event.pk}&speed=10&pmus={scenario.a1.pk}"
        )
        communicator.scope["user"] = scenario.viewer_a
        connected, _ = await communicator.connect()
        assert connected
        hello = await communicator.receive_json_from()
        assert hello["replay"] == {"start": started.timestamp() - 3, "end": started.timestamp() + 6, "speed": 10}
        kinds, snapshots = [], []
        while True:
            message = await communicator.receive_json_from(timeout=30)
            kinds.append(message["type"])
            if message["type"] == "snapshot":
                snapshots.append(message)
            if message["type"] == "replay_end":
                break
        # 9 s at 10x: 9 frames of 1 s of measurement time, each with 10 instants.
        assert len(snapshots) == 9
        assert all(len(m["t"]) == 10 for m in snapshots)
        assert all(m["replay"]["speed"] == 10 for m in snapshots)
        assert "alarm" in kinds
        assert kinds.index("alarm") > 2  # raised when the replay clock passes the event start
        assert fake_history.calls[0]["pmus"] == [scenario.a1.pk]
        await communicator.disconnect()

    async_to_sync(body)()


@pytest.mark.django_db(transaction=True)
def test_replay_of_an_invisible_event_or_at_a_bad_speed_is_refused(scenario, fake_history):
    private = make_event([scenario.b1])
    own = make_event([scenario.a1], dedup_key="own")
    app = URLRouter(websocket_urlpatterns)

    async def body():
        for query in (f"event={private.pk}&speed=1", f"event={own.pk}&speed=11", "speed=1"):
            communicator = WebsocketCommunicator(app, f"/ws/replay/?replay=1&{query}")
            communicator.scope["user"] = scenario.viewer_a
            connected, _ = await communicator.connect()
            assert not connected, query

    async_to_sync(body)()
