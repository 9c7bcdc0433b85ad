"""Scenario draws and their grading against the simulator's ground truth (incident acceptance).

Shared by `bench/acceptance_incidents.py` and the live incident tests: randomised parameters for
every scenario kind, starting a scenario on a running site, and grading the incidents the site lists
(`manage.py incidents --json`, the checking contract) against the truth JSON: kind, location at a
true bus or a neighbour in the grid model, time to detect, no extra incident, no chattering.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.wams.embedded import manage, start_scenario

FAST_BAR_S = 0.5
OSCILLATION_BAR_S = 20.0
CHATTER_LIMIT = 3
OSCILLATION_KINDS = {"oscillation", "forced_oscillation"}
SLOW_KINDS = {"voltage_decline"}  # a ramp: graded on kind and place, time reported only
LASTING = {"islanding", "angle_separation", "voltage_decline"}  # end a session
KINDS = (
    "fault",
    "line_trip",
    "generator_trip",
    "load_step",
    "forced_oscillation",
    "oscillation",
    "voltage_decline",
    "islanding",
    "angle_separation",
)
# Case data of the IEEE 39-bus case (ANDES ieee39_full): where each element sits.
GENERATOR_BUS = {f"GENROU_{i}": b for i, b in enumerate((30, 31, 32, 33, 34, 35, 36, 37, 38, 39), start=1)}
LOAD_BUS = {
    "PQ_1": 3, "PQ_2": 4, "PQ_3": 7, "PQ_4": 8, "PQ_5": 12, "PQ_6": 15, "PQ_7": 16, "PQ_8": 18, "PQ_9": 20,
    "PQ_10": 21, "PQ_11": 23, "PQ_12": 24, "PQ_13": 25, "PQ_14": 26, "PQ_15": 27, "PQ_16": 28, "PQ_17": 29,
}  # fmt: skip
CASE_LINES = {
    "Line_1": (1, 2), "Line_5": (3, 4), "Line_6": (3, 18), "Line_8": (4, 14), "Line_9": (5, 6),
    "Line_13": (7, 8), "Line_19": (14, 15), "Line_21": (16, 17), "Line_23": (16, 21), "Line_25": (17, 18),
    "Line_27": (21, 22), "Line_29": (23, 24), "Line_32": (26, 28), "Line_33": (26, 29),
}  # fmt: skip
OTHER_LINES = {"Line_18": (13, 14)}  # lines no draw opens, named by scenarios (the islanding ties)
MESHED_LINES = [n for n in CASE_LINES if n not in ("Line_32", "Line_33")]  # opening one leaves no island
FAULT_BUSES = [3, 4, 14, 15, 16, 17, 21, 23, 24, 26]
AREA2_BUSES = {14, 15, 16, 19, 20, 21, 22, 23, 24, 28, 29}  # ANDES area 2: the default voltage decline's loads


@dataclass
class Draw:
    """One disturbance: scenario kind, parameters, how long to watch it, the wait before it starts."""

    kind: str
    params: dict[str, Any]
    watch_s: float
    lead_s: float


def draw(kind: str, rng: random.Random) -> Draw:
    """Return randomised parameters for one scenario of `kind` (within what the 39-bus case survives)."""
    lead_s = round(rng.uniform(3.0, 9.0), 2)
    if kind == "fault":
        return Draw(kind, {"bus": rng.choice(FAULT_BUSES), "duration_s": round(rng.uniform(0.05, 0.15), 3)}, 20, lead_s)
    if kind == "line_trip":
        return Draw(kind, {"line": rng.choice(MESHED_LINES)}, 20, lead_s)
    if kind == "generator_trip":
        return Draw(
            kind, {"generator": rng.choice(["GENROU_3", "GENROU_4", "GENROU_5", "GENROU_6", "GENROU_8"])}, 30, lead_s
        )
    if kind == "load_step":
        load = rng.choice(["PQ_1", "PQ_2", "PQ_4", "PQ_7", "PQ_9", "PQ_12"])
        return Draw(kind, {"load": load, "step_pct": round(rng.choice((-1, 1)) * rng.uniform(50, 80), 1)}, 30, lead_s)
    if kind == "forced_oscillation":
        params = {
            "load": rng.choice(["PQ_13", "PQ_12", "PQ_7"]),
            "frequency_hz": round(rng.uniform(0.8, 1.6), 3),
            "amplitude_mw": round(rng.uniform(30, 50), 1),
            "duration_s": 40.0,
        }
        return Draw(kind, params, 60, lead_s)
    if kind == "oscillation":
        params = {
            "kick_pct": round(rng.uniform(15, 30), 1),
            "kick_s": round(rng.uniform(0.3, 0.5), 2),
            "duration_s": 50.0,
        }
        return Draw(kind, params, 65, lead_s)
    if kind == "voltage_decline":
        params = {
            "q_pct_per_min": round(rng.uniform(1800, 2400)),
            "p_pct_per_min": round(rng.uniform(120, 150)),
            "duration_s": round(rng.uniform(25, 30), 1),
        }
        return Draw(kind, params, 45, lead_s)
    if kind == "islanding":
        return Draw(kind, {}, 30, lead_s)
    if kind == "angle_separation":
        rate = round(rng.uniform(20, 30), 1)
        return Draw(kind, {"rate_mw_per_s": rate, "duration_s": round(min(35.0, 700.0 / rate) + 2, 1)}, 50, lead_s)
    raise ValueError(kind)


def sessions(draws: int, kinds: list[str], seed: int) -> list[list[Draw]]:
    """Return the draws in sessions: each session's mild scenarios in order, then at most one lasting one."""
    rng = random.Random(seed)
    out: list[list[Draw]] = []
    for _ in range(draws):
        mild = [draw(k, rng) for k in kinds if k not in LASTING]
        lasting = [draw(k, rng) for k in kinds if k in LASTING]
        if not lasting:
            out.append(mild)
            continue
        out.append([*mild, lasting[0]])
        out.extend([d] for d in lasting[1:])
    return out


