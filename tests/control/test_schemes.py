"""Countermeasure schemes end to end: arming with permission, hooks, dry run, block, commands on the wire."""

from __future__ import annotations

import time

import c104
import pytest
from django.utils import timezone

from tests.conftest import make_pmu, make_user
from wams.control.countermeasures import evaluate_snapshot, get_runtime, on_event, reset_runtime
from wams.control.models import AuditRecord, Command, Scheme, SchemeAction, SchemeStage
from wams.control.services import CommandRequest, arm_scheme, disarm_scheme, execute_command, set_supervisory_block
from wams.detection.models import Event

pytestmark = pytest.mark.django_db


def make_ufls(grid, dry_run: bool = False) -> Scheme:
    """A two-stage under-frequency scheme: 59.5 Hz for 100 ms sheds the load block, 59.0 Hz lowers the set point."""
    scheme = Scheme.objects.create(
        name="UFLS west", owner=grid.org, quantity="frequency_hz", comparison="below", dry_run=dry_run
    )
    SchemeStage.objects.create(scheme=scheme, number=1, threshold=59.5, duration_ms=100)
    SchemeStage.objects.create(scheme=scheme, number=2, threshold=59.0, duration_ms=100)
    SchemeAction.objects.create(scheme=scheme, stage=1, device=grid.load_block, action="shed")
    SchemeAction.objects.create(scheme=scheme, stage=2, device=grid.set_point, action="set_point", value=80.0)
    return scheme


def make_islanding(grid) -> Scheme:
    """Open the breaker when an angle-separation event reports 40 degrees or more."""
    scheme = Scheme.objects.create(
        name="Island west",
        owner=grid.org,
        event_kinds="angle_separation",
        event_quantity="angle_separation_deg",
        comparison="above",
        dry_run=False,
    )
    SchemeStage.objects.create(scheme=scheme, number=1, threshold=40.0)
    SchemeAction.objects.create(scheme=scheme, stage=1, device=grid.breaker, action="open")
    return scheme


def snapshot(pmu_id: int, frequency_hz: list[float | None], t0_s: float, dt_s: float = 0.1) -> dict:
    """A live snapshot payload (EVENT_SNAPSHOT contract) with one PMU's frequency."""
    return {
        "t": [t0_s + i * dt_s for i in range(len(frequency_hz))],
        "sent_at": time.time(),
        "pmus": {str(pmu_id): {"frequency_hz": frequency_hz}},
    }


def test_viewer_and_other_organisation_cannot_arm_and_refusals_are_logged(grid, django_user_model):
    scheme = make_ufls(grid)
    viewer = make_user(django_user_model, "viewer", grid.org)
    stranger = make_user(django_user_model, "operator", grid.other)

    assert not arm_scheme(scheme.pk, viewer, "try").ok
    refused = arm_scheme(scheme.pk, stranger, "try")
    assert not refused.ok and refused.detail == arm_scheme(999_999, stranger, "try").detail == "no such scheme"

    scheme.refresh_from_db()
    assert not scheme.armed
    assert list(AuditRecord.objects.filter(scheme=scheme).values_list("outcome", flat=True)) == ["refused"] * 2


def test_operator_arms_blocks_and_disarms_with_a_log_entry_each(grid, operator):
    scheme = make_ufls(grid)

    assert arm_scheme(scheme.pk, operator, "summer peak").ok
    assert set_supervisory_block(scheme.pk, operator, True, "works at Agawam").ok
    assert set_supervisory_block(scheme.pk, operator, False).ok
    assert disarm_scheme(scheme.pk, operator).ok

    scheme.refresh_from_db()
    assert not scheme.armed and not scheme.blocked and scheme.armed_by == operator
    records = AuditRecord.objects.filter(scheme=scheme).order_by("pk")
    assert [r.outcome for r in records] == ["armed", "block_set", "block_cleared", "disarmed"]
    assert records[0].reason == "summer peak" and records[0].actor == "olga"


