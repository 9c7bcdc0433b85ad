"""Control services: every command goes through `execute_command`; schemes are armed through here.

from wams.control.services import CommandRequest, execute_command

result = execute_command(CommandRequest(action="open", device_id=7, user=request.user,
                                        reason="isolate for maintenance"))
result.state, result.detail, result.command_id
"""

from wams.control.services.checks import NO_SUCH_SELECTION, NO_SUCH_TARGET
from wams.control.services.commands import cancel_selection, execute_command, release_lapsed
from wams.control.services.schemes import (
    SchemeChange,
    arm_scheme,
    disarm_scheme,
    may_arm,
    set_dry_run,
    set_supervisory_block,
)
from wams.control.services.states import known_state, poll_device_states, read_device_state
from wams.control.services.types import CommandRequest, CommandResult

__all__ = [
    "NO_SUCH_SELECTION",
    "NO_SUCH_TARGET",
    "CommandRequest",
    "CommandResult",
    "SchemeChange",
    "arm_scheme",
    "cancel_selection",
    "disarm_scheme",
    "execute_command",
    "known_state",
    "may_arm",
    "poll_device_states",
    "read_device_state",
    "release_lapsed",
    "set_dry_run",
    "set_supervisory_block",
]
