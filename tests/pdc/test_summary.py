"""The link count the pdc logs while its links come up (LinkSummary), instead of a line per refused connection."""

from __future__ import annotations

import logging

import pytest

from wams.pdc.link import Link
from wams.pdc.reports import LinkSummary, State, summarize_states
from wams.pdc.runner import Concentrator
from wams.pdc.sink import MemorySink
from wams.pdc.specs import PathSpec, StreamSpec

S, C, B, F = State.STREAMING, State.CONNECTING, State.BACKING_OFF, State.CONFIGURING


def test_states_on_the_way_up_count_as_connecting() -> None:
    assert summarize_states([S] * 9 + [C, B, F, B]) == ("13 links: 9 streaming, 4 connecting", False)
    assert summarize_states([S, S, State.STALE, State.DISABLED]) == ("4 links: 2 streaming, 1 stale, 1 disabled", False)
    assert summarize_states([S, State.DISABLED]) == ("2 links: 1 streaming, 1 disabled", True)
    assert summarize_states([S]) == ("1 link: 1 streaming", True)
    assert summarize_states([]) == ("", False)


def test_count_is_repeated_every_interval_while_links_come_up_then_said_once_when_all_stream() -> None:
    summary = LinkSummary(started_s=0.0, interval_s=5.0)
    said = {t: summary.update(states, t) for t, states in [
        (0.0, [C] * 13),
        (1.0, [C] * 13),
        (5.0, [B] * 13),  # backing off is still connecting: the same count, repeated
        (6.0, [S] * 9 + [C] * 4),  # a change, but the last line is a second old
        (10.0, [S] * 9 + [C] * 4),
        (11.0, [S] * 13),  # all streaming: said at once
        (20.0, [S] * 13),
        (30.0, [S] * 12 + [C]),  # a link lost later: said when the count changes
        (31.0, [S] * 12 + [B]),
        (40.0, [S] * 12 + [C]),  # no repeats once every link has streamed
        (41.0, [S] * 13),
    ]}  # fmt: skip
    assert {t: line for t, line in said.items() if line is not None} == {
        0.0: "13 links: 13 connecting",
        5.0: "13 links: 13 connecting",
        10.0: "13 links: 9 streaming, 4 connecting",
        11.0: "13 links: 13 streaming",
        30.0: "13 links: 12 streaming, 1 connecting",
        41.0: "13 links: 13 streaming",
    }


def test_a_count_that_never_settles_stops_repeating_after_the_start_up_window() -> None:
    summary = LinkSummary(started_s=0.0, interval_s=5.0, startup_s=60.0)
    said = [t for t in range(0, 200, 5) if summary.update([S, C], float(t)) is not None]
    assert said == list(range(0, 60, 5))
    assert summary.update([S, S], 200.0) == "2 links: 2 streaming"


def test_concentrator_logs_the_count_not_each_link(caplog: pytest.LogCaptureFixture) -> None:
    async def no_specs(shard: int, shards: int) -> list[object]:
        return []

    async def no_states(reports: object, shard: int) -> None:
        return None

    async def no_publish(group: str, event_type: str, payload: object) -> None:
        return None

    concentrator = Concentrator(
        sink=MemorySink(),
        load_specs=no_specs,  # type: ignore[arg-type]
        load_outputs=no_specs,  # type: ignore[arg-type]
        write_states=no_states,
        publish=no_publish,
    )
    for stream_id in (1, 2, 3):
        path = PathSpec(id=stream_id, name="fibre", host="127.0.0.1", port=1)
        spec = StreamSpec(id=stream_id, name=f"PDC {stream_id}", idcode=stream_id, reporting_rate_fps=30, paths=(path,))
        concentrator.links[stream_id] = Link(spec, concentrator.data, concentrator.options.link)
    caplog.set_level(logging.INFO, logger="wams.pdc.runner")

    concentrator.log_link_summary()
    concentrator.log_link_summary()  # within the interval: nothing new
    for link in concentrator.links.values():
        link.state = State.STREAMING
    concentrator.log_link_summary()
    concentrator.log_link_summary()

    assert [r.getMessage() for r in caplog.records if r.name == "wams.pdc.runner"] == [
        "pdc: 3 links: 3 connecting",
        "pdc: 3 links: 3 streaming",
    ]