def read_truth(path: Path) -> dict[str, Any]:
    """Read the truth JSON (rewritten as the run goes: retry a torn read)."""
    for _ in range(20):
        with contextlib.suppress(ValueError, OSError):
            return dict(json.loads(path.read_text()))
        time.sleep(0.2)
    raise RuntimeError(f"cannot read {path}")


def trigger(env: dict[str, str], truth: Path, item: Draw) -> dict[str, Any]:
    """Start one scenario as the admin does; return its truth entry once the simulator has scheduled it."""
    before = len(read_truth(truth).get("scenarios", []))
    start_scenario(env, item.kind, item.params)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        scenarios = read_truth(truth).get("scenarios", [])
        if len(scenarios) > before and scenarios[-1]["name"] == item.kind:
            return dict(scenarios[-1])
        time.sleep(0.5)
    raise RuntimeError(f"the simulator did not start {item.kind} within 30 s")


# --- grading ------------------------------------------------------------------------------------------


def parse_utc(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def hops_from(lines: list[tuple[str, int, int]], buses: set[int]) -> dict[int, int]:
    """Return the number of grid lines between every bus and the nearest of `buses` (breadth first)."""
    neighbours: dict[int, set[int]] = {}
    for _, a, b in lines:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    distance = dict.fromkeys(buses, 0)
    frontier = deque(buses)
    while frontier:
        bus = frontier.popleft()
        for other in neighbours.get(bus, ()):
            if other not in distance:
                distance[other] = distance[bus] + 1
                frontier.append(other)
    return distance


def truth_buses(kind: str, params: dict[str, Any], events: list[dict[str, Any]]) -> set[int]:
    """Return the buses where the disturbance truly is, from its truth events and the case data."""
    buses: set[int] = set()
    for event in events:
        detail = event.get("detail") or {}
        for key, value in detail.items():
            if "bus" in key and isinstance(value, int):
                buses.add(value)
            if "bus" in key and isinstance(value, list):
                buses.update(v for v in value if isinstance(v, int))
        element = str(event.get("element", ""))
        if element in CASE_LINES:
            buses.update(CASE_LINES[element])
        if element in GENERATOR_BUS and kind != "angle_separation":
            buses.add(GENERATOR_BUS[element])
    if kind == "fault":
        buses.add(int(params.get("bus", 16)))
    if kind == "line_trip":
        buses.update(CASE_LINES.get(str(params.get("line", "Line_21")), ()))
    if kind == "generator_trip":
        buses.add(GENERATOR_BUS[str(params.get("generator", "GENROU_5"))])
    if kind in ("load_step", "forced_oscillation"):
        default = "PQ_11" if kind == "load_step" else "PQ_13"
        buses.add(LOAD_BUS[str(params.get("load", default))])
    if kind == "islanding":  # the truth records the last tie opened; the scenario's parameters list them all
        for tie in params.get("tie_lines", ()):
            buses.update(CASE_LINES.get(str(tie), OTHER_LINES.get(str(tie), ())))
    if kind == "angle_separation":
        buses.update({26, 28, 29, 38})
    if kind == "voltage_decline":
        buses.update(AREA2_BUSES)
    return buses


def incident_buses(incident: dict[str, Any], lines: list[tuple[str, int, int]]) -> set[int]:
    """Return the buses an incident names: its bus and its line's ends."""
    loc = incident.get("location") or {}
    out = {int(loc["bus"])} if loc.get("bus") is not None else set()
    for name, a, b in lines:
        if loc.get("line") and name == loc["line"]:
            out.update((a, b))
    return out


def event_instant(kind: str, events: list[dict[str, Any]], scenario: dict[str, Any]) -> float:
    """Return the truth instant a detection is timed from (s since the epoch)."""
    if kind == "oscillation":  # the preset is applied first; the load pulse kicks the mode
        kicks = [e for e in events if e["kind"] == "load_factor"]
        if kicks:
            return parse_utc(kicks[0]["utc"])
    if kind == "angle_separation":  # the pocket slips when the ramp has gone far enough: time the first line open
        opens = [e for e in events if e["kind"] == "line_open"]
        if opens:
            return parse_utc(opens[0]["utc"])
    return parse_utc(events[0]["utc"]) if events else parse_utc(scenario["utc"])


@dataclass
class Grade:
    """The outcome of one disturbance."""

    kind: str
    params: dict[str, Any]
    truth_utc: str
    incidents: list[str]
    located: str = "-"
    hops: int | None = None
    detect_ms: float | None = None
    start_ms: float | None = None
    cycles: int = 0
    symptom_flaps: int = 0
    simulator_lag_s: float = 0.0  # the largest lag behind real time the simulator logged meanwhile
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def grade(
    item: Draw,
    scenario: dict[str, Any],
    truth: dict[str, Any],
    window: tuple[float, float],
    incidents: list[dict[str, Any]],
    lines: list[tuple[str, int, int]],
    env: dict[str, str],
) -> Grade:
    """Grade the incidents of one disturbance's window against its truth (env: the site's, to read evidence)."""
    index = next(i for i, s in enumerate(truth["scenarios"]) if s["utc"] == scenario["utc"] and s["name"] == item.kind)
    events = [e for e in truth.get("events", []) if e.get("scenario") in (index, item.kind, f"{item.kind}#{index}")]
    events = [e for e in events if parse_utc(e["utc"]) >= parse_utc(scenario["utc"]) - 1.0] or events
    instant = event_instant(item.kind, events, scenario)
    mine = [i for i in incidents if window[0] <= parse_utc(i["started_at"]) < window[1]]
    labels = [f"{i['kind']}@{location_label(i)}" for i in mine]
    out = Grade(item.kind, item.params, iso(instant), labels)
    right = [i for i in mine if i["kind"] == item.kind]
    out.cycles = len(right)
    if not right:
        out.failures.append(f"no {item.kind} incident")
    elif len(right) > 1:
        out.failures.append(f"{len(right)} {item.kind} incidents")
    extra = [i for i in mine if i["kind"] != item.kind]
    if extra:
        out.failures.append("extra: " + ", ".join(f"{i['kind']}@{location_label(i)}" for i in extra))
    if right:
        first = min(right, key=lambda i: parse_utc(i["started_at"]))
        out.located = location_label(first)
        out.detect_ms = round(1000 * (parse_utc(first["detected_at"]) - instant), 1)
        out.start_ms = round(1000 * (parse_utc(first["started_at"]) - instant), 1)
        bar = OSCILLATION_BAR_S if item.kind in OSCILLATION_KINDS else FAST_BAR_S
        if item.kind not in SLOW_KINDS and out.detect_ms > 1000 * bar:
            out.failures.append(f"detected {out.detect_ms:.0f} ms after the event (bar {1000 * bar:.0f} ms)")
        if item.kind not in OSCILLATION_KINDS:
            params = {**(scenario.get("params") or {}), **item.params}
            distance = hops_from(lines, truth_buses(item.kind, params, events))
            named = incident_buses(first, lines)
            out.hops = min((distance.get(b, 99) for b in named), default=None)
            if out.hops is None or out.hops > 1:
                out.failures.append(f"located at {out.located}, {out.hops} lines from the truth")
        out.symptom_flaps = symptom_flaps(env, first["events"]) if first["events"] else 0
    if out.cycles >= CHATTER_LIMIT or out.symptom_flaps >= CHATTER_LIMIT:
        out.failures.append(f"chattering: {out.cycles} incidents, {out.symptom_flaps} raises of one symptom")
    return out


def symptom_flaps(env: dict[str, str], event_ids: list[int]) -> int:
    """Return the largest number of evidence events of one detector kind at one PMU (raise/clear cycles)."""
    code = (
        "import json; from wams.detection.models import Event; "
        f"rows = Event.objects.filter(pk__in={list(event_ids)!r}).prefetch_related('pmus'); "
        "print(json.dumps([[e.kind, sorted(p.pk for p in e.pmus.all())] for e in rows]))"
    )
    rows = json.loads(manage(env, "shell", "-c", code).strip().splitlines()[-1])
    counts = Counter((kind, tuple(pmus)) for kind, pmus in rows)
    return max(counts.values(), default=0)


def location_label(incident: dict[str, Any]) -> str:
    loc = incident.get("location") or {}
    if loc.get("line"):
        return str(loc["line"])
    if loc.get("bus") is not None:
        return f"bus {loc['bus']}" + (f" {loc['substation']}" if loc.get("substation") else "")
    return "-"


def log_warnings(logs: list[Path]) -> dict[str, int]:
    """Count the simulator's and pdc's complaints about time (invalid instants, stale or late data) in the logs."""
    patterns = {
        "sim invalid instants": re.compile(r"behind instant .* invalid data", re.I),
        "stale/late": re.compile(r"stale|late frame", re.I),
        "errors": re.compile(r"Traceback|ERROR", re.I),
    }
    counts = dict.fromkeys(patterns, 0)
    for log in logs:
        with contextlib.suppress(OSError):
            for line in log.read_text(errors="replace").splitlines():
                for name, pattern in patterns.items():
                    if pattern.search(line):
                        counts[name] += 1
    return counts


BEHIND = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) WARNING wams\.simulator.*simulation ([\d.]+) s behind")


def simulator_lag(logs: list[Path], since_s: float, until_s: float | None = None) -> float:
    """Return the largest lag behind real time (s) the simulator logged between two instants (0 when none).

    The fleet warns when an instant had to be sent as invalid data because the engine had not reached it.
    """
    worst = 0.0
    for log in logs:
        with contextlib.suppress(OSError):
            for line in log.read_text(errors="replace").splitlines():
                found = BEHIND.match(line)
                if not found:
                    continue
                stamp = dt.datetime.fromisoformat(found.group(1)).replace(tzinfo=dt.UTC).timestamp()
                if since_s <= stamp and (until_s is None or stamp <= until_s):
                    worst = max(worst, float(found.group(3)))
    return worst


def wait_simulator_live(logs: list[Path], quiet_s: float = 15.0, timeout_s: float = 180.0) -> float:
    """Wait until the simulator has logged no lag for `quiet_s`; return the seconds waited."""
    started = time.time()
    while time.time() - started < timeout_s:
        if simulator_lag(logs, time.time() - quiet_s) == 0.0 and time.time() - started >= 1.0:
            break
        time.sleep(2.0)
    return time.time() - started
