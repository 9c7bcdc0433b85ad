"""The concentrator end to end over loopback: grid model in the database, PMU servers on free ports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from tests.pdc.fleet import measurements, pmu_block, start_pmu, stream_config, wait_for
from tests.pdc.grid import provision
from wams import live
from wams.grid.models import Pmu, Stream
from wams.grid.services import set_stream_enabled
from wams.pdc.align import snap_to_grid
from wams.pdc.concentrator import DataPathOptions
from wams.pdc.hooks import register_snapshot_handler, unregister_snapshot_handler
from wams.pdc.livefeed import SnapshotView
from wams.pdc.models import LinkState
from wams.pdc.reports import LinkOptions, State
from wams.pdc.runner import Concentrator, PdcOptions
from wams.pdc.sink import MemorySink
from wams.synchrophasor import PmuData

pytestmark = pytest.mark.django_db(transaction=True)

OPTIONS = PdcOptions(
    data=DataPathOptions(wait_time_ms=100, block_seconds=1.0, live_points_hz=60),
    link=LinkOptions(connect_timeout_s=1.0, try_cfg3=False),
    model_poll_s=0.3,
    state_write_s=0.3,
)


class Published:
    """Collect what the concentrator publishes to the channel layer."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    async def __call__(self, group: str, event_type: str, payload: dict[str, Any]) -> None:
        self.events.append((group, event_type, payload))

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [payload for _, kind, payload in self.events if kind == event_type]


async def db_wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll a database condition from async code until it holds or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await sync_to_async(condition)():
            return True
        await asyncio.sleep(0.1)
    return False


