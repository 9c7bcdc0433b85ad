"""Detectors on the simulator's scenarios: the kind raised, where, and how long after the ground truth.

Each scenario runs the IEEE 39-bus engine faster than real time over ambient load noise, samples
the demo PMUs at 30 frames/s through the C37.118 codec, and feeds the fast detectors and the
oscillation monitor snapshot by snapshot (tests/detection/scenario_runner.py); the verdict is the
one the tests assert (tests/detection/scenario_cases.py). Delay = detection time - truth time.

    python bench/bench_scenarios.py                        # every scenario once (ambient seed 0)
    python bench/bench_scenarios.py --seeds 0 1 2 3 4      # robustness over ambient realisations
    python bench/bench_scenarios.py --only oscillation forced_oscillation --seeds 0 1 2
    python bench/bench_scenarios.py --ambient-minutes 10   # add the ten-minute ambient soak
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.detection.scenario_cases import CASES, Case, Verdict, ambient_case
from tests.detection.scenario_runner import run_scenario


def secondary_summary(verdict: Verdict) -> str:
    """Return the legitimate secondary detections counted by kind."""
    counts = Counter(label.split("@")[0] for label in verdict.secondaries)
    return ", ".join(f"{kind} x{n}" for kind, n in sorted(counts.items())) or "-"


def row(case: Case, seed: int) -> tuple[Verdict, float]:
    """Run one case with one ambient seed; return its verdict and the wall time."""
    run = run_scenario(case.events, case.duration_s, ambient_seed=seed)
    return case.evaluate(run), run.wall_s


def main() -> None:
    """Run the scenarios and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="scenario names (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0], help="ambient load noise seeds")
    parser.add_argument("--ambient-minutes", type=float, default=0.0, help="also run ambient this long")
    args = parser.parse_args()
    cases = [c for name, c in CASES.items() if args.only is None or name in args.only]
    if args.ambient_minutes:
        cases.append(ambient_case(60.0 * args.ambient_minutes))
    print(f"# {platform.node()} | {platform.processor() or platform.machine()} | {os.cpu_count()} cores | "
          f"Python {platform.python_version()} | {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    print()
    print("| scenario | seed | expected | raised | place | delay vs truth (ms) | result | wall (s) |")
    print("|---|---|---|---|---|---:|---|---:|")
    failures: list[str] = []
    secondaries: dict[str, str] = {}
    for case in cases:
        for seed in args.seeds:
            verdict, wall_s = row(case, seed)
            delay = "-" if verdict.delay_ms is None else f"{verdict.delay_ms:.0f}"
            result = "pass" if verdict.passed else "FAIL"
            print(
                f"| {case.name} | {seed} | {verdict.expected} | {verdict.raised} | {verdict.place} | {delay} | "
                f"{result} | {wall_s:.1f} |",
                flush=True,
            )
            failures += [f"{case.name} (seed {seed}): {f}" for f in verdict.failures]
            secondaries.setdefault(case.name, secondary_summary(verdict))
    print()
    print("Legitimate secondary detections (first seed):")
    for name, text in secondaries.items():
        print(f"- {name}: {text}")
    if failures:
        print()
        print("Failures:")
        for text in failures:
            print(f"- {text}")


if __name__ == "__main__":
    main()
