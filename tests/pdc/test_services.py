"""What the pdc reads from and writes to the database."""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tests.conftest import make_organisation, make_user
from tests.pdc.grid import provision
from wams.grid.models import CommunicationPath, Stream
from wams.grid.services import set_stream_enabled
from wams.pdc.models import LinkState, OutputStream, check_output_members
from wams.pdc.reports import LinkReport
from wams.pdc.services import load_output_specs, load_stream_specs, write_link_states
from wams.pdc.specs import PathSpec, order_paths

pytestmark = pytest.mark.django_db


def report(stream: Stream, **fields: object) -> LinkReport:
    values: dict[str, object] = {
        "stream_id": stream.id, "stream_name": stream.name, "state": "streaming", "path_id": None,
        "path_name": "", "rate_fps": 30.0, "latency_ms": 12.5, "frames_received": 300, "frames_bad": 1,
        "frames_late": 2, "gaps": 3, "reconnects": 0, "last_frame_at_s": 1_700_000_000.5, "last_error": "",
    }  # fmt: skip
    values.update(fields)
    return LinkReport(**values)  # type: ignore[arg-type]


def test_stream_specs_carry_paths_pmus_and_the_per_unit_base() -> None:
    stream, pmu = provision(20001, 11)
    CommunicationPath.objects.create(stream=stream, name="lte", host="127.0.0.1", port=21001, priority=2, enabled=False)
    (spec,) = load_stream_specs()
    assert [p.name for p in spec.paths] == ["fibre"]  # disabled paths are left out
    (pmu_spec,) = spec.pmus
    assert pmu_spec.id == pmu.id and pmu_spec.idcode == 11
    assert math.isclose(pmu_spec.base_voltage_v, 345_000 / math.sqrt(3))


def test_per_unit_base_follows_phasor_0_bus_then_pmu_bus_then_substation() -> None:
    from wams.grid.models import Bus, Channel

    _, on_phasor_bus = provision(20011, 21)
    other_bus = Bus.objects.create(number=9_001, substation=on_phasor_bus.substation, base_kv=138.0)
    Channel.objects.filter(pmu=on_phasor_bus, order=0).update(bus=other_bus)  # phasor 0 on a 138 kV bus
    _, on_pmu_bus = provision(20012, 22)
    Channel.objects.filter(pmu=on_pmu_bus, order=0).update(bus=None)  # falls back to the PMU's 345 kV bus
    _, on_substation = provision(20013, 23)
    Channel.objects.filter(pmu=on_substation, order=0).update(bus=None)
    type(on_substation).objects.filter(pk=on_substation.pk).update(bus=None)
    on_substation.substation.voltage_level_kv = 230.0
    on_substation.substation.save()

    bases = {p.id: p.base_voltage_v for spec in load_stream_specs() for p in spec.pmus}

    assert math.isclose(bases[on_phasor_bus.id], 138_000 / math.sqrt(3))
    assert math.isclose(bases[on_pmu_bus.id], 345_000 / math.sqrt(3))
    assert math.isclose(bases[on_substation.id], 230_000 / math.sqrt(3))


def test_shards_split_streams_by_id() -> None:
    streams = [provision(20000 + k, 30 + k)[0] for k in range(4)]
    shard0 = {s.id for s in load_stream_specs(0, 2)}
    shard1 = {s.id for s in load_stream_specs(1, 2)}
    assert shard0 | shard1 == {s.id for s in streams}
    assert not shard0 & shard1
    assert all(s % 2 == 0 for s in shard0)


@pytest.mark.parametrize(
    ("policy", "first"),
    [("priority", "a"), ("latency", "b"), ("reliability", "a"), ("cost", "b"), ("bandwidth", "c")],
)
def test_path_policies_order_paths(policy: str, first: str) -> None:
    paths = [
        PathSpec(
            1, "a", "h", 1, nominal_latency_ms=40, reliability_pct=99.99, cost_per_gb=1, bandwidth_kbps=10, priority=1
        ),
        PathSpec(
            2, "b", "h", 2, nominal_latency_ms=5, reliability_pct=99.0, cost_per_gb=0, bandwidth_kbps=20, priority=2
        ),
        PathSpec(
            3, "c", "h", 3, nominal_latency_ms=60, reliability_pct=98.0, cost_per_gb=3, bandwidth_kbps=900, priority=3
        ),
    ]
    assert order_paths(paths, policy)[0].name == first


def test_link_states_are_created_then_updated() -> None:
    stream, _ = provision(20001, 11)
    assert write_link_states([report(stream)], shard=1) == 1
    row = LinkState.objects.get(stream=stream)
    assert (row.state, row.frames_late, row.gaps, row.shard) == ("streaming", 2, 3, 1)
    assert row.last_frame_at is not None and row.last_frame_at.timestamp() == 1_700_000_000.5
    first_update = row.updated_at
    write_link_states([report(stream, state="stale", frames_received=400)])
    row.refresh_from_db()
    assert (row.state, row.frames_received) == ("stale", 400)
    assert row.updated_at > first_update