async def run_with(concentrator: Concentrator, body: Callable[[], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(concentrator.run(stop))
    try:
        await body()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def test_streams_are_aligned_stored_once_published_and_their_link_states_written() -> None:
    config_a = stream_config(501, [pmu_block(501, "A")])
    config_b = stream_config(502, [pmu_block(502, "B")])
    views: list[SnapshotView] = []
    sink, published = MemorySink(), Published()

    async def scenario() -> tuple[Any, ...]:
        server_a = await start_pmu(config_a, lambda soc, fr: measurements(config_a, 1.01, -20.0))
        server_b = await start_pmu(config_b)
        stream_a, pmu_a = await sync_to_async(provision)(server_a.ports["tcp"], 501)
        _, pmu_b = await sync_to_async(provision)(server_b.ports["tcp"], 502)
        concentrator = Concentrator(options=OPTIONS, sink=sink, publish=published)
        handler = register_snapshot_handler(views.append)

        async def body() -> None:
            assert await wait_for(lambda: sum(v.present.all() for v in views) >= 45, 10)
            assert await wait_for(lambda: len(published.of(live.EVENT_LINK)) >= 2, 3)

        try:
            await run_with(concentrator, body)
        finally:
            unregister_snapshot_handler(handler)
            await server_a.stop()
            await server_b.stop()
        return stream_a, pmu_a, pmu_b

    stream_a, pmu_a, pmu_b = asyncio.run(scenario())

    # Snapshot views: both PMUs, per unit and angle of phasor 0 from the model's 345 kV base.
    complete = [v for v in views if v.present.all()]
    index_a = int(np.flatnonzero(complete[0].pmu_ids == pmu_a.id)[0])
    np.testing.assert_allclose(complete[-1].voltage_magnitude_pu[index_a], 1.01, rtol=1e-6)
    np.testing.assert_allclose(complete[-1].voltage_angle_deg[index_a], -20.0, atol=1e-4)
    stamps = np.array([v.timestamp_us for v in views])
    assert np.all(np.diff(stamps) > 0)  # in time order, each instant once

    # Every aligned sample went to the historian exactly once.
    by_pmu: dict[int, list[int]] = {}
    for block in sink.blocks:
        by_pmu.setdefault(block.pmu_id, []).extend(block.timestamp_us.tolist())
    for pmu in (pmu_a, pmu_b):
        stored = by_pmu[pmu.id]
        assert len(stored) == len(set(stored))
        seen = {v.timestamp_us for v in views if v.present[v.pmu_ids == pmu.id][0]}
        assert seen <= set(stored)
    assert sink.recent and {b.pmu_id for b in sink.recent} == {pmu_a.id, pmu_b.id}
    handed_over = {id(block) for block in sink.blocks}
    assert all(id(block) in handed_over for block in sink.recent)  # the recent window gets the stored blocks

    # Live payloads follow the contract.
    snapshots = published.of(live.EVENT_SNAPSHOT)
    assert snapshots
    payload = snapshots[-1]
    assert set(payload) == {"t", "sent_at", "pmus"}
    assert set(payload["pmus"][str(pmu_a.id)]) == {
        "frequency_hz",
        "rocof_hz_per_s",
        "magnitude_pu",
        "angle_deg",
        "stat",
    }
    assert all(len(values) == len(payload["t"]) for values in payload["pmus"][str(pmu_a.id)].values())

    # Link states in the database and on the channel layer.
    link_event = published.of(live.EVENT_LINK)[-1]
    assert set(link_event) == {
        "stream_id", "stream", "state", "path", "rate_fps", "latency_ms",
        "frames_received", "frames_bad", "frames_late", "gaps", "reconnects", "last_frame_at", "last_error",
    }  # fmt: skip
    streaming = [e for e in published.of(live.EVENT_LINK) if e["state"] == "streaming"]
    assert streaming and 20 < max(e["rate_fps"] for e in streaming) < 40
    row = LinkState.objects.get(stream=stream_a)
    assert row.frames_received >= 45 and row.frames_bad == 0
    assert row.path is not None and row.path.name == "fibre"
    assert row.last_frame_at is not None


def test_frame_past_the_wait_time_is_counted_late_stored_and_not_broadcast() -> None:
    config_a = stream_config(601, [pmu_block(601, "SLOW")])
    config_b = stream_config(602, [pmu_block(602, "FAST")])
    delayed: list[int] = []
    hold_next = False

    async def slow_source(soc: int, fraction: int) -> list[PmuData]:
        nonlocal hold_next
        if hold_next:  # one frame held back 350 ms: far past the 100 ms wait time
            hold_next = False
            delayed.append(soc * 1_000_000 + fraction)
            await asyncio.sleep(0.35)
        return measurements(config_a)

    sink, published = MemorySink(), Published()
    views: list[SnapshotView] = []

    async def scenario() -> tuple[Any, ...]:
        server_a = await start_pmu(config_a, slow_source)
        server_b = await start_pmu(config_b)
        stream_a, pmu_a = await sync_to_async(provision)(server_a.ports["tcp"], 601)
        await sync_to_async(provision)(server_b.ports["tcp"], 602)
        concentrator = Concentrator(options=OPTIONS, sink=sink, publish=published)
        handler = register_snapshot_handler(views.append)

        async def body() -> None:
            nonlocal hold_next
            assert await wait_for(lambda: sum(v.present.all() for v in views) >= 10, 10)  # both streaming
            hold_next = True
            assert await wait_for(lambda: bool(delayed), 2)
            await asyncio.sleep(1.0)

        try:
            await run_with(concentrator, body)
        finally:
            unregister_snapshot_handler(handler)
            await server_a.stop()
            await server_b.stop()
        return stream_a, pmu_a

    stream_a, pmu_a = asyncio.run(scenario())
    late_us = snap_to_grid(delayed[0], 30)  # the instant, as stored (the stamp is within 1 us of it)

    # Stored, flagged late.
    stored = {
        int(t): bool(late) for b in sink.blocks if b.pmu_id == pmu_a.id for t, late in zip(b.timestamp_us, b.late)
    }
    late_stamps = sorted(t for t, late in stored.items() if late)
    assert late_us in late_stamps
    # Besides it, only the link's very first frame may be late (its instant left before the link streamed).
    assert set(late_stamps) <= {late_us, min(stored)}
    # Counted.
    assert LinkState.objects.get(stream=stream_a).frames_late == len(late_stamps)
    # Not broadcast: the snapshot of that instant went out without it, and no live update carries it.
    (view,) = [v for v in views if v.timestamp_us == late_us]
    assert not view.present[view.pmu_ids == pmu_a.id][0]
    for payload in published.of(live.EVENT_SNAPSHOT):
        for k, t in enumerate(payload["t"]):
            if round(t * 1e6) == late_us:
                assert payload["pmus"][str(pmu_a.id)]["frequency_hz"][k] is None


def test_model_changes_apply_at_run_time_stream_off_and_on_pmu_disabled_stream_added() -> None:
    config_a = stream_config(701, [pmu_block(701, "A")])
    config_b = stream_config(702, [pmu_block(702, "B")])

    async def scenario() -> None:
        server_a = await start_pmu(config_a)
        server_b = await start_pmu(config_b)
        stream_a, pmu_a = await sync_to_async(provision)(server_a.ports["tcp"], 701)
        concentrator = Concentrator(options=OPTIONS, sink=MemorySink(), publish=Published())

        def state_of(stream: Stream) -> State | None:
            link = concentrator.links.get(stream.id)
            return None if link is None else link.state

        async def body() -> None:
            assert await wait_for(lambda: state_of(stream_a) is State.STREAMING, 5)
            await sync_to_async(set_stream_enabled)(stream_a.id, False)
            assert await wait_for(lambda: state_of(stream_a) is State.DISABLED, 3)
            assert await wait_for(lambda: server_a.streaming_peers == 0, 2)  # STOP sent, connection closed
            assert await db_wait_for(lambda: LinkState.objects.get(stream=stream_a).state == "disabled", 3)
            await sync_to_async(set_stream_enabled)(stream_a.id, True)
            assert await wait_for(lambda: state_of(stream_a) is State.STREAMING, 5)
            # A PMU disabled in the admin leaves the alignment without its link restarting.
            link = concentrator.links[stream_a.id]
            assert pmu_a.id in concentrator.data.aligner.registered
            await sync_to_async(Pmu.objects.filter(pk=pmu_a.pk).update)(enabled=False)
            assert await wait_for(lambda: pmu_a.id not in concentrator.data.aligner.registered, 3)
            assert concentrator.links[stream_a.id] is link and link.pmu_ids == [None]
            # A stream added while running.
            stream_b, _ = await sync_to_async(provision)(server_b.ports["tcp"], 702)
            assert await wait_for(lambda: state_of(stream_b) is State.STREAMING, 5)

        try:
            await run_with(concentrator, body)
        finally:
            await server_a.stop()
            await server_b.stop()

    asyncio.run(scenario())


def test_run_time_waits_no_longer_than_the_wait_time_for_a_pmu_whose_link_is_down() -> None:
    config_a = stream_config(801, [pmu_block(801, "A")])
    views: list[SnapshotView] = []

    async def scenario() -> None:
        server_a = await start_pmu(config_a)
        await sync_to_async(provision)(server_a.ports["tcp"], 801)
        await sync_to_async(provision)(1, 802)  # nobody listens on port 1: never streams
        concentrator = Concentrator(options=OPTIONS, sink=MemorySink(), publish=Published())
        handler = register_snapshot_handler(views.append)

        async def body() -> None:
            assert await wait_for(lambda: len(views) >= 30, 5)

        try:
            await run_with(concentrator, body)
        finally:
            unregister_snapshot_handler(handler)
            await server_a.stop()

    asyncio.run(scenario())
    delays = [v.snapshot.released_s - v.snapshot.first_arrival_s for v in views[5:30]]
    assert max(delays) < 0.05  # the dead link's PMU is not waited for
    assert all(len(v.pmu_ids) == 2 and v.present.sum() == 1 for v in views[5:30])


def test_run_event_loop_runs_on_the_loop_named() -> None:
    from wams.pdc.runner import run_event_loop

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_event_loop(loop_module(), "uvloop") == "uvloop"
    assert run_event_loop(loop_module(), "asyncio").startswith("asyncio.")
    never_run = loop_module()
    with pytest.raises(ValueError, match="unknown event loop"):
        run_event_loop(never_run, "tokio")
    never_run.close()


def test_event_loop_setting_defaults_to_uvloop_and_refuses_unknown_names() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from wams.env import env_event_loop

    assert env_event_loop(environ={}) == "uvloop"  # installed from requirements.txt
    assert env_event_loop(environ={"WAMS_PDC_EVENT_LOOP": "asyncio"}) == "asyncio"
    with pytest.raises(ImproperlyConfigured, match="WAMS_PDC_EVENT_LOOP"):
        env_event_loop(environ={"WAMS_PDC_EVENT_LOOP": "tokio"})
