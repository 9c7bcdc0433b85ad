"""Write the append-only control log and publish progress to browsers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wams import live
from wams.control.models import AuditRecord, Command, Scheme
from wams.grid.models import ControllableDevice, Stream
from wams.grid.services import AnyUser


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user, or a scheme acting on its own."""

    origin: str
    user: AnyUser | None = None
    scheme: Scheme | None = None

    @property
    def name(self) -> str:
        """Return the name written into the log."""
        if self.scheme is not None and self.origin == "rule":
            return f"scheme {self.scheme.name}"
        if self.user is not None and self.user.is_authenticated:
            return str(self.user.get_username())
        return "anonymous"

    @property
    def user_id(self) -> int | None:
        """Return the acting user's id, None for schemes and anonymous callers."""
        if self.user is None or not self.user.is_authenticated:
            return None
        return int(self.user.pk)


def write_audit(
    actor: Actor,
    outcome: str,
    *,
    action: str,
    device: ControllableDevice | None = None,
    stream: Stream | None = None,
    scheme: Scheme | None = None,
    command: Command | None = None,
    target: str = "",
    value: float | None = None,
    reason: str = "",
    detail: str = "",
) -> AuditRecord:
    """Append one record to the control log."""
    owner_id = None
    for thing in (device, stream, scheme):
        if thing is not None:
            owner_id = thing.owner_id
            break
    return AuditRecord.objects.create(
        user_id=actor.user_id,
        actor=actor.name[:150],
        origin=actor.origin,
        organisation_id=owner_id,
        command=command,
        device=device,
        stream=stream,
        scheme=scheme if scheme is not None else actor.scheme,
        target=(target or str(device or stream or scheme or ""))[:150],
        action=action,
        value=value,
        reason=reason,
        outcome=outcome,
        detail=detail,
    )


def publish_progress(command: Command | None, state: str, detail: str = "", **extra: Any) -> None:
    """Tell browsers how a command is going (after the surrounding transaction commits)."""
    payload: dict[str, Any] = {
        "device_id": command.device_id if command is not None else extra.pop("device_id", None),
        "command_id": command.pk if command is not None else None,
        "state": state,
        "detail": detail,
        "device_state": command.device_state if command is not None else extra.pop("device_state", ""),
    }
    if command is not None:
        payload.update({"stream_id": command.stream_id, "action": command.action, "origin": command.origin})
    payload.update(extra)
    live.publish(live.GROUP_CONTROL, live.EVENT_CONTROL, payload)
