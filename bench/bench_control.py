"""Benchmark the control path: detection to command sent (and to the device's answer), p50/p99.

A countermeasure scheme is armed (live) on load blocks served by an in-process c104 RTU on loopback.
Each iteration hands the runtime one detection, through either hook:

    event     on_event(EventInput(...)): an angle-separation event of 50 deg fires a stage
    snapshot  evaluate_snapshot(payload): a live snapshot with 4 instants at 59.4 Hz (100 ms held)

and measures, on one clock, from the hook call to (a) the command handed to c104 (Command.sent_at),
(b) the select ASDU arriving at the RTU ("sent" on the wire), (c) the status the RTU reports after
executing ("done").  Commands are carried out by the runtime's thread pool through execute_command
(permission, interlocks, selection, audit) exactly as in service.

    python bench/bench_control.py --iterations 200 --actions 1 3
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python bench/bench_control.py
"""

import argparse
import os
import platform
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import c104
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.runner import DiscoverRunner  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

T0_S = 1_800_000_000.0


def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Rtu:
    """Load blocks with select-before-execute; records when each select and status happened."""

    def __init__(self, blocks: int) -> None:
        self.port = free_port()
        self.server = c104.Server(ip="127.0.0.1", port=self.port, tick_rate_ms=50, select_timeout_ms=5000)
        station = self.server.add_station(common_address=1)
        self.selects: list[float] = []
        self.done: list[float] = []
        self.lock = threading.Lock()
        self.status: dict[int, c104.Point] = {}
        for k in range(blocks):
            status = station.add_point(io_address=2001 + k, type=c104.Type.M_SP_NA_1)
            status.value = True
            command = station.add_point(
                io_address=1001 + k, type=c104.Type.C_SC_NA_1, command_mode=c104.CommandMode.SELECT_AND_EXECUTE
            )
            command.on_receive(callable=self.on_command)
            self.status[1001 + k] = status
        self.server.on_receive_raw(callable=self.on_raw)

    def on_raw(self, server: c104.Server, data: bytes) -> None:
        # I-frame, C_SC_NA_1 (45), COT activation (6), S/E bit set: a select arriving.
        if len(data) >= 16 and not data[2] & 1 and data[6] == 45 and data[8] & 0x3F == 6 and data[-1] & 0x80:
            with self.lock:
                self.selects.append(time.time())

    def on_command(
        self, point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage
    ) -> c104.ResponseState:
        status = self.status[point.io_address]
        status.value = point.value
        status.transmit(cause=c104.Cot.RETURN_INFO_REMOTE)
        with self.lock:
            self.done.append(time.time())
        return c104.ResponseState.SUCCESS

    def wait_counts(self, selects: int, done: int, timeout_s: float = 10.0) -> None:
        """Wait until so many selects and executions were seen."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.selects) >= selects and len(self.done) >= done:
                    return
            time.sleep(0.002)
        raise TimeoutError(f"RTU saw {len(self.selects)} selects, {len(self.done)} executions")


def build(rtu: Rtu, blocks: int) -> tuple[Any, list[Any]]:
    """Create an organisation with an operator and the load blocks on the RTU."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from wams.grid.models import ControllableDevice, Membership, Organisation, Substation
    from wams.grid.services import ensure_role_groups

    ensure_role_groups()
    org = Organisation.objects.create(name="Bench TSO", code="bench", role="tso")
    substation = Substation.objects.create(
        name="Bench", code="BENCH", voltage_level_kv=345, latitude=42, longitude=-71, owner=org
    )
    user = get_user_model().objects.create_user("bench-operator", password="x")
    user.groups.add(Group.objects.get(name="operator"))
    Membership.objects.create(user=user, organisation=org)
    devices = [
        ControllableDevice.objects.create(
            name=f"Bench block {k}", kind="load_block", substation=substation, owner=org, load_mw=50.0,
            iec104_host="127.0.0.1", iec104_port=rtu.port, common_address=1, ioa=1001 + k, status_ioa=2001 + k,
        )
        for k in range(blocks)
    ]  # fmt: skip
    return user, devices


def make_scheme(path: str, devices: list[Any], user: Any) -> Any:
    """Create and arm (live) a scheme fired by the hook under test, shedding the given blocks."""
    from wams.control.models import Scheme, SchemeAction, SchemeStage
    from wams.control.services import arm_scheme, set_dry_run

    owner = devices[0].owner
    name = f"Bench {path} x{len(devices)}"
    if path == "event":
        scheme = Scheme.objects.create(
            name=name, owner=owner, event_kinds="angle_separation", event_quantity="angle_separation_deg",
            comparison="above", rate_limit_count=0, reset_ms=0,
        )  # fmt: skip
        SchemeStage.objects.create(scheme=scheme, number=1, threshold=40.0)
    else:
        scheme = Scheme.objects.create(
            name=name, owner=owner, quantity="frequency_hz", comparison="below", rate_limit_count=0, reset_ms=0
        )
        SchemeStage.objects.create(scheme=scheme, number=1, threshold=59.5, duration_ms=100)
    for device in devices:
        SchemeAction.objects.create(scheme=scheme, stage=1, device=device, action="shed")
    assert set_dry_run(scheme.pk, user, False, "benchmark").ok
    assert arm_scheme(scheme.pk, user, "benchmark").ok
    return scheme


