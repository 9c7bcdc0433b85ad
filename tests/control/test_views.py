"""Control pages: operators only, organisation scoping, the select -> confirm -> execute flow, the audit log."""

from __future__ import annotations

import c104
import pytest
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from tests.conftest import make_user
from wams.control.models import AuditRecord, Command, Scheme, SchemeAction, SchemeStage

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.control.urls")]


def login(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize(("role", "status"), [("operator", 200), ("admin", 200), ("viewer", 403), ("engineer", 403)])
def test_device_panel_is_for_operators(client, grid, django_user_model, role, status):
    user = make_user(django_user_model, role, grid.org)
    login(client, user)

    assert client.get(reverse("control:device", args=[grid.breaker.pk])).status_code == status
    assert client.get(reverse("control:devices")).status_code == status


def test_panel_of_another_organisations_device_is_not_found(client, grid, django_user_model):
    login(client, make_user(django_user_model, "operator", grid.other))

    assert client.get(reverse("control:device", args=[grid.breaker.pk])).status_code == 404


def test_panel_shows_the_device_actions(client, grid, operator):
    response = login(client, operator).get(reverse("control:device", args=[grid.breaker.pk]))

    body = response.content.decode()
    assert 'data-action="open"' in body and 'data-action="close"' in body
    # The one live client (reconnects, backoff) is loaded first; control.js only handles its messages.
    assert body.index("js/wams-live.js") < body.index("js/control.js")


def test_select_then_execute_with_a_reason_opens_the_breaker(client, rtu, grid, operator):
    login(client, operator)

    selected = client.post(reverse("control:select_device", args=[grid.breaker.pk]), {"action": "open"})
    assert selected.status_code == 200 and selected.json()["state"] == "selected"
    command_id = selected.json()["command_id"]
    status = client.get(reverse("control:command", args=[command_id])).json()
    assert status["state"] == "selected" and status["expires_at"]

    no_reason = client.post(reverse("control:execute", args=[command_id]), {"reason": ""})
    assert no_reason.status_code == 409 and "reason" in no_reason.json()["detail"]

    selected = client.post(reverse("control:select_device", args=[grid.breaker.pk]), {"action": "open"})
    command_id = selected.json()["command_id"]
    executed = client.post(reverse("control:execute", args=[command_id]), {"reason": "open for works"})
    assert executed.status_code == 200
    assert executed.json()["state"] == "completed" and executed.json()["device_state"] == "open"
    assert rtu.state(1011) == c104.Double.OFF
    state = client.get(reverse("control:device_state", args=[grid.breaker.pk])).json()
    assert state["device_state"] == "open" and state["pending_command_id"] is None


def test_viewer_select_is_refused_with_403_and_logged(client, rtu, grid, django_user_model):
    login(client, make_user(django_user_model, "viewer", grid.org, username="vic"))

    response = client.post(reverse("control:select_device", args=[grid.breaker.pk]), {"action": "open"})

    assert response.status_code == 403
    record = AuditRecord.objects.get(device=grid.breaker)
    assert (record.outcome, record.actor) == ("refused", "vic")


def test_select_of_another_organisations_device_answers_404_and_is_logged(client, rtu, grid, django_user_model):
    login(client, make_user(django_user_model, "operator", grid.other, username="otto"))

    response = client.post(reverse("control:select_device", args=[grid.breaker.pk]), {"action": "open"})

    assert response.status_code == 404
    assert AuditRecord.objects.get(device=grid.breaker, actor="otto").outcome == "refused"


def test_conflicting_selection_answers_409_with_the_holder(client, rtu, grid, operator, django_user_model):
    first = login(client, operator).post(reverse("control:select_device", args=[grid.breaker.pk]), {"action": "open"})
    client.logout()
    login(client, make_user(django_user_model, "operator", grid.org))

    second = client.post(reverse("control:select_device", args=[grid.breaker.pk]), {"action": "close"})

    assert second.status_code == 409
    assert f"#{first.json()['command_id']}" in second.json()["detail"]


def test_cancel_releases_the_selection(client, rtu, grid, operator):
    login(client, operator)
    command_id = client.post(reverse("control:select_device", args=[grid.breaker.pk]), {"action": "open"}).json()[
        "command_id"
    ]

    assert client.post(reverse("control:cancel", args=[command_id])).json()["state"] == "cancelled"
    assert Command.objects.get(pk=command_id).state == "cancelled"


@pytest.mark.parametrize(("role", "status"), [("engineer", 200), ("admin", 200), ("operator", 403), ("viewer", 403)])
def test_audit_log_is_for_engineers_and_admins(client, grid, django_user_model, role, status):
    login(client, make_user(django_user_model, role, grid.org))

    assert client.get(reverse("control:audit")).status_code == status


def test_audit_log_shows_own_organisation_records_only(client, rtu, grid, operator, django_user_model):
    from wams.control.services import CommandRequest, execute_command

    stranger = make_user(django_user_model, "operator", grid.other, username="stranger")
    execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=operator, reason="mine"))
    execute_command(CommandRequest(action="open", device_id=grid.breaker.pk, user=stranger, reason="theirs"))
    AuditRecord.objects.create(actor="x", origin="operator", target="foreign device", action="open", outcome="sent")

    own = login(client, make_user(django_user_model, "engineer", grid.org)).get(reverse("control:audit"))
    body = own.content.decode()
    assert "mine" in body and "completed" in body.lower()
    assert "stranger" in body  # the refusal of a stranger on our device is ours to see
    assert "foreign device" not in body
    filtered = client.get(reverse("control:audit"), {"outcome": "refused"}).content.decode()
    assert "stranger" in filtered and "mine" not in filtered


def test_operator_arms_a_scheme_from_the_control_page(client, grid, operator):
    scheme = Scheme.objects.create(name="Shed", owner=grid.org, quantity="frequency_hz")
    SchemeStage.objects.create(scheme=scheme, number=1, threshold=59.5, duration_ms=100)
    SchemeAction.objects.create(scheme=scheme, stage=1, device=grid.load_block, action="shed")
    login(client, operator)

    response = client.post(reverse("control:scheme_change", args=[scheme.pk]), {"change": "arm", "reason": "peak"})

    assert response.status_code == 302
    scheme.refresh_from_db()
    assert scheme.armed
    assert b"Shed" in client.get(reverse("control:devices")).content


def test_control_socket_forwards_own_devices_only_and_refuses_viewers(grid, operator, django_user_model):
    from asgiref.sync import async_to_sync
    from channels.auth import AuthMiddlewareStack
    from channels.layers import get_channel_layer
    from channels.routing import URLRouter

    from wams import live
    from wams.control.routing import websocket_urlpatterns

    app = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
    viewer = make_user(django_user_model, "viewer", grid.org)

    async def connect(user):
        communicator = WebsocketCommunicator(app, "/ws/control/")
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        return communicator, connected

    async def body():
        _, connected = await connect(viewer)
        assert not connected
        communicator, connected = await connect(operator)
        assert connected
        layer = get_channel_layer()
        foreign = {"device_id": 999_999, "command_id": 1, "state": "completed", "detail": "", "device_state": "open"}
        own = {**foreign, "device_id": grid.breaker.pk}
        await layer.group_send(live.GROUP_CONTROL, {"type": live.EVENT_CONTROL, "payload": foreign})
        await layer.group_send(live.GROUP_CONTROL, {"type": live.EVENT_CONTROL, "payload": own})
        message = await communicator.receive_json_from(timeout=2)
        assert message["device_id"] == grid.breaker.pk and message["type"] == "control"
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()

    async_to_sync(body)()
