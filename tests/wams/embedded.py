"""The embedded system as `make demo` runs it: migrate, load the demo, `run_embedded` with the simulator.

Each run gets its own var directory (SQLite file, secret key) and free ports; the process runs in its
own session and is stopped with SIGTERM to its group, then SIGKILL. Helpers log in like a browser and
read the C37.118 output server like a downstream PDC, so tests see what a user or a peer would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-123456"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(var_dir: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({"SECRET_KEY": "embedded-test-secret", "WAMS_VAR_DIR": str(var_dir), "PORT": str(port)})
    env.update({"PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"})
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout_s: float = 300) -> str:
    """Run one management command to completion and return its output."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"manage.py {args[0]} failed: {done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def process_memory_kib(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM (peak) of a process in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


@dataclass
class EmbeddedSite:
    """A running embedded system."""

    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def login(self, username: str = "operator") -> urllib.request.OpenerDirector:
        """Return an opener holding the session of a logged-in user."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"{self.url}/accounts/login/", timeout=30).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, "no CSRF token on the login page"
        body = urllib.parse.urlencode(
            {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)}
        ).encode()
        request = urllib.request.Request(f"{self.url}/accounts/login/", data=body, headers={"Referer": self.url + "/"})
        answer = opener.open(request, timeout=30)
        assert "/accounts/login/" not in answer.geturl(), f"login as {username} failed"
        return opener

    def memory_kib(self) -> dict[str, int]:
        return process_memory_kib(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def prepare(var_dir: Path, port: int, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """Migrate and load the demo (accounts with PASSWORD) into a fresh var directory; return the environment."""
    var_dir.mkdir(parents=True, exist_ok=True)
    env = _env(var_dir, port, extra_env or {})
    manage(env, "migrate", "--noinput")
    manage(env, "load_demo", "--password", PASSWORD)
    return env


@contextlib.contextmanager
def running(env: dict[str, str], var_dir: Path, sim_args: str = "", ready_s: float = 240) -> Iterator[EmbeddedSite]:
    """Run `manage.py run_embedded` until the block ends; wait until it answers /healthz and streams."""
    log = var_dir / "embedded.log"
    with log.open("wb") as out:
        command = [sys.executable, str(ROOT / "manage.py"), "run_embedded"]
        if sim_args:
            command += ["--sim-args", sim_args]
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    site = EmbeddedSite(process, int(env["PORT"]), env, log)
    try:
        _wait_ready(site, ready_s)
        yield site
    finally:
        site.stop()


def _wait_ready(site: EmbeddedSite, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if site.process.poll() is not None:
            raise RuntimeError(f"run_embedded exited: {site.log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{site.url}/healthz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"run_embedded did not answer within {timeout_s} s: {site.log.read_text()[-4000:]}")


@dataclass
class OutputWatch:
    """A downstream PDC reading the pdc's C37.118 output server on a thread: arrival time of every data frame."""

    port: int
    idcode: int
    arrivals: list[float] = field(default_factory=list)  # monotonic s of each data frame's arrival
    stamps: list[float] = field(default_factory=list)  # its time stamp (s since the epoch)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        from wams.synchrophasor import PdcClient

        deadline = time.monotonic() + 120  # the pdc opens its output server once its model is loaded
        while not self._stop.is_set():
            try:
                async with PdcClient("127.0.0.1", self.port, self.idcode, on_frame=self._seen) as client:
                    await client.connect()
                    await client.start()
                    await asyncio.to_thread(self._stop.wait)
                    return
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.error = exc
                    return
                await asyncio.sleep(1.0)
            except BaseException as exc:  # noqa: BLE001 - reported to the test
                self.error = exc
                return

    def _seen(self, frame: Any) -> None:
        self.arrivals.append(time.monotonic())
        self.stamps.append(frame.timestamp_s)

    def stamps_between(self, first_s: float, last_s: float) -> list[float]:
        """Return the time stamps of the frames stamped in [first_s, last_s] (epoch s), whenever they came."""
        return [t for t in self.stamps if first_s <= t <= last_s]

    def wait_for_frames(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.arrivals) < count and time.monotonic() < deadline:
            if self.error is not None:
                raise RuntimeError(f"output client failed: {self.error!r}")
            time.sleep(0.2)
        assert len(self.arrivals) >= count, f"only {len(self.arrivals)} output frames in {timeout_s} s"

    def between(self, start: float, end: float) -> list[float]:
        return [t for t in self.arrivals if start <= t <= end]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def watch_output(port: int, idcode: int) -> Any:
    """Start an OutputWatch and return it."""
    watch = OutputWatch(port, idcode)
    watch.start()
    return watch


# --- side-by-side systems, scenarios and the incidents contract -------------------------------------


def free_port_base(count: int, low: int = 10000, high: int = 32000, taken: set[int] | None = None) -> int:
    """Return the first of `count` consecutive ports free for TCP and UDP on loopback (random start).

    The range stays below Linux's ephemeral ports (32768-60999), which the simulator's own servers and
    every client socket take at random: a range checked free there may be taken a moment later.
    """
    import random

    taken = taken if taken is not None else set()
    for _ in range(200):
        base = random.randrange(low, high - count)
        ports = range(base, base + count)
        if any(p in taken for p in ports):
            continue
        try:
            for p in ports:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as sock:
                        sock.bind(("127.0.0.1", p))
        except OSError:
            continue
        taken.update(ports)
        return base
    raise RuntimeError(f"no {count} consecutive free ports")


def load_demo_at(pmu_port_base: int, path_port_offset: int, udp_port_base: int, rtu_port_base: int) -> None:
    """Load the demo topology with its fleet on the given ports and the demo accounts (run inside the site)."""
    from wams.grid.loaders import DemoPorts, load_demo_topology
    from wams.grid.management.commands.load_demo import DEMO_ACCOUNTS, create_account
    from wams.grid.services import ensure_role_groups

    load_demo_topology(DemoPorts("127.0.0.1", pmu_port_base, path_port_offset, udp_port_base, rtu_port_base))
    ensure_role_groups()
    for username, role, org_code, superuser in DEMO_ACCOUNTS:
        create_account(username, PASSWORD, role, org_code, superuser)


def prepare_isolated(var_dir: Path, port: int, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """Like `prepare`, with the simulated fleet on free port ranges, so that systems can run side by side."""
    var_dir.mkdir(parents=True, exist_ok=True)
    env = _env(var_dir, port, extra_env or {})
    manage(env, "migrate", "--noinput")
    taken = {port}
    pmu, path, udp, rtu = (free_port_base(20, taken=taken) for _ in range(4))
    code = f"from tests.wams.embedded import load_demo_at; load_demo_at({pmu}, {path - pmu}, {udp}, {rtu})"
    manage(env, "shell", "-c", code)
    return env


def start_scenario(env: dict[str, str], name: str, params: dict[str, Any] | None = None) -> int:
    """Ask the running simulator for a scenario as the admin does (a SimulatorRequest row); return its id."""
    import json

    code = (
        "import json; from wams.simulator.models import SimulatorRequest as R; "
        f"print(R.objects.create(action='scenario', scenario={name!r}, params=json.loads({json.dumps(params or {})!r})).pk)"
    )
    return int(manage(env, "shell", "-c", code).strip().splitlines()[-1])


def list_incidents(env: dict[str, str], since_iso: str) -> list[dict[str, Any]]:
    """Return `manage.py incidents --since SINCE --json` (the checking contract), parsed."""
    import json

    return list(json.loads(manage(env, "incidents", "--since", since_iso, "--json")))


def grid_lines(env: dict[str, str]) -> list[tuple[str, int, int]]:
    """Return (name, from bus, to bus) of every Line row of the grid model."""
    import json

    code = (
        "import json; from wams.grid.models import Line; "
        "print(json.dumps([(l.name, l.from_bus.number, l.to_bus.number) "
        "for l in Line.objects.select_related('from_bus', 'to_bus')]))"
    )
    return [tuple(x) for x in json.loads(manage(env, "shell", "-c", code).strip().splitlines()[-1])]  # type: ignore[misc]


def truth_path(log: Path, timeout_s: float = 120) -> Path:
    """Return the ground-truth file the simulator named in its start line (read from the site's log)."""
    import json

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"truth"' in line:
                with contextlib.suppress(ValueError):
                    return Path(json.loads(line)["truth"])
        time.sleep(1)
    raise RuntimeError(f"the simulator named no truth file in {log}")
