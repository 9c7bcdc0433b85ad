"""Operator control pages (device panel: select, confirm with a reason, execute) and the audit log.

The views only parse input, call the control services and reply; every command attempt by a
logged-in user, refused or not, goes through `execute_command` so that it is logged.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from wams import ratelimit
from wams.control.models import Action, AuditRecord, Command, DeviceState, Origin, Scheme
from wams.control.services import (
    NO_SUCH_SELECTION,
    NO_SUCH_TARGET,
    CommandRequest,
    CommandResult,
    arm_scheme,
    cancel_selection,
    disarm_scheme,
    execute_command,
    read_device_state,
    set_supervisory_block,
)
from wams.control.vocabulary import STREAM_ACTIONS, actions_for_device
from wams.grid.models import ControllableDevice, Stream
from wams.grid.services import (
    ROLE_ADMIN,
    ROLE_ENGINEER,
    ROLE_OPERATOR,
    AnyUser,
    has_role,
    organisation_of,
    sees_everything,
    visible_devices,
)

AUDIT_PAGE_SIZE = 50
HTTP_FOR_STATE = {"refused": 409, "failed": 502, "timeout": 504}
MAX_ID = 2**63 - 1  # database keys are 64-bit: a larger id names nothing
# A missing target and another organisation's answer alike (wams.control.services.checks).
NOT_FOUND_DETAILS = {NO_SUCH_TARGET: "No such device.", NO_SUCH_SELECTION: "No such command."}

View = Callable[..., HttpResponse]


def bounded_ids(view: View) -> View:
    """Answer 404 to an id in the URL that no database key can match (instead of an overflow)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if any(name.endswith("_id") and not 0 < value <= MAX_ID for name, value in kwargs.items()):
            raise Http404("No such object.")
        return view(request, *args, **kwargs)

    return wrapped


def control_rate(view: View) -> View:
    """Limit control actions per user (WAMS_CONTROL_RATE): 429 with Retry-After beyond it."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        limited = ratelimit.hit(request, "control", ratelimit.user_key(request), settings.WAMS_CONTROL_RATE)
        if limited is not None:
            body = {"state": "refused", "detail": limited.message, "error": limited.message}
            return ratelimit.with_retry_after(JsonResponse(body, status=429), limited)
        return view(request, *args, **kwargs)

    return wrapped


def can_operate(user: AnyUser) -> bool:
    """Tell whether the user may open control panels."""
    return has_role(user, ROLE_OPERATOR, ROLE_ADMIN)


def can_read_audit(user: AnyUser) -> bool:
    """Tell whether the user may read the control log."""
    return has_role(user, ROLE_ENGINEER, ROLE_ADMIN)


def own_streams(user: AnyUser) -> Any:
    """Return the streams the user's organisation owns (every stream for superusers)."""
    if sees_everything(user):
        return Stream.objects.all()
    organisation = organisation_of(user)
    return Stream.objects.filter(owner=organisation) if organisation else Stream.objects.none()


def own_schemes(user: AnyUser) -> Any:
    """Return the schemes of the user's organisation."""
    if sees_everything(user):
        return Scheme.objects.all()
    organisation = organisation_of(user)
    return Scheme.objects.filter(owner=organisation) if organisation else Scheme.objects.none()


def _operator(request: HttpRequest) -> None:
    """Refuse anyone without the operator or admin role."""
    if not can_operate(request.user):
        raise PermissionDenied("Control panels are for operators.")


def _device(request: HttpRequest, device_id: int) -> ControllableDevice:
    """Return a device of the user's organisation or 404."""
    device = visible_devices(request.user).select_related("line", "bus").filter(pk=device_id).first()
    if device is None:
        raise Http404("No such device.")
    return device


def _result_json(result: CommandResult, **extra: Any) -> JsonResponse:
    """Reply with a command result and a status code that tells refusal, failure and timeout apart.

    A missing target and another organisation's get the same 404 and words.
    """
    if result.refused and result.detail in NOT_FOUND_DETAILS:
        return JsonResponse({"state": result.state, "detail": NOT_FOUND_DETAILS[result.detail]}, status=404)
    body = {
        "state": result.state,
        "detail": result.detail,
        "command_id": result.command_id,
        "device_state": result.device_state,
        **extra,
    }
    return JsonResponse(body, status=HTTP_FOR_STATE.get(result.state, 200))


def _float_or_none(raw: str | None) -> float | None:
    """Parse an optional number from a form."""
    if raw is None or raw.strip() == "":
        return None
    try:
        return float(raw[:100])
    except ValueError:
        return float("nan")


# pages ---------------------------------------------------------------------------------------


@login_required
@require_GET
def device_list(request: HttpRequest) -> HttpResponse:
    """List the user's devices with their states, the streams they may command and the schemes."""
    _operator(request)
    devices = visible_devices(request.user).select_related("substation")
    states = {row.device_id: row for row in DeviceState.objects.filter(device__in=devices)}
    rows = [{"device": device, "state": states.get(device.pk)} for device in devices]
    context = {
        "rows": rows,
        "streams": own_streams(request.user),
        "stream_actions": [(a, Action(a).label) for a in STREAM_ACTIONS],
        "schemes": own_schemes(request.user),
        "can_audit": can_read_audit(request.user),
    }
    return render(request, "control/device_list.html", context)


