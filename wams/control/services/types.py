"""What a caller asks of `execute_command` and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wams.control.models import Command, Origin, Scheme
from wams.control.vocabulary import device_target_key, stream_target_key
from wams.grid.models import ControllableDevice, Stream
from wams.grid.services import AnyUser

Step = Literal["operate", "select", "execute"]


@dataclass(frozen=True)
class CommandRequest:
    """One request to command a device or stream.

    step "select" reserves the target (checks done, nothing sent; the selection lapses after
    WAMS_CONTROL_SELECT_TIMEOUT_S), "execute" sends a selection made before (`command_id`) by the
    same user, "operate" does both at once (schemes and applications).  Operators and applications
    give a reason when sending; schemes send theirs.
    """

    action: str = ""
    device_id: int | None = None
    stream_id: int | None = None
    value: float | None = None
    reason: str = ""
    origin: str = Origin.OPERATOR
    user: AnyUser | None = None
    scheme_id: int | None = None
    step: Step = "operate"
    command_id: int | None = None
    detected_at_s: float | None = None  # when the triggering detection was made (schemes)


@dataclass(frozen=True)
class CommandResult:
    """Where a command ended: state (a Command.State value), why, and what the device reports."""

    state: str
    detail: str
    command_id: int | None = None
    device_state: str = ""

    @property
    def ok(self) -> bool:
        """Tell whether the step succeeded (selected, or done on the device)."""
        return self.state in (Command.State.SELECTED, Command.State.COMPLETED, Command.State.CONFIRMED)

    @property
    def refused(self) -> bool:
        """Tell whether the request was refused before anything was sent."""
        return self.state == Command.State.REFUSED


@dataclass
class Context:
    """A request with its target, existing selection and scheme looked up."""

    request: CommandRequest
    device: ControllableDevice | None = None
    stream: Stream | None = None
    command: Command | None = None
    scheme: Scheme | None = None

    @property
    def action(self) -> str:
        """Return the action: the selection's when executing one, else the request's."""
        return self.command.action if self.command is not None else self.request.action

    @property
    def value(self) -> float | None:
        """Return the set point value."""
        return self.command.value if self.command is not None else self.request.value

    @property
    def target_name(self) -> str:
        """Return the target's name."""
        if self.device is not None:
            return self.device.name
        if self.stream is not None:
            return self.stream.name
        if self.request.device_id is not None:
            return f"device #{self.request.device_id}"
        if self.request.stream_id is not None:
            return f"stream #{self.request.stream_id}"
        return "no target"

    @property
    def target_key(self) -> str:
        """Return the key that marks the target as selected."""
        if self.device is not None:
            return device_target_key(self.device.pk)
        assert self.stream is not None
        return stream_target_key(self.stream.pk)

    @property
    def owner_id(self) -> int | None:
        """Return the target owner's id."""
        thing = self.device or self.stream
        return thing.owner_id if thing is not None else None
