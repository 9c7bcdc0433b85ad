"""Scenario acceptance of the incidents: the deployed system against the simulator's ground truth.

Runs the system as deployed with the grid simulator (embedded `run_embedded` by default, or with
`--topology procfile` run_pdc + Celery worker + beat + daphne + simulate_grid on PostgreSQL and
Redis), starts every scenario kind with randomised parameters (bus, line, unit, size, the moment it
starts; `--draws N`, `--seed S`) through SimulatorRequest rows as the admin does, waits, reads
`manage.py incidents --since ... --json` (the checking contract) and grades each disturbance
against the ground-truth JSON the simulator writes:

- kind: exactly one incident of the scenario's kind in the disturbance's window, and no other;
- location: the incident's bus (or its line's buses) at a true bus or a neighbour in the grid
  model (grid Line rows give the adjacency); oscillations are graded on kind only;
- time to detect: detected_at - the truth's event instant (bar 500 ms for the fast kinds, 20 s for
  oscillations) and started_at - the instant;
- no chattering: fewer than 3 raise/clear cycles, counted as incidents of the same kind in the
  window and as the largest number of evidence events of one detector at one PMU.

Scenarios that leave the grid changed for good (islanding, angle separation, voltage decline) end
a session; each session is a fresh system (database, simulator). `--ambient-minutes M` runs plain
ambient data for M minutes instead and counts incidents (must be zero).

    python bench/acceptance_incidents.py --draws 1 --seed 1 --write
    python bench/acceptance_incidents.py --ambient-minutes 30 --write
    python bench/acceptance_incidents.py --topology procfile --database-url postgres://...bench... \\
        --redis-url redis://127.0.0.1:6379/7 --draws 1

Logs, truth files and a result JSON go to --log-dir (default var/acceptance/<UTC time>/).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.wams.embedded import (  # noqa: E402
    EmbeddedSite,
    _env,
    free_port,
    free_port_base,
    grid_lines,
    list_incidents,
    manage,
    prepare_isolated,
    running,
    truth_path,
)
from tests.wams.incident_grading import (  # noqa: E402
    KINDS,
    Draw,
    Grade,
    grade,
    iso,
    log_warnings,
    parse_utc,
    read_truth,
    sessions,
    simulator_lag,
    trigger,
    wait_simulator_live,
)

# --- the system under test ----------------------------------------------------------------------------


@dataclass
class System:
    """A running deployment: its environment (for manage.py), log files and truth file."""

    env: dict[str, str]
    logs: list[Path]
    truth: Path
    topology: str
    stop_log_scan: dict[str, int] = field(default_factory=dict)


def wait_healthy(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:
            if answer.status == 200:
                return
        time.sleep(1)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


@contextlib.contextmanager
def embedded_system(var_dir: Path, sim_args: str) -> Iterator[System]:
    """Start `run_embedded` with the simulator on a fresh var directory and free ports."""
    port = free_port()
    env = prepare_isolated(var_dir, port)
    with running(env, var_dir, sim_args=sim_args) as site:
        yield System(env, [site.log], truth_path(site.log), "embedded")
        check_alive(site)


def check_alive(site: EmbeddedSite) -> None:
    if site.process.poll() is not None:
        raise RuntimeError(f"run_embedded exited: {site.log.read_text()[-3000:]}")


@contextlib.contextmanager
def procfile_system(var_dir: Path, sim_args: str, database_url: str, redis_url: str) -> Iterator[System]:
    """Start run_pdc, a Celery worker, beat, daphne and simulate_grid as the Procfile does (PostgreSQL, Redis)."""
    port = free_port()
    env = _env(var_dir, port, {"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    var_dir.mkdir(parents=True, exist_ok=True)
    manage(env, "migrate", "--noinput")
    manage(env, "flush", "--noinput")
    subprocess.run([sys.executable, "-c", f"import redis; redis.Redis.from_url({redis_url!r}).flushdb()"], check=True)
    taken = {port}
    pmu, path, udp, rtu = (free_port_base(20, taken=taken) for _ in range(4))
    manage(
        env,
        "shell",
        "-c",
        f"from tests.wams.embedded import load_demo_at; load_demo_at({pmu}, {path - pmu}, {udp}, {rtu})",
    )
    py = sys.executable
    celery = [py, "-m", "celery", "-A", "wams"]
    commands = {
        "web": [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "wams.asgi:application"],
        "pdc": [py, "manage.py", "run_pdc"],
        "worker": [
            *celery,
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--without-gossip",
            "--without-mingle",
        ],
        "beat": [*celery, "beat", "--loglevel", "INFO", "--schedule", str(var_dir / "celerybeat-schedule")],
        "sim": [py, "manage.py", "simulate_grid", *shlex.split(sim_args)],
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs = []
    try:
        for name, command in commands.items():
            log = var_dir / f"{name}.log"
            logs.append(log)
            with log.open("wb") as out:
                processes[name] = subprocess.Popen(
                    command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        wait_healthy(f"http://127.0.0.1:{port}", 240)
        yield System(env, logs, truth_path(var_dir / "sim.log"), "procfile")
        dead = [n for n, p in processes.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"processes exited during the run: {dead}")
    finally:
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_streaming(system: System, timeout_s: float) -> None:
    """Wait until the pdc stores live data: the simulator's truth exists and the first minute of warm-up is over."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not system.truth.exists():
        time.sleep(1)
    if not system.truth.exists():
        raise RuntimeError("no truth file")