@login_required
@require_GET
@bounded_ids
def device_panel(request: HttpRequest, device_id: int) -> HttpResponse:
    """Show one device's control panel: state, select, confirm with a reason, execute."""
    _operator(request)
    device = _device(request, device_id)
    state = DeviceState.objects.filter(device=device).first()
    pending = Command.objects.filter(device=device, state__in=Command.ACTIVE_STATES).first()
    context = {
        "device": device,
        "state": state,
        "actions": [(a, Action(a).label) for a in actions_for_device(device.kind)],
        "pending": pending,
        "recent": Command.objects.filter(device=device).select_related("user", "scheme")[:15],
        "can_audit": can_read_audit(request.user),
    }
    return render(request, "control/device_panel.html", context)


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    """Show the control log to engineers and admins (their organisation's targets)."""
    if not can_read_audit(request.user):
        raise PermissionDenied("The control log is for engineers and admins.")
    records = AuditRecord.objects.select_related("command")
    if not sees_everything(request.user):
        records = records.filter(organisation=organisation_of(request.user))
    outcome = request.GET.get("outcome", "")
    origin = request.GET.get("origin", "")
    query = request.GET.get("q", "").strip()
    if outcome:
        records = records.filter(outcome=outcome)
    if origin:
        records = records.filter(origin=origin)
    if query:
        records = records.filter(Q(target__icontains=query) | Q(actor__icontains=query))
    page = Paginator(records, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "outcomes": AuditRecord.Outcome.choices,
        "origins": Origin.choices,
        "outcome": outcome,
        "origin": origin,
        "q": query,
    }
    return render(request, "control/audit_log.html", context)


# commands (JSON) -----------------------------------------------------------------------------


@login_required
@require_POST
@bounded_ids
@control_rate
def select_device(request: HttpRequest, device_id: int) -> JsonResponse:
    """Select a device for an action (checks done, nothing sent yet)."""
    result = execute_command(
        CommandRequest(
            action=request.POST.get("action", ""),
            device_id=device_id,
            value=_float_or_none(request.POST.get("value")),
            reason=request.POST.get("reason", ""),
            user=request.user,
            step="select",
        )
    )
    return _guarded(request, result, visible_devices(request.user).filter(pk=device_id).exists())


@login_required
@require_POST
@bounded_ids
@control_rate
def select_stream(request: HttpRequest, stream_id: int) -> JsonResponse:
    """Select a stream for a C37.118 command."""
    result = execute_command(
        CommandRequest(action=request.POST.get("action", ""), stream_id=stream_id, user=request.user, step="select")
    )
    return _guarded(request, result, own_streams(request.user).filter(pk=stream_id).exists())


def _guarded(request: HttpRequest, result: CommandResult, visible: bool) -> JsonResponse:
    """Hide other organisations' targets (404) and say 403 to people without the role; logged either way."""
    if not visible:
        return JsonResponse({"state": result.state, "detail": "No such device."}, status=404)
    if not can_operate(request.user):
        return JsonResponse({"state": result.state, "detail": result.detail}, status=403)
    return _result_json(result)


@login_required
@require_POST
@bounded_ids
@control_rate
def execute(request: HttpRequest, command_id: int) -> JsonResponse:
    """Execute the caller's selection with a reason; answer when the device has (or time ran out)."""
    result = execute_command(
        CommandRequest(command_id=command_id, reason=request.POST.get("reason", ""), user=request.user, step="execute")
    )
    return _result_json(result)


@login_required
@require_POST
@bounded_ids
@control_rate
def cancel(request: HttpRequest, command_id: int) -> JsonResponse:
    """Cancel the caller's selection."""
    return _result_json(cancel_selection(command_id, request.user, request.POST.get("reason", "")))


@login_required
@require_GET
@bounded_ids
def command_status(request: HttpRequest, command_id: int) -> JsonResponse:
    """Return a command's progress (for pages without a websocket)."""
    _operator(request)
    command = Command.objects.filter(pk=command_id).first()
    allowed = command is not None and (
        (command.device_id is not None and visible_devices(request.user).filter(pk=command.device_id).exists())
        or (command.stream_id is not None and own_streams(request.user).filter(pk=command.stream_id).exists())
    )
    if not allowed or command is None:
        raise Http404("No such command.")
    return JsonResponse(
        {
            "command_id": command.pk,
            "device_id": command.device_id,
            "stream_id": command.stream_id,
            "action": command.action,
            "state": command.state,
            "detail": command.detail,
            "device_state": command.device_state,
            "expires_at": command.expires_at.isoformat() if command.expires_at else None,
        }
    )


@login_required
@require_GET
@bounded_ids
def device_state(request: HttpRequest, device_id: int) -> JsonResponse:
    """Return a device's state; ?refresh=1 asks the RTU first."""
    _operator(request)
    device = _device(request, device_id)
    if request.GET.get("refresh"):
        read_device_state(device)
    row = DeviceState.objects.filter(device=device).first()
    pending = Command.objects.filter(device=device, state__in=Command.ACTIVE_STATES).first()
    return JsonResponse(
        {
            "device_id": device.pk,
            "device_state": row.state if row else "unknown",
            "updated_at": row.updated_at.isoformat() if row else None,
            "pending_command_id": pending.pk if pending else None,
            "tagged_out": device.tagged_out,
        }
    )


@login_required
@require_POST
@bounded_ids
@control_rate
def scheme_change(request: HttpRequest, scheme_id: int) -> HttpResponse:
    """Arm, disarm, block or unblock a scheme from the control page."""
    reason = request.POST.get("reason", "")
    what = request.POST.get("change", "")
    changes = {
        "arm": lambda: arm_scheme(scheme_id, request.user, reason),
        "disarm": lambda: disarm_scheme(scheme_id, request.user, reason),
        "block": lambda: set_supervisory_block(scheme_id, request.user, True, reason),
        "unblock": lambda: set_supervisory_block(scheme_id, request.user, False, reason),
    }
    if what not in changes:
        messages.error(request, f"Unknown change {what!r}.")
    else:
        result = changes[what]()
        (messages.success if result.ok else messages.error)(request, result.detail)
    return redirect("control:devices")
