"""`manage.py run_topology` as tests drive it: start it, ask supervisord about its processes, stop it.

supervisord answers XML-RPC on the unix socket in the run directory (what `supervisorctl` uses), so a
test reads each process's pid and state as an operator would. Each program runs in its own process
group (its pid is the group id); after a stop the tests check that no member of any group is left.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

ROOT = Path(__file__).resolve().parents[2]


def poll(condition: Callable[[], Any], timeout_s: float, step_s: float = 0.2) -> Any:
    """Return the first truthy value of `condition()` within `timeout_s`, else None."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError, xmlrpc.client.Fault):
            value = condition()
            if value:
                return value
        if time.monotonic() > deadline:
            return None
        time.sleep(step_s)


def group_members(pgid: int) -> list[int]:
    """Return the live processes of process group `pgid` (zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def parent_of(pid: int) -> int | None:
    """Return the parent pid of `pid`, or None when it is gone."""
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


class Topology:
    """One `manage.py run_topology` process and its supervisord socket."""

    def __init__(self, run_dir: Path, log_path: Path, env: dict[str, str]) -> None:
        self.run_dir = run_dir
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.groups: set[int] = set()  # every process group supervisord started (pid of each program)

    def start(self, *args: str) -> None:
        """Start `manage.py run_topology ARGS` with its output appended to the log file."""
        # Appended (O_APPEND): supervisord and the log listener both write to this file.
        log = self.log_path.open("ab")
        command = [sys.executable, str(ROOT / "manage.py"), "run_topology", "--run-dir", str(self.run_dir), *args]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def rpc(self) -> Any:
        """Return supervisord's XML-RPC interface (`supervisor.*`)."""
        transport = SupervisorTransport(None, None, f"unix://{self.run_dir / 'supervisord.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def info(self, name: str) -> dict[str, Any]:
        """Return supervisord's view of one process (state name, pid, ...), remembering its group."""
        info: dict[str, Any] = self.rpc().getProcessInfo(name)
        if info["pid"]:
            self.groups.add(int(info["pid"]))
        return info

    def running(self, name: str, not_pid: int = 0) -> int | None:
        """Return the pid of `name` when it is RUNNING with a pid other than `not_pid`."""
        info = self.info(name)
        return int(info["pid"]) if info["statename"] == "RUNNING" and info["pid"] != not_pid else None

    def wait_running(
        self, names: list[str], timeout_s: float, not_pids: dict[str, int] | None = None
    ) -> dict[str, int]:
        """Wait until every process named is RUNNING (with a new pid where `not_pids` names the old one)."""
        not_pids = not_pids or {}
        pids: dict[str, int] = {}
        for name in names:
            pid = poll(functools.partial(self.running, name, not_pids.get(name, 0)), timeout_s)
            assert pid, f"{name} is not running: {self.log_tail()}"
            pids[name] = pid
        return pids

    def log_tail(self, n_chars: int = 6000) -> str:
        """Return the end of the topology's terminal output."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-n_chars:]
        return ""

    def stop(self, timeout_s: float = 60) -> int | None:
        """SIGTERM supervisord (as Ctrl-C or a service manager would) and return its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def kill_leftovers(self) -> list[int]:
        """SIGKILL supervisord and whatever is left of the groups it started; return the pids killed."""
        killed = []
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for pgid in self.groups:
            for pid in group_members(pgid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        return killed
