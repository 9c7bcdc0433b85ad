"""Which actions each kind of target accepts, and the state each action leaves a device in."""

from __future__ import annotations

BREAKER = "breaker"
LOAD_BLOCK = "load_block"
GENERATOR_SETPOINT = "generator_setpoint"

DEVICE_ACTIONS: dict[str, tuple[str, ...]] = {
    BREAKER: ("open", "close"),
    LOAD_BLOCK: ("shed", "restore"),
    GENERATOR_SETPOINT: ("set_point",),
}
STREAM_ACTIONS: tuple[str, ...] = ("start", "stop", "send_header", "send_cfg1", "send_cfg2", "send_cfg3")

# The device state an action should leave behind (set points report "<value> MW").
EXPECTED_STATE: dict[str, str] = {"open": "open", "close": "closed", "shed": "shed", "restore": "connected"}

# Actions that put a breaker onto a line: refused while the line is faulted.
CLOSING_ACTIONS = frozenset({"close"})

SET_POINT_LIMIT_MW = 10_000.0


def actions_for_device(kind: str) -> tuple[str, ...]:
    """Return the actions a controllable device of this kind accepts."""
    return DEVICE_ACTIONS.get(kind, ())


def device_target_key(device_id: int) -> str:
    """Return the key that marks a device as selected (one active command per key)."""
    return f"device:{device_id}"


def stream_target_key(stream_id: int) -> str:
    """Return the key that marks a stream as selected."""
    return f"stream:{stream_id}"


def set_point_state(value_mw: float) -> str:
    """Return the device-state text of a set point."""
    return f"{value_mw:.1f} MW"
