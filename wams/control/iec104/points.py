"""How each kind of controllable device maps onto IEC 60870-5-104 points.

The convention both ends of the wire follow (control station here, RTUs in the simulator):

| device kind          | command point (IOA = `ioa`)             | status point (IOA = `status_ioa`)          |
|----------------------|-----------------------------------------|--------------------------------------------|
| breaker              | C_DC_NA_1 double command, SbE           | M_DP_NA_1 double point: ON closed, OFF open |
| load_block           | C_SC_NA_1 single command, SbE           | M_SP_NA_1 single point: on = connected      |
| generator_setpoint   | C_SE_NC_1 set point, short float MW, SbE | M_ME_NC_1 short float: set point in force  |

Breaker: open = DCO OFF, close = DCO ON.  Load block: shed = SCO off, restore = SCO on.
Every command goes select (S/E = 1) then execute (S/E = 0); the RTU answers each with an activation
confirmation and the execute with an activation termination, then reports the status point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import c104

from wams.control.vocabulary import BREAKER, GENERATOR_SETPOINT, LOAD_BLOCK, set_point_state

CommandValue = bool | c104.Double | float
WireState = Literal["completed", "confirmed", "failed", "timeout"]

# A set point counts as reached when the reported value is this close (relative, and at least 0.05 MW).
SET_POINT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class PointPlan:
    """The command and status point types of one device kind."""

    command_type: c104.Type
    status_type: c104.Type
    status_tagged: c104.Type  # the same status with a CP56 time tag, accepted as well

    def status_accepts(self, point_type: c104.Type) -> bool:
        """Tell whether a status point of this type carries the device state."""
        return point_type in (self.status_type, self.status_tagged)


PLANS: dict[str, PointPlan] = {
    BREAKER: PointPlan(c104.Type.C_DC_NA_1, c104.Type.M_DP_NA_1, c104.Type.M_DP_TB_1),
    LOAD_BLOCK: PointPlan(c104.Type.C_SC_NA_1, c104.Type.M_SP_NA_1, c104.Type.M_SP_TB_1),
    GENERATOR_SETPOINT: PointPlan(c104.Type.C_SE_NC_1, c104.Type.M_ME_NC_1, c104.Type.M_ME_TF_1),
}


@dataclass(frozen=True)
class PointCommand:
    """One command to one device, addressed on the wire."""

    host: str
    port: int
    common_address: int
    ioa: int
    status_ioa: int | None
    kind: str
    action: str
    value: float | None = None


@dataclass(frozen=True)
class WireResult:
    """What the device answered: outcome, the state it reports and when each answer came (s since epoch)."""

    state: WireState
    detail: str
    device_state: str = ""
    value: float | None = None
    sent_at_s: float | None = None
    select_confirmed_at_s: float | None = None
    confirmed_at_s: float | None = None
    terminated_at_s: float | None = None
    status_at_s: float | None = None


def plan_for(kind: str) -> PointPlan:
    """Return the point types of a device kind."""
    try:
        return PLANS[kind]
    except KeyError:
        raise ValueError(f"no IEC 104 mapping for device kind {kind!r}") from None


def command_value(kind: str, action: str, value: float | None) -> CommandValue:
    """Return the command point value that carries an action."""
    if kind == BREAKER:
        return {"open": c104.Double.OFF, "close": c104.Double.ON}[action]
    if kind == LOAD_BLOCK:
        return {"shed": False, "restore": True}[action]
    if kind == GENERATOR_SETPOINT and action == "set_point" and value is not None:
        return float(value)
    raise ValueError(f"{kind} cannot {action} with value {value!r}")


def state_of(kind: str, reported: object) -> str:
    """Return the device-state text of a reported status value."""
    if kind == BREAKER:
        return {
            c104.Double.OFF: "open",
            c104.Double.ON: "closed",
            c104.Double.INTERMEDIATE: "moving",
            c104.Double.INDETERMINATE: "indeterminate",
        }.get(reported, "unknown")  # type: ignore[call-overload]
    if kind == LOAD_BLOCK:
        return "connected" if reported is True else "shed" if reported is False else "unknown"
    if kind == GENERATOR_SETPOINT and isinstance(reported, int | float):
        return set_point_state(float(reported))
    return "unknown"


def reached(kind: str, action: str, value: float | None, reported: object) -> bool:
    """Tell whether a reported status value shows the action done."""
    if kind == GENERATOR_SETPOINT:
        if value is None or not isinstance(reported, int | float) or not math.isfinite(float(reported)):
            return False
        return abs(float(reported) - value) <= max(SET_POINT_TOLERANCE * abs(value), 0.05)
    return reported == command_value(kind, action, value) if kind in PLANS else False
