"""Fixtures for simulator tests."""

from __future__ import annotations

import socket

import pytest

from wams.simulator.engine.dynamics import GridDynamics


@pytest.fixture
def ieee39() -> GridDynamics:
    """Return a fresh IEEE 39-bus simulation at t = 0."""
    return GridDynamics("ieee39")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """Return a port free on 127.0.0.1 for `kind` right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