def test_a_scheme_without_actions_cannot_be_armed(grid, operator):
    scheme = Scheme.objects.create(name="Empty", owner=grid.org, quantity="frequency_hz")

    result = arm_scheme(scheme.pk, operator)

    assert not result.ok and "no stages" in result.detail


def test_armed_scheme_sheds_load_on_low_frequency_through_execute_command(rtu, grid, operator, runtime):
    scheme = make_ufls(grid)
    assert arm_scheme(scheme.pk, operator).ok
    get_runtime().reload()
    pmu = make_pmu(substation=grid.breaker.substation)
    t0 = time.time()

    decisions = evaluate_snapshot(snapshot(pmu.pk, [59.9, 59.4, 59.4], t0))

    assert [(d.stage, d.mode) for d in decisions] == [(1, "execute")]
    assert rtu.state(1012) is False  # the load block was shed on the RTU
    command = Command.objects.get(device=grid.load_block)
    assert (command.origin, command.scheme, command.state, command.user) == ("rule", scheme, "completed", None)
    assert command.detected_at is not None and command.sent_at >= command.detected_at
    assert "UFLS west stage 1" in command.reason
    outcomes = list(AuditRecord.objects.filter(scheme=scheme).order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["armed", "sent", "completed", "triggered"]
    sent = AuditRecord.objects.get(scheme=scheme, outcome="sent")
    assert sent.actor == "scheme UFLS west" and sent.origin == "rule"

    # Stage 2 needs 59.0 Hz: a deeper dip lowers the generator set point; stage 1 does not fire again.
    decisions = evaluate_snapshot(snapshot(pmu.pk, [58.9, 58.9], t0 + 0.3))
    assert [d.stage for d in decisions] == [2]
    assert rtu.state(1013) == pytest.approx(80.0)


def test_dry_run_logs_what_it_would_do_and_sends_nothing(rtu, grid, operator, runtime):
    scheme = make_ufls(grid, dry_run=True)
    assert arm_scheme(scheme.pk, operator).ok
    get_runtime().reload()
    pmu = make_pmu(substation=grid.breaker.substation)

    decisions = evaluate_snapshot(snapshot(pmu.pk, [59.4, 59.4], time.time()))

    assert [d.mode for d in decisions] == ["dry_run"]
    assert rtu.commands_in() == []
    assert not Command.objects.exists()
    record = AuditRecord.objects.get(scheme=scheme, outcome="dry_run")
    assert record.device == grid.load_block and "would shed" in record.detail


def test_supervisory_block_suppresses_actions_and_logs_them(rtu, grid, operator, runtime):
    scheme = make_ufls(grid)
    assert arm_scheme(scheme.pk, operator).ok
    assert set_supervisory_block(scheme.pk, operator, True, "maintenance").ok
    get_runtime().reload()
    pmu = make_pmu(substation=grid.breaker.substation)

    evaluate_snapshot(snapshot(pmu.pk, [59.4, 59.4], time.time()))

    assert rtu.commands_in() == []
    assert AuditRecord.objects.filter(scheme=scheme, outcome="blocked", device=grid.load_block).count() == 1


def test_disarmed_scheme_ignores_low_frequency(rtu, grid, runtime):
    make_ufls(grid)
    get_runtime().reload()
    pmu = make_pmu(substation=grid.breaker.substation)

    assert evaluate_snapshot(snapshot(pmu.pk, [59.0, 59.0, 59.0], time.time())) == []
    assert rtu.commands_in() == []


def test_angle_separation_event_opens_the_tie_breaker(rtu, grid, operator, runtime):
    scheme = make_islanding(grid)
    assert arm_scheme(scheme.pk, operator).ok
    get_runtime().reload()
    event = Event.objects.create(
        kind="angle_separation",
        severity="alarm",
        dedup_key="sep-1",
        summary="angle separation",
        started_at=timezone.now(),
        quantities={"angle_separation_deg": 47.5},
    )

    decisions = on_event(event)

    assert [(d.stage, d.mode) for d in decisions] == [(1, "execute")]
    assert rtu.state(1011) == c104.Double.OFF
    assert Command.objects.get(device=grid.breaker).state == "completed"


def make_corridor_islanding(grid) -> tuple[Scheme, int, int]:
    """Corridor angle above 40 deg for 300 ms opens the tie breaker and runs the unit back to 500 MW."""
    from wams.grid.models import Corridor

    grid_side, pocket_side = (make_pmu(substation=grid.breaker.substation) for _ in range(2))
    corridor = Corridor.objects.create(name="tie", from_pmu=grid_side, to_pmu=pocket_side, angle_limit_deg=60.0)
    scheme = Scheme.objects.create(
        name="Island pocket", owner=grid.org, quantity="angle_separation_deg", comparison="above",
        corridor=corridor, dry_run=False, reset_ms=60_000,
    )  # fmt: skip
    SchemeStage.objects.create(scheme=scheme, number=1, threshold=40.0, duration_ms=300)
    SchemeAction.objects.create(scheme=scheme, stage=1, device=grid.breaker, action="open")
    SchemeAction.objects.create(scheme=scheme, stage=1, device=grid.set_point, action="set_point", value=500.0)
    return scheme, grid_side.pk, pocket_side.pk


def angle_snapshot(ids: tuple[int, int], separation_deg: list[float], t0_s: float, base_deg: float = 170.0) -> dict:
    """A live snapshot payload: the pocket leads the grid side by `separation_deg`, both near +-180 deg (wrapping)."""
    wrap = lambda a: (a + 180.0) % 360.0 - 180.0  # noqa: E731
    return {
        "t": [t0_s + i / 30 for i in range(len(separation_deg))],
        "sent_at": time.time(),
        "pmus": {
            str(ids[0]): {"angle_deg": [wrap(base_deg) for _ in separation_deg]},
            str(ids[1]): {"angle_deg": [wrap(base_deg + s) for s in separation_deg]},
        },
    }


def test_corridor_angle_held_above_the_stage_opens_the_tie_and_runs_the_unit_back_once(rtu, grid, operator, runtime):
    scheme, *ids = make_corridor_islanding(grid)
    assert arm_scheme(scheme.pk, operator).ok
    get_runtime().reload()
    pair = (ids[0], ids[1])
    t0 = time.time()

    # Angles near +-180 deg wrap; 39.5 deg held, then 41 deg for 200 ms (shorter than the stage): nothing.
    assert evaluate_snapshot(angle_snapshot(pair, [39.5] * 30, t0)) == []
    assert evaluate_snapshot(angle_snapshot(pair, [41.0] * 6 + [39.0] * 3, t0 + 1.0)) == []
    assert rtu.commands_in() == []
    # Held above 40 deg: the stage fires once the 300 ms are up, and once only.
    decisions = evaluate_snapshot(angle_snapshot(pair, [41.0, 42.0, 43.0, 44.0, 45.0] * 2, t0 + 2.0))
    later = evaluate_snapshot(angle_snapshot(pair, [50.0] * 30, t0 + 2.4))

    assert [(d.stage, d.mode) for d in decisions] == [(1, "execute")]
    assert decisions[0].trigger_time_s == pytest.approx(t0 + 2.0 + 9 / 30)
    assert decisions[0].quantities["angle_separation_deg"] == pytest.approx(41.0 + 9 % 5, abs=1e-6)
    assert later == []
    assert rtu.state(1011) == c104.Double.OFF
    assert rtu.state(1013) == pytest.approx(500.0)
    assert sorted(Command.objects.filter(scheme=scheme).values_list("action", "state")) == [
        ("open", "completed"), ("set_point", "completed"),
    ]  # fmt: skip


def test_rule_command_is_refused_when_the_scheme_was_disarmed_meanwhile(rtu, grid, operator):
    scheme = make_islanding(grid)

    result = execute_command(
        CommandRequest(action="open", device_id=grid.breaker.pk, origin="rule", scheme_id=scheme.pk, reason="r")
    )

    assert result.state == "refused" and "not armed" in result.detail
    assert rtu.commands_in() == []
    assert AuditRecord.objects.get(device=grid.breaker).actor == "scheme Island west"


@pytest.mark.django_db(transaction=True)
def test_background_dispatch_sends_from_the_thread_pool(rtu, django_user_model):
    from tests.control.conftest import make_grid

    grid = make_grid(rtu)
    operator = make_user(django_user_model, "operator", grid.org)
    scheme = make_islanding(grid)
    assert arm_scheme(scheme.pk, operator).ok
    runtime = reset_runtime(inline=False)
    try:
        runtime.reload()
        event = Event.objects.create(
            kind="angle_separation",
            dedup_key="sep-2",
            summary="angle separation",
            started_at=timezone.now(),
            quantities={"angle_separation_deg": 55.0},
        )
        assert len(on_event(event)) == 1  # returns at once; the command runs on the pool
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not Command.objects.filter(device=grid.breaker, state="completed"):
            time.sleep(0.05)
        assert rtu.state(1011) == c104.Double.OFF
        assert Command.objects.get(device=grid.breaker).state == "completed"
    finally:
        reset_runtime()


def test_admin_configures_a_scheme_and_arms_it_with_the_list_action(grid, admin_client_logged):
    from django.urls import reverse

    scheme = make_ufls(grid)
    change = admin_client_logged.get(reverse("admin:control_scheme_change", args=[scheme.pk]))
    assert change.status_code == 200 and b"Stage number this action belongs to" in change.content

    response = admin_client_logged.post(
        reverse("admin:control_scheme_changelist"),
        {"action": "arm", "_selected_action": [scheme.pk]},
        follow=True,
    )

    assert response.status_code == 200
    scheme.refresh_from_db()
    assert scheme.armed
    assert AuditRecord.objects.get(scheme=scheme, outcome="armed").actor == "root"


def test_aligned_snapshots_from_the_pdc_hook_fire_the_scheme(rtu, grid, operator, runtime):
    from types import SimpleNamespace

    import numpy as np

    from wams.control.countermeasures import snapshot_handler

    scheme = make_ufls(grid)
    assert arm_scheme(scheme.pk, operator).ok
    get_runtime().reload()
    pmu = make_pmu(substation=grid.breaker.substation)
    t0 = time.time()

    for k in range(5):  # 30 fps: 59.4 Hz held for 133 ms
        view = SimpleNamespace(
            timestamp_s=t0 + k / 30,
            pmu_ids=np.array([pmu.pk]),
            frequency_hz=np.array([59.4]),
            rocof_hz_per_s=np.array([0.0]),
            voltage_magnitude_pu=np.array([1.0]),
            voltage_angle_deg=np.array([0.0]),
        )
        snapshot_handler(view)

    assert rtu.state(1012) is False
    assert Command.objects.get(device=grid.load_block).state == "completed"


def test_detection_event_signal_reaches_the_schemes(rtu, grid, operator, runtime, django_capture_on_commit_callbacks):
    from wams.detection.services import raise_event

    scheme = make_islanding(grid)
    assert arm_scheme(scheme.pk, operator).ok
    get_runtime().reload()

    with django_capture_on_commit_callbacks(execute=True):
        raise_event(
            kind="angle_separation",
            severity="alarm",
            summary="separation",
            started_at=timezone.now(),
            quantities={"angle_separation_deg": 48.0},
            dedup_key="sep-signal",
        )

    assert rtu.state(1011) == c104.Double.OFF
    assert Command.objects.get(device=grid.breaker).origin == "rule"