# --- runs ---------------------------------------------------------------------------------------------


def system_for(args: argparse.Namespace, var_dir: Path, sim_args: str) -> contextlib.AbstractContextManager[System]:
    if args.topology == "procfile":
        return procfile_system(var_dir, sim_args, args.database_url, args.redis_url)
    return embedded_system(var_dir, sim_args)


def run_session(args: argparse.Namespace, number: int, items: list[Draw], log_dir: Path) -> dict[str, Any]:
    """Run one fresh system through a list of disturbances; grade each."""
    var_dir = log_dir / f"session{number}"
    with system_for(args, var_dir, f"--truth-dir {var_dir / 'truth'}") as system:
        wait_streaming(system, 240)
        ready_s = time.time()
        print(f"session {number}: system up, warm-up {args.warmup_s:.0f} s", flush=True)
        time.sleep(args.warmup_s)
        lines = grid_lines(system.env)
        started: list[tuple[Draw, dict[str, Any]]] = []
        lags = []
        for item in items:
            waited_s = wait_simulator_live(system.logs)
            time.sleep(item.lead_s)
            wall_s = time.time()
            scenario = trigger(system.env, system.truth, item)
            print(
                f"  {item.kind} {item.params} at {scenario['utc']} (waited {waited_s:.0f} s for the simulator)",
                flush=True,
            )
            started.append((item, scenario))
            time.sleep(item.watch_s + args.gap_s)
            lags.append(simulator_lag(system.logs, wall_s - 2.0, time.time()))
        time.sleep(5)
        incidents = list_incidents(system.env, iso(ready_s - 600))
        truth = read_truth(system.truth)
        warnings = log_warnings(system.logs)
        grades = []
        starts = [parse_utc(s["utc"]) for _, s in started]
        raw = {"incidents": incidents, "started": [(d.__dict__, s) for d, s in started], "lines": lines}
        (var_dir / "raw.json").write_text(json.dumps(raw, indent=2, default=str))
        for k, (item, scenario) in enumerate(started):
            window = (starts[k] - 1.0, starts[k + 1] - 1.0 if k + 1 < len(starts) else time.time() + 1)
            try:
                grades.append(grade(item, scenario, truth, window, incidents, lines, system.env))
            except Exception as exc:  # noqa: BLE001 - a grading bug must not lose the session's data
                failed = Grade(item.kind, item.params, scenario["utc"], [], failures=[f"grading error {exc!r}"])
                grades.append(failed)
            grades[-1].simulator_lag_s = lags[k]
        before = [i for i in incidents if parse_utc(i["started_at"]) < (starts[0] - 1.0 if starts else time.time())]
    return {
        "session": number,
        "grades": [g.__dict__ | {"passed": g.passed} for g in grades],
        "incidents_before_first_scenario": before,
        "incidents": incidents,
        "warnings": warnings,
        "truth": str(system.truth),
    }


