"""Websocket for control pages: command progress and device states of the user's own devices."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from wams import live
from wams.grid.services import ROLE_ADMIN, ROLE_OPERATOR, AnyUser, has_role, visible_devices


def operator_devices(user: AnyUser) -> frozenset[int] | None:
    """Return the ids of the devices an operator may follow, or None for anyone else (sync)."""
    if not has_role(user, ROLE_OPERATOR, ROLE_ADMIN):
        return None
    return frozenset(visible_devices(user).values_list("pk", flat=True))


class ControlConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Forward EVENT_CONTROL payloads about the user's devices; refuse non-operators."""

    device_ids: frozenset[int]

    async def connect(self) -> None:
        user = self.scope.get("user")
        devices = await database_sync_to_async(operator_devices)(user) if user is not None else None
        if devices is None:
            await self.close()
            return
        self.device_ids = devices
        await self.channel_layer.group_add(live.GROUP_CONTROL, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(live.GROUP_CONTROL, self.channel_name)

    async def live_control(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if payload.get("device_id") in self.device_ids:
            await self.send_json({"type": "control", **payload})