def test_link_state_update_writes_every_field_of_many_rows_and_drops_a_deleted_path() -> None:
    streams = [provision(20100 + k, 40 + k)[0] for k in range(3)]
    write_link_states([report(stream) for stream in streams])
    fibre = streams[1].paths.get(name="fibre")
    updated = [
        report(streams[0], state="stale", rate_fps=0.0, latency_ms=None, last_frame_at_s=None, last_error="x" * 400),
        report(streams[1], path_id=fibre.id, frames_received=10**12, frames_bad=7, reconnects=4),
        report(streams[2], path_id=999_999, last_frame_at_s=1_800_000_000.25),  # a path deleted meanwhile
    ]

    assert write_link_states(updated, shard=2) == 3

    rows = {row.stream_id: row for row in LinkState.objects.all()}
    first, second, third = (rows[s.id] for s in streams)
    assert (first.state, first.rate_fps, first.latency_ms, first.last_frame_at) == ("stale", 0.0, None, None)
    assert first.last_error == "x" * 300
    assert (second.path_id, second.frames_received, second.frames_bad, second.reconnects) == (fibre.id, 10**12, 7, 4)
    assert third.path_id is None and third.last_frame_at is not None
    assert third.last_frame_at.timestamp() == 1_800_000_000.25
    assert {row.shard for row in rows.values()} == {2}


def test_operator_switches_a_stream_off_and_a_viewer_may_not(
    django_user_model: object, django_capture_on_commit_callbacks: Any
) -> None:
    owner = make_organisation()
    stream, _ = provision(20001, 11, owner=owner)
    write_link_states([report(stream)])
    viewer = make_user(django_user_model, "viewer", owner)
    with pytest.raises(PermissionDenied):
        set_stream_enabled(stream.id, False, viewer)
    stranger = make_user(django_user_model, "operator", make_organisation())
    with pytest.raises(PermissionDenied):
        set_stream_enabled(stream.id, False, stranger)
    operator = make_user(django_user_model, "operator", owner)
    with django_capture_on_commit_callbacks(execute=True):  # the link shows disabled once the switch commits
        set_stream_enabled(stream.id, False, operator)
    stream.refresh_from_db()
    assert not stream.enabled
    assert LinkState.objects.get(stream=stream).state == "disabled"
    set_stream_enabled(stream.id, True)  # an application (trusted caller)
    stream.refresh_from_db()
    assert stream.enabled


def test_output_specs_describe_member_channels_from_the_model() -> None:
    _, pmu_a = provision(20001, 11)
    _, pmu_b = provision(20002, 12)
    output = OutputStream.objects.create(name="out", idcode=4000, port=4712, reporting_rate_fps=10)
    output.pmus.set([pmu_a, pmu_b])
    OutputStream.objects.create(name="off", idcode=4001, port=4713, enabled=False)
    (spec,) = load_output_specs()
    assert [p.id for p in spec.pmus] == [pmu_a.id, pmu_b.id]
    assert [(c.name, c.kind) for c in spec.pmus[0].phasors] == [("V1", "V"), ("I1", "A")]
    assert spec.pmus[0].input_rate_fps == 30


def test_output_members_must_share_a_rate_divisible_by_the_output_rate() -> None:
    _, pmu_a = provision(20001, 11)
    _, pmu_b = provision(20002, 12)
    check_output_members(10, [pmu_a, pmu_b])
    with pytest.raises(ValidationError):
        check_output_members(20, [pmu_a])
    Stream.objects.filter(pk=pmu_b.stream_id).update(reporting_rate_fps=60)
    pmu_b.refresh_from_db()
    with pytest.raises(ValidationError):
        check_output_members(10, [pmu_a, pmu_b])


def test_a_link_shows_the_same_dict_live_on_its_page_and_when_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards import pagedata
    from wams import live
    from wams.pdc import services
    from wams.pdc.reports import link_payload

    stream, _ = provision(20001, 11)
    fibre = stream.paths.get(name="fibre")
    pdc_report = report(stream, path_id=fibre.id, path_name="fibre", rate_fps=29.987, latency_ms=12.345, reconnects=2)
    live_payload = link_payload(pdc_report)  # what the pdc publishes as EVENT_LINK
    write_link_states([pdc_report])
    published: list[dict[str, object]] = []
    monkeypatch.setattr(live, "publish", lambda group, event_type, payload: published.append(payload))

    page = pagedata.link_rows({stream.id})[str(stream.id)]  # what a page loads
    services.mark_stream_switched(None, stream.id, enabled=True)  # what the service publishes

    assert page == published[0] == live_payload
    assert page["last_frame_at"] == "2023-11-14T22:13:20.500000+00:00"
    assert (page["path"], page["rate_fps"], page["latency_ms"], page["reconnects"]) == ("fibre", 29.99, 12.35, 2)