def percentiles(values_ms: list[float]) -> str:
    """Format p50 | p99 | max as table cells."""
    a = np.asarray(values_ms)
    return f"{np.percentile(a, 50):.1f} | {np.percentile(a, 99):.1f} | {a.max():.1f}"


def run(rtu: Rtu, scheme: Any, path: str, actions: int, iterations: int) -> dict[str, list[float]]:
    """Measure one hook with `actions` commands per detection."""
    from wams.control.countermeasures import reset_runtime
    from wams.control.models import Command
    from wams.control.rules import EventInput
    from wams.control.services import disarm_scheme, poll_device_states

    runtime = reset_runtime(inline=False)
    runtime.reload()
    poll_device_states()  # open the RTU link, as the periodic poll does in service
    time.sleep(0.5)
    base_selects, base_done = len(rtu.selects), len(rtu.done)
    to_sent: list[float] = []
    to_wire: list[float] = []
    to_done: list[float] = []
    for i in range(iterations):
        t_call = time.time()
        if path == "event":
            runtime.on_event(EventInput("angle_separation", "raised", f"b{i}", t_call, {"angle_separation_deg": 50.0}))
        else:
            t = T0_S + i * 10.0 + np.arange(4) / 30.0
            runtime.evaluate_snapshot({"t": t.tolist(), "pmus": {"1": {"frequency_hz": [59.4] * 4}}})
        rtu.wait_counts(base_selects + (i + 1) * actions, base_done + (i + 1) * actions)
        with rtu.lock:
            selects = rtu.selects[base_selects + i * actions : base_selects + (i + 1) * actions]
            done = rtu.done[base_done + i * actions : base_done + (i + 1) * actions]
        to_wire.append((min(selects) - t_call) * 1000)
        to_done.append((max(done) - t_call) * 1000)
        deadline = time.monotonic() + 5
        while Command.objects.filter(state__in=("selected", "executing")).exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        sent = Command.objects.filter(scheme=scheme).order_by("-pk")[:actions]
        to_sent.append(min((c.sent_at.timestamp() - t_call) * 1000 for c in sent))
        # End the episode so that the stage fires again next time.
        if path == "event":
            runtime.on_event(EventInput("angle_separation", "cleared", f"b{i}", t_call))
        else:
            runtime.evaluate_snapshot({"t": [T0_S + i * 10.0 + 1.0], "pmus": {"1": {"frequency_hz": [60.0]}}})
    runtime.shutdown()
    failures = list(Command.objects.filter(scheme=scheme).exclude(state="completed").values_list("state", "detail"))
    if failures:
        print(f"<!-- {len(failures)} command(s) not completed: {failures[:5]} -->")
    scheme.refresh_from_db()
    assert disarm_scheme(scheme.pk, scheme.armed_by, "benchmark done").ok
    return {"sent": to_sent, "wire": to_wire, "done": to_done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--actions", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--paths", nargs="+", default=["event", "snapshot"], choices=["event", "snapshot"])
    args = parser.parse_args()
    setup_test_environment()
    runner = DiscoverRunner(verbosity=0, interactive=False)
    old = runner.setup_databases()
    from wams.control.iec104 import reset_pool

    rtu = Rtu(max(args.actions))
    rtu.server.start()
    time.sleep(0.1)
    reset_pool()
    try:
        user, devices = build(rtu, max(args.actions))
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"# control bench: {platform.machine()}, {os.cpu_count()} CPUs, database {connection.vendor}, load {load}"
        )
        print("Milliseconds from the hook call to: the command handed to c104 (sent), the select ASDU at the RTU")
        print("(wire), the last command of the detection executed at the RTU (done).\n")
        print("| hook | commands | n | sent p50 | sent p99 | sent max | wire p50 | wire p99 | wire max "
              "| done p50 | done p99 | done max |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for path in args.paths:
            for actions in args.actions:
                scheme = make_scheme(path, devices[:actions], user)
                result = run(rtu, scheme, path, actions, args.iterations)
                print(f"| {path} | {actions} | {args.iterations} | {percentiles(result['sent'])} | "
                      f"{percentiles(result['wire'])} | {percentiles(result['done'])} |", flush=True)  # fmt: skip
    finally:
        reset_pool()
        rtu.server.stop()
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
