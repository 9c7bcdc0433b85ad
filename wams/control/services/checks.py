"""Why a command must be refused: permission, the action itself, interlocks, the selection it executes."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from wams.control.models import Command, Origin
from wams.control.services.types import Context
from wams.control.vocabulary import (
    CLOSING_ACTIONS,
    SET_POINT_LIMIT_MW,
    STREAM_ACTIONS,
    actions_for_device,
)
from wams.detection.models import Event
from wams.grid.models import Line, Pmu
from wams.grid.services import ROLE_ADMIN, ROLE_OPERATOR, has_role, organisation_of, sees_everything

FAULT_EVENT_KINDS = ("fault", "line_trip")
# What a person is told about a target that does not exist or belongs to another organisation: the
# same words, so a refusal tells nothing about other organisations' devices.
NO_SUCH_TARGET = "no such device or stream"
NO_SUCH_SELECTION = "no such selection"
ACTIVE_EVENT_STATES = (Event.State.RAISED, Event.State.ACKNOWLEDGED)


def hidden_from_requester(ctx: Context) -> bool:
    """Tell whether a person asks about a target of another organisation (answered as if missing)."""
    request = ctx.request
    user = request.user
    if request.origin == Origin.RULE or user is None or not user.is_authenticated or sees_everything(user):
        return False
    organisation = organisation_of(user)
    return organisation is None or organisation.pk != ctx.owner_id


def refusal_reason(ctx: Context) -> str | None:
    """Return why the command must not go ahead, or None."""
    for check in (_permission, _action, _interlocks, _selection):
        reason = check(ctx)
        if reason:
            return reason
    return None


def _permission(ctx: Context) -> str | None:
    """Schemes act for their organisation when armed; people need a role and the target's organisation."""
    request = ctx.request
    if request.origin == Origin.RULE:
        scheme = ctx.scheme
        if scheme is None:
            return "a scheme command must name its scheme"
        if not scheme.armed:
            return f"scheme {scheme.name} is not armed"
        if scheme.blocked:
            return f"scheme {scheme.name} is under supervisory block"
        if scheme.dry_run:
            return f"scheme {scheme.name} is in dry-run mode"
        if scheme.owner_id != ctx.owner_id:
            return f"scheme {scheme.name} belongs to another organisation than {ctx.target_name}"
        return None
    user = request.user
    if user is None or not user.is_authenticated or not user.is_active:
        return "not logged in"
    if not has_role(user, ROLE_OPERATOR, ROLE_ADMIN):
        return f"user {user.get_username()} holds neither the operator nor the admin role"
    if sees_everything(user):
        return None
    organisation = organisation_of(user)
    if organisation is None or organisation.pk != ctx.owner_id:
        return f"{ctx.target_name} belongs to another organisation"
    return None


def _action(ctx: Context) -> str | None:
    """The target must accept the action, with a sensible value; people say why they send."""
    action, value = ctx.action, ctx.value
    if ctx.device is not None:
        allowed = actions_for_device(ctx.device.kind)
        if action not in allowed:
            return f"a {ctx.device.get_kind_display().lower()} accepts {', '.join(allowed)}, not {action!r}"
        if action == "set_point" and (value is None or not 0.0 <= value <= SET_POINT_LIMIT_MW):
            return f"a set point needs a value between 0 and {SET_POINT_LIMIT_MW:g} MW"
        if not ctx.device.enabled:
            return f"{ctx.device.name} is disabled"
    elif ctx.stream is not None:
        if action not in STREAM_ACTIONS:
            return f"a stream accepts {', '.join(STREAM_ACTIONS)}, not {action!r}"
        if not ctx.stream.enabled:
            return f"{ctx.stream.name} is disabled (continuous connectivity off)"
    sending = ctx.request.step != "select"
    if sending and ctx.request.origin != Origin.RULE and not ctx.request.reason.strip():
        return "give a reason for the command"
    return None


def _interlocks(ctx: Context) -> str | None:
    """No command to a tagged-out device; no closing onto a faulted line."""
    device = ctx.device
    if device is None:
        return None
    if device.tagged_out:
        return f"{device.name} is tagged out"
    if ctx.action in CLOSING_ACTIONS and device.line_id is not None:
        event = active_fault_on(device.line)  # type: ignore[arg-type]
        if event is not None:
            return f"interlock: {device.line} is faulted ({event.kind} event #{event.pk}: {event.summary})"
    return None


def _selection(ctx: Context) -> str | None:
    """Executing a selection: it must still be pending, unexpired and the caller's own."""
    command = ctx.command
    if ctx.request.step != "execute":
        return None
    if command is None:
        return "no such selection"
    if command.state != Command.State.SELECTED:
        return f"command #{command.pk} is {command.get_state_display().lower()}, not awaiting execution"
    if command.expires_at is not None and command.expires_at <= timezone.now():
        return f"the selection of command #{command.pk} has expired"
    request_user_id = ctx.request.user.pk if ctx.request.user is not None else None
    if command.user_id != request_user_id or command.origin != ctx.request.origin:
        return f"command #{command.pk} was selected by someone else"
    return None


def active_fault_on(line: Line) -> Event | None:
    """Return an active fault or line-trip event naming the line or a PMU on its buses, if any."""
    bus_pmus = Pmu.objects.filter(bus_id__in=[line.from_bus_id, line.to_bus_id]).values("pk")
    naming = Q(quantities__line_id=line.pk) | Q(quantities__line=line.name) | Q(pmus__in=bus_pmus)
    return (
        Event.objects.filter(kind__in=FAULT_EVENT_KINDS, state__in=ACTIVE_EVENT_STATES)
        .filter(naming)
        .order_by("-started_at")
        .first()
    )
