"""IEC 60870-5-104 client side: one pooled c104 client, select-before-execute commands, confirmations."""

from wams.control.iec104.points import PointCommand, WireResult
from wams.control.iec104.pool import Iec104Pool, get_pool, reset_pool

__all__ = ["Iec104Pool", "PointCommand", "WireResult", "get_pool", "reset_pool"]
