"""execute_command against the simulator's own IEC 104 RTUs (the simulator in a subprocess, met on the wire).

The demo topology is loaded on free ports with every PMU stream disabled (only the RTUs serve);
commands change the running simulation and the RTUs report the new states.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_user
from tests.control.closedloop import SimulatorProcess, free_demo_ports
from wams.control.iec104 import get_pool, reset_pool
from wams.control.iec104.pool import COT_ACTIVATION_CON, COT_ACTIVATION_TERMINATION
from wams.control.models import AuditRecord, Command
from wams.control.services import CommandRequest, execute_command
from wams.grid.loaders import load_demo_topology
from wams.grid.models import ControllableDevice, Organisation, Stream

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


@pytest.fixture
def simulator(tmp_path: Path) -> Any:
    """The demo grid on free ports; the simulator serving its RTUs only."""
    reset_pool()
    load_demo_topology(free_demo_ports())
    Stream.objects.update(enabled=False)
    sim = SimulatorProcess(tmp_path, [], duration_s=120)
    try:
        sim.wait_ready()
        yield sim
    finally:
        reset_pool()
        sim.stop()


def outcomes(device: ControllableDevice) -> list[tuple[str, str]]:
    return list(AuditRecord.objects.filter(device=device).order_by("pk").values_list("actor", "outcome"))


def test_simulator_rtus_select_execute_refusals_and_audit(simulator, django_user_model):
    netso = Organisation.objects.get(code="netso")
    pvdso = Organisation.objects.get(code="pvdso")
    operator = make_user(django_user_model, "operator", netso, username="nina")
    colleague = make_user(django_user_model, "operator", netso, username="nick")
    viewer = make_user(django_user_model, "viewer", netso, username="vince")
    stranger = make_user(django_user_model, "operator", pvdso, username="paul")
    breaker = ControllableDevice.objects.get(name="Breaker 26-27 Scobie")
    block = ControllableDevice.objects.get(name="Load block Woburn")

    # Select-before-execute on the simulator's RTU: the line opens in the simulation, the RTU reports it.
    selected = execute_command(CommandRequest(action="open", device_id=breaker.pk, user=operator, step="select"))
    assert selected.state == "selected"
    # While nina's selection is pending, nick is refused.
    conflict = execute_command(CommandRequest(action="close", device_id=breaker.pk, user=colleague, step="select"))
    assert conflict.state == "refused" and "nina" in conflict.detail
    opened = execute_command(
        CommandRequest(command_id=selected.command_id, user=operator, step="execute", reason="open 26-27")
    )
    assert (opened.state, opened.device_state) == ("completed", "open"), opened.detail
    link = get_pool().link(breaker.iec104_host, breaker.iec104_port)
    replies = [(c.cot, c.select, c.negative) for c in link.confirmations[(breaker.common_address, breaker.ioa)]]
    assert replies[:2] == [(COT_ACTIVATION_CON, True, False), (COT_ACTIVATION_CON, False, False)]
    assert any(cot == COT_ACTIVATION_TERMINATION for cot, _, _ in replies)

    # A viewer, and an operator of another organisation, are refused; nothing reaches the RTU.
    before = len(link.confirmations[(breaker.common_address, breaker.ioa)])
    viewer_try = execute_command(CommandRequest(action="close", device_id=breaker.pk, user=viewer, reason="x"))
    stranger_try = execute_command(CommandRequest(action="close", device_id=breaker.pk, user=stranger, reason="x"))
    assert viewer_try.state == stranger_try.state == "refused"
    assert len(link.confirmations[(breaker.common_address, breaker.ioa)]) == before

    closed = execute_command(CommandRequest(action="close", device_id=breaker.pk, user=operator, reason="restore"))
    assert (closed.state, closed.device_state) == ("completed", "closed"), closed.detail
    shed = execute_command(CommandRequest(action="shed", device_id=block.pk, user=operator, reason="test shed"))
    assert (shed.state, shed.device_state) == ("completed", "shed"), shed.detail

    assert outcomes(breaker) == [
        ("nina", "selected"),
        ("nick", "refused"),
        ("nina", "sent"),
        ("nina", "completed"),
        ("vince", "refused"),
        ("paul", "refused"),
        ("nina", "sent"),
        ("nina", "completed"),
    ]
    assert Command.objects.filter(device=breaker, state="completed").count() == 2
