"""`execute_command`: the one way every command reaches a device, whoever asks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from wams.control.models import AuditRecord, Command, DeviceState, Scheme
from wams.control.services import drivers
from wams.control.services.audit import Actor, publish_progress, write_audit
from wams.control.services.checks import NO_SUCH_SELECTION, NO_SUCH_TARGET, hidden_from_requester, refusal_reason
from wams.control.services.types import CommandRequest, CommandResult, Context
from wams.control.vocabulary import set_point_state
from wams.grid.models import ControllableDevice, Stream

logger = logging.getLogger(__name__)

WIRE_STATES = {
    "completed": Command.State.COMPLETED,
    "confirmed": Command.State.CONFIRMED,
    "failed": Command.State.FAILED,
    "timeout": Command.State.TIMEOUT,
}
SENT_DETAIL = "sent to the device"
# An executing command with no outcome after the device timeout plus this margin was orphaned.
ORPHAN_MARGIN_S = 30.0


def execute_command(request: CommandRequest) -> CommandResult:
    """Check, select and send one command, follow it to the device's answer, and log every step.

    Refusals (permission, interlock, a pending selection of the same target, ...) are logged too.
    Blocks until the device answers or times out for steps "execute" and "operate".
    """
    ctx = _resolve(request)
    actor = Actor(request.origin, request.user, ctx.scheme)
    if ctx.device is None and ctx.stream is None:
        return _refuse(ctx, actor, NO_SUCH_TARGET)
    if hidden_from_requester(ctx):
        # Logged with the truth for the owner's log; the requester hears what a missing target gives.
        detail = f"{ctx.target_name} belongs to another organisation (answered: {NO_SUCH_TARGET})"
        _refuse(ctx, actor, detail)
        return CommandResult(Command.State.REFUSED, NO_SUCH_TARGET)
    if ctx.command is not None and ctx.command.active_target:
        release_lapsed(ctx.command.active_target)  # an expired selection is logged as such first
        ctx.command.refresh_from_db()
    reason = refusal_reason(ctx)
    if reason:
        return _refuse(ctx, actor, reason)
    if request.step == "execute":
        assert ctx.command is not None
        return _send(ctx, actor, ctx.command)
    command = _select(ctx, actor)
    if isinstance(command, CommandResult):
        return command
    if request.step == "select":
        return CommandResult(command.state, command.detail, command.pk, command.device_state)
    return _send(ctx, actor, command)


def cancel_selection(command_id: int, user: object, reason: str = "") -> CommandResult:
    """Give up a selection before it is executed (only its owner may)."""
    command = Command.objects.select_related("device", "stream", "scheme").filter(pk=command_id).first()
    if command is None or _foreign_command(command, user):
        return CommandResult(Command.State.REFUSED, NO_SUCH_SELECTION)
    actor = Actor(command.origin, user, command.scheme)  # type: ignore[arg-type]
    own = command.user_id is not None and command.user_id == getattr(user, "pk", None)
    with transaction.atomic():
        released = own and _finish_row(command.pk, Command.State.SELECTED, Command.State.CANCELLED, "cancelled")
        outcome = AuditRecord.Outcome.CANCELLED if released else AuditRecord.Outcome.REFUSED
        detail = "selection cancelled" if released else f"command #{command.pk} is not a selection of yours"
        _audit(actor, outcome, command, reason=reason, detail=detail)
        if released:
            command.refresh_from_db()
            publish_progress(command, command.state, detail)
    return CommandResult(Command.State.CANCELLED if released else Command.State.REFUSED, detail, command.pk)


def _foreign_command(command: Command, user: object) -> bool:
    """Tell whether a command's target belongs to another organisation than the user's."""
    request = CommandRequest(user=user, step="execute", command_id=command.pk)  # type: ignore[arg-type]
    return hidden_from_requester(Context(request, device=command.device, stream=command.stream))


def release_lapsed(target_key: str | None = None) -> int:
    """Expire unexecuted selections past their time and orphaned executions; return how many."""
    now = timezone.now()
    commands = Command.objects.filter(active_target__isnull=False).select_related("device", "stream", "scheme")
    if target_key is not None:
        commands = commands.filter(active_target=target_key)
    timeout_s = settings.WAMS_CONTROL_COMMAND_TIMEOUT_MS / 1000.0 + ORPHAN_MARGIN_S
    released = 0
    for command in commands:
        if command.state == Command.State.SELECTED and command.expires_at and command.expires_at <= now:
            new_state, detail = Command.State.EXPIRED, "selection expired before execution"
        elif (
            command.state == Command.State.EXECUTING
            and command.sent_at
            and command.sent_at < now - timedelta(seconds=timeout_s)
        ):
            new_state, detail = Command.State.TIMEOUT, "no outcome was recorded (the sending process stopped?)"
        else:
            continue
        with transaction.atomic():
            if _finish_row(command.pk, command.state, new_state, detail):
                released += 1
                actor = Actor(command.origin, command.user, command.scheme)
                _audit(actor, new_state, command, detail=detail)
                command.refresh_from_db()
                publish_progress(command, new_state, detail)
    return released


# steps ---------------------------------------------------------------------------------------


def _resolve(request: CommandRequest) -> Context:
    """Look up the target, the selection being executed and the scheme."""
    ctx = Context(request)
    if request.scheme_id is not None:
        ctx.scheme = Scheme.objects.filter(pk=request.scheme_id).first()
    if request.step == "execute" and request.command_id is not None:
        ctx.command = Command.objects.select_related("device", "stream").filter(pk=request.command_id).first()
        if ctx.command is not None:
            ctx.device, ctx.stream = ctx.command.device, ctx.command.stream
        return ctx
    if request.device_id is not None:
        ctx.device = ControllableDevice.objects.select_related("line", "owner").filter(pk=request.device_id).first()
    elif request.stream_id is not None:
        ctx.stream = Stream.objects.filter(pk=request.stream_id).first()
    return ctx


def _refuse(ctx: Context, actor: Actor, reason: str) -> CommandResult:
    """Log a refusal; a selection refused at execution is released."""
    command = ctx.command
    with transaction.atomic():
        if command is not None and command.user_id == actor.user_id and command.state == Command.State.SELECTED:
            _finish_row(command.pk, Command.State.SELECTED, Command.State.REFUSED, reason)
            command.refresh_from_db()
        write_audit(
            actor,
            AuditRecord.Outcome.REFUSED,
            action=ctx.action,
            device=ctx.device,
            stream=ctx.stream,
            command=command,
            target=ctx.target_name,
            value=ctx.value,
            reason=ctx.request.reason,
            detail=reason,
        )
        publish_progress(command, Command.State.REFUSED, reason, device_id=ctx.device.pk if ctx.device else None)
    logger.info("command refused: %s %s %s: %s", actor.name, ctx.action, ctx.target_name, reason)
    return CommandResult(Command.State.REFUSED, reason, command.pk if command else None)


def _select(ctx: Context, actor: Actor) -> Command | CommandResult:
    """Reserve the target for this command; refuse if another command holds it."""
    request = ctx.request
    key = ctx.target_key
    release_lapsed(key)
    now = timezone.now()
    selecting = request.step == "select"
    expires = now + timedelta(seconds=settings.WAMS_CONTROL_SELECT_TIMEOUT_S) if selecting else None
    detected = datetime.fromtimestamp(request.detected_at_s, UTC) if request.detected_at_s else None
    try:
        # One commit before anything is sent: an "operate" request is selected and marked sent at once.
        with transaction.atomic():
            command = Command.objects.create(
                device=ctx.device,
                stream=ctx.stream,
                action=request.action,
                value=request.value,
                origin=request.origin,
                user_id=actor.user_id,
                scheme=ctx.scheme,
                reason=request.reason,
                state=Command.State.SELECTED if selecting else Command.State.EXECUTING,
                detail="selected" if selecting else SENT_DETAIL,
                active_target=key,
                created_at=now,
                expires_at=expires,
                detected_at=detected,
                sent_at=None if selecting else now,
            )
            if selecting:
                detail = f"selected until {expires:%H:%M:%S} UTC" if expires else "selected"
                _audit(actor, AuditRecord.Outcome.SELECTED, command, detail=detail)
            else:
                detail = drivers.describe_route(command)
                _audit(actor, AuditRecord.Outcome.SENT, command, detail=detail)
            publish_progress(command, command.state, detail)
    except IntegrityError:
        holder = Command.objects.filter(active_target=key).select_related("user", "scheme").first()
        return _refuse(ctx, actor, _conflict_reason(ctx, holder))
    return command


def _conflict_reason(ctx: Context, holder: Command | None) -> str:
    """Describe the command that holds the target."""
    if holder is None:
        return f"{ctx.target_name} is busy with another command"
    who = f"scheme {holder.scheme.name}" if holder.scheme else holder.user.get_username() if holder.user else "?"
    return (
        f"{ctx.target_name} is already selected by {who} for command #{holder.pk} "
        f"({holder.get_action_display().lower()}, {holder.get_state_display().lower()})"
    )


def _mark_sent(ctx: Context, actor: Actor, command: Command) -> CommandResult | None:
    """Move a selection to executing and log it; a refusal if it is no longer a pending selection."""
    with transaction.atomic():
        sent = Command.objects.filter(pk=command.pk, state=Command.State.SELECTED).update(
            state=Command.State.EXECUTING,
            sent_at=timezone.now(),
            reason=ctx.request.reason or command.reason,
            detail=SENT_DETAIL,
        )
        if not sent:
            command.refresh_from_db()
            return _refuse(ctx, actor, f"command #{command.pk} is no longer awaiting execution")
        command.refresh_from_db()
        _audit(actor, AuditRecord.Outcome.SENT, command, detail=drivers.describe_route(command))
        publish_progress(command, command.state, SENT_DETAIL)
    return None


def _send(ctx: Context, actor: Actor, command: Command) -> CommandResult:
    """Send the command to the device, wait for its answer, and record the outcome."""
    if command.state == Command.State.SELECTED:
        refused = _mark_sent(ctx, actor, command)
        if refused is not None:
            return refused
    try:
        wire = drivers.send(command)
    except Exception as exc:  # any driver failure becomes the outcome: never lost, never unlogged
        logger.exception("command #%s failed in the driver", command.pk)
        wire = drivers.WireResult("failed", f"{type(exc).__name__}: {exc}")
    return _record_outcome(actor, command, wire)


def _record_outcome(actor: Actor, command: Command, wire: drivers.WireResult) -> CommandResult:
    """Store the device's answer, release the target, log and publish."""
    state = WIRE_STATES[wire.state]
    now = timezone.now()
    device_state = wire.device_state
    if not device_state and command.action == "set_point" and state == Command.State.COMPLETED:
        device_state = set_point_state(command.value or 0.0)
    fields: dict[str, object] = {
        "state": state,
        "detail": wire.detail,
        "device_state": device_state,
        "finished_at": now,
        "active_target": None,
    }
    if wire.sent_at_s is not None:
        fields["sent_at"] = datetime.fromtimestamp(wire.sent_at_s, UTC)
    if wire.confirmed_at_s is not None:
        fields["confirmed_at"] = datetime.fromtimestamp(wire.confirmed_at_s, UTC)
    with transaction.atomic():
        Command.objects.filter(pk=command.pk).update(**fields)
        command.refresh_from_db()
        _audit(actor, state, command, detail=wire.detail)
        if command.device_id is not None and device_state:
            DeviceState.objects.update_or_create(
                device_id=command.device_id,
                defaults={"state": device_state, "value": wire.value, "updated_at": now, "source": "command"},
            )
        publish_progress(command, state, wire.detail)
    return CommandResult(state, wire.detail, command.pk, device_state)


# helpers -------------------------------------------------------------------------------------


def _finish_row(command_id: int, from_state: str, to_state: str, detail: str) -> bool:
    """Move a command out of an active state and release its target; False if it had moved already."""
    return bool(
        Command.objects.filter(pk=command_id, state=from_state).update(
            state=to_state, detail=detail, active_target=None, finished_at=timezone.now()
        )
    )


def _audit(actor: Actor, outcome: str, command: Command, *, reason: str | None = None, detail: str = "") -> None:
    """Log one step of a command."""
    write_audit(
        actor,
        outcome,
        action=command.action,
        device=command.device,
        stream=command.stream,
        command=command,
        value=command.value,
        reason=command.reason if reason is None else reason,
        detail=detail,
    )
