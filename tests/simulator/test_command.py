"""`simulate_grid` end to end: grid-model fleet, a scheduled scenario, ground truth on stop."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from tests.simulator.test_services import demo_ports
from wams.grid.loaders import load_demo_topology

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_simulate_grid_serves_the_grid_fleet_and_writes_ground_truth(tmp_path, capsys):
    ports = demo_ports()
    load_demo_topology(ports)
    call_command("simulate_grid", "--duration", "4", "--truth-dir", str(tmp_path), "--scenario", "fault:bus=16@1")
    out = capsys.readouterr().out
    inventory = json.loads(out.splitlines()[0])
    assert len(inventory["streams"]) == 13
    served = {path["port"] for stream in inventory["streams"] for path in stream["paths"]}
    assert ports.pmu_port_base in served and ports.pmu_port_base + ports.path_port_offset in served
    truth = json.loads(next(tmp_path.glob("*.json")).read_text())
    kinds = [e["kind"] for e in truth["events"]]
    assert kinds[:3] == ["modulator_start", "fault_on", "fault_off"]
    assert len(truth["pmus"]) == 13 and truth["rtus"]
    assert truth["fault_records"] and (tmp_path / "comtrade").is_dir()
