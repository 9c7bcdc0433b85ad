"""execute_command over real IEC 104 sockets: select-before-execute, refusals, interlocks, outcomes, audit."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import c104
import pytest
from django.utils import timezone

from tests.conftest import make_pmu, make_user
from wams.control.iec104 import reset_pool
from wams.control.models import AuditRecord, Command, DeviceState
from wams.control.services import CommandRequest, cancel_selection, execute_command
from wams.detection.models import Event

pytestmark = pytest.mark.django_db


def outcomes(device) -> list[str]:
    """Return the audit outcomes of a device, oldest first."""
    return list(AuditRecord.objects.filter(device=device).order_by("at", "pk").values_list("outcome", flat=True))


def select(user, device, action, **fields) -> object:
    return execute_command(CommandRequest(action=action, device_id=device.pk, user=user, step="select", **fields))


def execute(user, command_id, reason="test") -> object:
    return execute_command(CommandRequest(command_id=command_id, user=user, step="execute", reason=reason))


def test_operator_opens_breaker_with_select_then_execute_on_the_wire_and_sees_it_open(rtu, grid, operator):
    selected = select(operator, grid.breaker, "open")
    assert selected.state == "selected"
    assert rtu.commands_in() == []  # selecting reserves the device; nothing is sent yet

    result = execute(operator, selected.command_id, reason="isolate line for maintenance")

    assert result.state == "completed", result.detail
    assert result.device_state == "open"
    assert rtu.state(1011) == c104.Double.OFF
    sequence = [(m.direction, m.cot, m.select, m.negative) for m in rtu.wire if m.ioa == 11]
    assert sequence[:4] == [
        ("in", "ACTIVATION", True, False),  # select (S/E = 1)
        ("out", "ACTIVATION_CON", True, False),
        ("in", "ACTIVATION", False, False),  # execute (S/E = 0)
        ("out", "ACTIVATION_CON", False, False),
    ]
    assert ("out", "ACTIVATION_TERMINATION") in [(m.direction, m.cot) for m in rtu.wire if m.ioa == 11]
    assert [m.cot for m in rtu.wire if m.ioa == 1011] == ["RETURN_INFO_REMOTE"]
    command = Command.objects.get(pk=selected.command_id)
    assert command.state == "completed" and command.active_target is None
    assert command.sent_at is not None and command.confirmed_at is not None and command.finished_at is not None
    assert command.sent_at <= command.confirmed_at <= command.finished_at
    assert outcomes(grid.breaker) == ["selected", "sent", "completed"]
    record = AuditRecord.objects.get(device=grid.breaker, outcome="completed")
    assert (record.actor, record.reason, record.action) == ("olga", "isolate line for maintenance", "open")
    assert DeviceState.objects.get(device=grid.breaker).state == "open"


def test_viewer_is_refused_nothing_is_sent_and_the_refusal_is_logged(rtu, grid, django_user_model):
    viewer = make_user(django_user_model, "viewer", grid.org, username="vera")

    result = select(viewer, grid.breaker, "open")

    assert result.state == "refused"
    assert "operator" in result.detail
    assert rtu.commands_in() == []
    record = AuditRecord.objects.get(device=grid.breaker)
    assert (record.outcome, record.actor, record.action) == ("refused", "vera", "open")
    assert record.detail == result.detail
    assert not Command.objects.filter(device=grid.breaker).exists()


def test_operator_of_another_organisation_is_refused_and_logged(rtu, grid, django_user_model):
    stranger = make_user(django_user_model, "operator", grid.other, username="sam")

    result = execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=stranger, reason="x"))

    assert result.state == "refused"
    missing = execute_command(CommandRequest(action="open", device_id=999_999, user=stranger, reason="x"))
    assert (
        (result.detail, result.command_id) == (missing.detail, missing.command_id) == ("no such device or stream", None)
    )
    assert rtu.commands_in() == []
    assert outcomes(grid.breaker) == ["refused"]
    record = AuditRecord.objects.get(device=grid.breaker)
    assert record.organisation == grid.org and "another organisation" in record.detail


def test_second_selection_is_refused_while_one_is_pending_and_allowed_after_it_ends(
    rtu, grid, operator, django_user_model
):
    colleague = make_user(django_user_model, "operator", grid.org, username="carl")
    first = select(operator, grid.breaker, "open")

    second = select(colleague, grid.breaker, "close")

    assert second.state == "refused"
    assert f"command #{first.command_id}" in second.detail and "olga" in second.detail
    assert rtu.commands_in() == []
    refusal = AuditRecord.objects.get(device=grid.breaker, outcome="refused")
    assert refusal.actor == "carl"

    assert execute(operator, first.command_id).state == "completed"
    third = select(colleague, grid.breaker, "close")
    assert third.state == "selected"
    assert outcomes(grid.breaker) == ["selected", "refused", "sent", "completed", "selected"]


def test_scheme_and_application_commands_are_refused_while_an_operator_holds_the_selection(rtu, grid, operator):
    select(operator, grid.breaker, "open")

    result = execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=operator, reason="again"))

    assert result.state == "refused" and "already selected" in result.detail


def test_only_the_selecting_operator_may_execute_and_a_reason_is_required(rtu, grid, operator, django_user_model):
    colleague = make_user(django_user_model, "operator", grid.org)
    selected = select(operator, grid.breaker, "open")

    assert execute(colleague, selected.command_id).state == "refused"
    no_reason = execute(operator, selected.command_id, reason="  ")
    assert no_reason.state == "refused" and "reason" in no_reason.detail
    assert rtu.commands_in() == []


def test_expired_selection_cannot_be_executed_and_frees_the_device(rtu, grid, operator):
    selected = select(operator, grid.breaker, "open")
    Command.objects.filter(pk=selected.command_id).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    result = execute(operator, selected.command_id)

    assert result.state == "refused" and "expired" in result.detail
    assert select(operator, grid.breaker, "close").state == "selected"
    assert "expired" in outcomes(grid.breaker)


def test_cancelled_selection_frees_the_device(rtu, grid, operator):
    selected = select(operator, grid.breaker, "open")

    assert cancel_selection(selected.command_id, operator).state == "cancelled"

    assert Command.objects.get(pk=selected.command_id).active_target is None
    assert select(operator, grid.breaker, "open").state == "selected"


def test_tagged_out_device_is_refused(rtu, grid, operator):
    grid.breaker.tagged_out = True
    grid.breaker.save()

    result = select(operator, grid.breaker, "open")

    assert result.state == "refused" and "tagged out" in result.detail
    assert outcomes(grid.breaker) == ["refused"]


def test_closing_onto_a_faulted_line_is_refused_until_the_fault_event_clears(rtu, grid, operator):
    pmu = make_pmu(substation=grid.breaker.substation, bus=grid.bus_b)
    event = Event.objects.create(
        kind="line_trip", severity="alarm", dedup_key="trip-1", summary="trip", started_at=timezone.now()
    )
    event.pmus.add(pmu)

    refused = execute_command(CommandRequest(action="close", device_id=grid.breaker.pk, user=operator, reason="x"))
    opening = execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=operator, reason="x"))

    assert refused.state == "refused" and "faulted" in refused.detail
    assert opening.state == "completed"  # opening is always allowed
    event.state = Event.State.CLEARED
    event.save()
    closing = execute_command(CommandRequest(action="close", device_id=grid.breaker.pk, user=operator, reason="x"))
    assert closing.state == "completed" and closing.device_state == "closed"


def test_fault_event_naming_the_line_in_its_quantities_blocks_closing(rtu, grid, operator):
    Event.objects.create(
        kind="fault", dedup_key="f", summary="fault", started_at=timezone.now(), quantities={"line": grid.line.name}
    )

    result = execute_command(CommandRequest(action="close", device_id=grid.breaker.pk, user=operator, reason="x"))

    assert result.state == "refused" and grid.line.name in result.detail


def test_negative_confirmation_is_reported_as_failed(rtu, grid, operator):
    rtu.mode[11] = "refuse"

    result = execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=operator, reason="x"))

    assert result.state == "failed"
    assert "refused the execution" in result.detail
    assert Command.objects.get(pk=result.command_id).active_target is None
    assert outcomes(grid.breaker) == ["sent", "failed"]


def test_device_that_never_answers_times_out(rtu, grid, operator):
    rtu.mode[11] = "silent"
    rtu.silent_s = 2.0  # longer than the 1.5 s command timeout

    result = execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=operator, reason="x"))

    assert result.state == "timeout"
    assert "no activation confirmation of the execute" in result.detail


def test_status_that_does_not_follow_the_command_times_out(rtu, grid, operator):
    rtu.mode[11] = "stuck"

    result = execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=operator, reason="x"))

    assert result.state == "timeout"
    assert "reports closed" in result.detail


def test_unreachable_rtu_fails_within_the_timeout(pool, db, django_user_model):
    from tests.control.conftest import make_grid

    grid = make_grid(None)
    operator = make_user(django_user_model, "operator", grid.org)

    result = execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=operator, reason="x"))

    assert result.state == "failed" and "unreachable" in result.detail


def test_load_block_shed_and_restore(rtu, grid, operator):
    shed = execute_command(CommandRequest(action="shed", device_id=grid.load_block.pk, user=operator, reason="x"))
    assert (shed.state, shed.device_state, rtu.state(1012)) == ("completed", "shed", False)

    restore = execute_command(CommandRequest(action="restore", device_id=grid.load_block.pk, user=operator, reason="y"))
    assert (restore.state, restore.device_state, rtu.state(1012)) == ("completed", "connected", True)


def test_set_point_command_reports_the_new_value(rtu, grid, operator):
    result = execute_command(
        CommandRequest(action="set_point", device_id=grid.set_point.pk, value=250.5, user=operator, reason="x")
    )

    assert result.state == "completed", result.detail
    assert result.device_state == "250.5 MW"
    assert rtu.state(1013) == pytest.approx(250.5, abs=1e-3)  # short float on the wire
    assert DeviceState.objects.get(device=grid.set_point).value == pytest.approx(250.5, abs=1e-3)


@pytest.mark.parametrize(
    ("device_attr", "action", "value", "expected"),
    [
        ("breaker", "shed", None, "accepts open, close"),
        ("set_point", "set_point", None, "needs a value"),
        ("set_point", "set_point", -5.0, "needs a value"),
    ],
)
def test_invalid_actions_are_refused(rtu, grid, operator, device_attr, action, value, expected):
    device = getattr(grid, device_attr)

    result = execute_command(CommandRequest(action=action, device_id=device.pk, value=value, user=operator, reason="x"))

    assert result.state == "refused" and expected in result.detail


def test_unknown_device_is_refused_and_logged(rtu, grid, operator):
    result = execute_command(CommandRequest(action="open", device_id=999_999, user=operator, reason="x"))

    assert result.state == "refused"
    assert AuditRecord.objects.get(target="device #999999").outcome == "refused"


def receive_progress(layer, channel: str, until_state: str = "completed", timeout_s: float = 5.0) -> list[tuple]:
    """Receive control messages on `channel` until one reaches `until_state`; return (command, state, device state).

    Every receive runs in one event loop: the Redis layer removes a received message from its
    backup queue in a task of the receiving loop, and a loop ended per receive (`async_to_sync`
    around each call) cancels that task, so the next receive gets the same message again.
    """
    import asyncio

    from asgiref.sync import async_to_sync

    from wams import live

    async def collect() -> list[tuple]:
        states = []
        for _ in range(10):
            message = await asyncio.wait_for(layer.receive(channel), timeout_s)
            payload = message["payload"]
            assert message["type"] == live.EVENT_CONTROL
            assert set(payload) >= {"device_id", "command_id", "state", "detail", "device_state"}
            states.append((payload["command_id"], payload["state"], payload["device_state"]))
            if payload["state"] == until_state:
                break
        return states

    return async_to_sync(collect)()


def test_progress_is_published_on_the_control_group(rtu, grid, operator, django_capture_on_commit_callbacks):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from wams import live

    layer = get_channel_layer()  # in memory, or Redis under REDIS_URL

    async def join() -> str:
        channel = await layer.new_channel()
        await layer.group_add(live.GROUP_CONTROL, channel)
        return channel

    channel = async_to_sync(join)()

    with django_capture_on_commit_callbacks(execute=True):
        result = execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=operator, reason="x"))

    states = receive_progress(layer, channel)
    assert states[-1] == (result.command_id, "completed", "open")
    assert (result.command_id, "executing", "") in states


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_an_operator_socket_follows_a_command_to_completion_over_the_redis_layer(rtu, grid, operator, settings):
    """The browser-facing path: committed progress, Redis layer, the control consumer, the socket."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL (the Redis channel layer)")
    from asgiref.sync import async_to_sync, sync_to_async
    from channels.auth import AuthMiddlewareStack
    from channels.layers import channel_layers
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from wams.control.routing import websocket_urlpatterns

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": f"wams-test-{uuid.uuid4().hex[:8]}"},
        }
    }
    channel_layers.backends.clear()
    app = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))

    async def body() -> tuple[Any, list[tuple]]:
        communicator = WebsocketCommunicator(app, "/ws/control/")
        communicator.scope["user"] = operator
        connected, _ = await communicator.connect()
        assert connected
        # Sent from a worker thread, outside any transaction, as a view or a scheme's pool thread does.
        request = CommandRequest(action="open", device_id=grid.breaker.pk, user=operator, reason="x")
        result = await sync_to_async(execute_command, thread_sensitive=False)(request)
        seen = []
        while not seen or seen[-1][1] != "completed":
            message = await communicator.receive_json_from(timeout=5)
            assert message["type"] == "control" and message["device_id"] == grid.breaker.pk
            seen.append((message["command_id"], message["state"], message["device_state"]))
        await communicator.disconnect()
        return result, seen

    try:
        result, seen = async_to_sync(body)()
    finally:
        channel_layers.backends.clear()
    assert seen[-1] == (result.command_id, "completed", "open")
    assert [state for _c, state, _d in seen].count("completed") == 1
    assert (result.command_id, "executing", "") in seen


def test_devices_added_after_the_rtu_link_opened_are_commanded_on_the_same_link(rtu, grid, operator):
    from wams.control.iec104 import get_pool

    first = execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=operator, reason="x"))
    later = execute_command(CommandRequest(action="shed", device_id=grid.load_block.pk, user=operator, reason="y"))

    assert (first.state, later.state) == ("completed", "completed")
    assert list(get_pool().links) == [("127.0.0.1", rtu.port)]


def test_rtu_with_time_tagged_status_points_is_understood(pool, db, django_user_model):
    from tests.control.conftest import Rtu, make_grid

    rtu = Rtu(time_tagged=True)
    rtu.add_breaker(11, 1011, closed=True)
    rtu.add_load_block(12, 1012)
    rtu.add_set_point(13, 1013)
    rtu.start()
    try:
        grid = make_grid(rtu)
        operator = make_user(django_user_model, "operator", grid.org)
        opened = execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=operator, reason="x"))
        shed = execute_command(CommandRequest(action="shed", device_id=grid.load_block.pk, user=operator, reason="x"))
        assert (opened.state, opened.device_state) == ("completed", "open")
        assert (shed.state, shed.device_state) == ("completed", "shed")
    finally:
        reset_pool()
        rtu.stop()