def run_ambient(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    """Run plain ambient data for the given minutes; count incidents (and oscillation events) after the warm-up."""
    var_dir = log_dir / "ambient"
    with system_for(args, var_dir, f"--truth-dir {var_dir / 'truth'}") as system:
        wait_streaming(system, 240)
        ready_s = time.time()
        time.sleep(args.warmup_s)
        start_s = time.time()
        print(f"ambient: counting from {iso(start_s)} for {args.ambient_minutes} min", flush=True)
        end_s = start_s + 60 * args.ambient_minutes
        while time.time() < end_s:
            time.sleep(min(30.0, end_s - time.time()))
        incidents = list_incidents(system.env, iso(ready_s - 600))
        code = (
            "import json; from wams.detection.models import Event; "
            "print(json.dumps(list(Event.objects.values_list('kind', flat=True))))"
        )
        events = Counter(json.loads(manage(system.env, "shell", "-c", code).strip().splitlines()[-1]))
        warnings = log_warnings(system.logs)
    counted = [i for i in incidents if parse_utc(i["started_at"]) >= start_s]
    return {
        "minutes": args.ambient_minutes,
        "counted_from": iso(start_s),
        "incidents": len(counted),
        "incident_list": counted,
        "incidents_in_warmup": [i for i in incidents if parse_utc(i["started_at"]) < start_s],
        "events_by_kind": dict(events),
        "warnings": warnings,
    }


# --- report -------------------------------------------------------------------------------------------


def fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def scenario_table(results: list[dict[str, Any]]) -> str:
    head = (
        "| session | scenario | parameters | incidents in window | located (hops) | detected after event | "
        "started after event | cycles / symptom raises | simulator lag | verdict |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for result in results:
        for g in result["grades"]:
            located = f"{g['located']} ({g['hops']})" if g["hops"] is not None else g["located"]
            detect = f"{g['detect_ms']:.0f} ms" if g["detect_ms"] is not None else "-"
            start = f"{g['start_ms']:.0f} ms" if g["start_ms"] is not None else "-"
            verdict = "pass" if g["passed"] else "FAIL: " + "; ".join(g["failures"])
            rows.append(
                f"| {result['session']} | {g['kind']} | {fmt_params(g['params'])} | {', '.join(g['incidents']) or '-'} "
                f"| {located} | {detect} | {start} | {g['cycles']} / {g['symptom_flaps']} | {g['simulator_lag_s']:.1f} s | {verdict} |"
            )
    return "\n".join(rows)


def summary_table(results: list[dict[str, Any]]) -> str:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        for g in result["grades"]:
            by_kind.setdefault(g["kind"], []).append(g)
    rows = [
        "| kind | draws | passed | right kind, one incident | located within 1 line | detect (ms, each) |",
        "|---|---|---|---|---|---|",
    ]
    for kind, grades in by_kind.items():
        one = sum(1 for g in grades if g["cycles"] == 1 and not any(f.startswith("extra") for f in g["failures"]))
        located = sum(1 for g in grades if g["hops"] is not None and g["hops"] <= 1)
        detect = ", ".join(f"{g['detect_ms']:.0f}" if g["detect_ms"] is not None else "-" for g in grades)
        rows.append(f"| {kind} | {len(grades)} | {sum(g['passed'] for g in grades)} | {one} | {located} | {detect} |")
    return "\n".join(rows)


def machine() -> str:
    load = os.getloadavg()
    return f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, Python {platform.python_version()}"


def write_benchmarks(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    with path.open("a") as out:
        out.write("\n" + text + "\n")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topology", choices=("embedded", "procfile"), default="embedded")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="procfile: dedicated, FLUSHED")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), help="procfile: its db is FLUSHED")
    parser.add_argument("--draws", type=int, default=1, help="draws of every kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--ambient-minutes", type=float, default=None, help="run ambient only, for this long")
    parser.add_argument("--warmup-s", type=float, default=45.0, help="after the simulator starts, before anything")
    parser.add_argument("--gap-s", type=float, default=15.0, help="after each scenario's watch time")
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = parser.parse_args()
    if args.topology == "procfile":
        if not args.database_url or not args.redis_url:
            parser.error("--topology procfile needs --database-url and --redis-url (both are flushed)")
        if "bench" not in args.database_url.rsplit("/", 1)[-1]:
            parser.error("the database is flushed: use a dedicated one whose name contains 'bench'")
    return args


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so that the system under test is stopped on the way out."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> None:
    args = parse_args()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = (args.log_dir or ROOT / "var" / "acceptance" / stamp).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    command = "python bench/acceptance_incidents.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    started = time.time()
    with terminate_as_interrupt():
        if args.ambient_minutes is not None:
            result: dict[str, Any] = {"ambient": run_ambient(args, log_dir)}
            a = result["ambient"]
            table = (
                "| topology | minutes counted | incidents | oscillation events | events by kind | log warnings |\n"
                "|---|---|---|---|---|---|\n"
                f"| {args.topology} | {a['minutes']} | {a['incidents']} | "
                f"{sum(v for k, v in a['events_by_kind'].items() if 'oscillation' in k)} | "
                f"{json.dumps(a['events_by_kind'])} | {json.dumps(a['warnings'])} |"
            )
            title = f"Ambient {args.ambient_minutes:g} min"
        else:
            plan = sessions(args.draws, args.kinds, args.seed)
            results = [run_session(args, n + 1, items, log_dir) for n, items in enumerate(plan)]
            result = {"sessions": results}
            extra = [
                f"session {r['session']}: {len(r['incidents_before_first_scenario'])} incidents before the first "
                f"scenario, log counts {json.dumps(r['warnings'])}"
                for r in results
            ]
            table = (
                summary_table(results) + "\n\n" + scenario_table(results) + "\n\n" + "\n".join(f"- {e}" for e in extra)
            )
            title = f"{args.draws} draw(s) of {len(args.kinds)} kinds, seed {args.seed}"
    wall_min = (time.time() - started) / 60
    text = (
        f"### Incident acceptance ({args.topology}): {title}\n\n"
        f"`{command}` on {machine()}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {wall_min:.0f} min wall.\n\n{table}\n"
    )
    (log_dir / "result.json").write_text(json.dumps(result, indent=2, default=str))
    print(text)
    print(f"details: {log_dir / 'result.json'}")
    if args.write:
        write_benchmarks(text)


if __name__ == "__main__":
    main()
