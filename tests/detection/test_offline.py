"""The offline `analyze` path: CSV parsing, events and modes, and the management command."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from wams.detection.analytics.offline import analyze_table, parse_signal_csv
from wams.detection.analytics.synthetic import SyntheticMode, ambient, ringdown

EPOCH_S = 1_700_000_000.0


def write_record(path: Path) -> np.ndarray:
    """Write 40 s of quiet grid, then a 0.3 Hz under-frequency step with a 0.5 Hz, 2% ringdown."""
    rng = np.random.default_rng(1)
    quiet = [SyntheticMode(0.4, 10.0, 0.5, (1.0, -1.0, 0.5))]
    _, a1, f1 = ambient(quiet, 40.0, 60.0, rng)
    _, a2, f2 = ringdown([SyntheticMode(0.5, 2.0, 10.0, (1.0, -0.8, 0.3))], 30.0, 60.0, rng)
    angle, frequency = np.vstack([a1, a2]), np.vstack([f1, f2])
    t = EPOCH_S + np.arange(angle.shape[0]) / 60.0
    frequency[t >= EPOCH_S + 40.0] -= 0.3
    header = ["time_s"] + [
        f"{name}:{q}" for name in ("north", "south", "east") for q in ("frequency_hz", "angle_deg", "magnitude_pu")
    ]
    lines = [",".join(header)]
    for k in range(t.size):
        cells = [f"{t[k]:.4f}"] + [f"{frequency[k, p]:.5f},{angle[k, p]:.3f},1.0" for p in range(3)]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return frequency[t >= EPOCH_S + 40.0]


def test_analyze_table_finds_the_under_frequency_event_and_the_poorly_damped_mode(tmp_path: Path) -> None:
    path = tmp_path / "record.csv"
    after = write_record(path)
    with path.open(encoding="utf-8") as handle:
        result = analyze_table(parse_signal_csv(handle), nominal_hz=60.0)
    assert result["pmus"] == ["north", "south", "east"]
    assert result["sample_rate_hz"] == pytest.approx(60.0)
    kinds = {e["kind"]: e for e in result["events"]}
    under = kinds["under_frequency"]
    assert under["pmus"] == ["north", "south", "east"]
    assert under["start_time_s"] - (EPOCH_S + 40.0) == pytest.approx(0.0, abs=0.05)
    # The 0.3 Hz step plus the ringdown's own frequency swing (0.09 Hz) and noise.
    assert under["quantities"]["frequency_nadir_hz"] == pytest.approx(after.min(), abs=1e-4)
    assert under["quantities"]["frequency_nadir_hz"] == pytest.approx(59.7 - 0.09, abs=0.03)
    oscillation = kinds["poorly_damped_oscillation"]
    assert oscillation["detected_time_s"] - (EPOCH_S + 40.0) <= 10.0
    ringdown_modes = [m for m in result["oscillation_modes"] if m["source"] == "ringdown"]
    mode = min(ringdown_modes, key=lambda m: abs(m["frequency_hz"] - 0.5))
    assert mode["frequency_hz"] == pytest.approx(0.5, rel=0.01)
    assert mode["damping_pct"] == pytest.approx(2.0, abs=1.0)
    assert mode["amplitude_channel"].endswith(":angle_deg")
    assert {"north:angle_deg", "south:angle_deg"} <= set(mode["swing_together"]) | set(mode["swing_against"])
    json.dumps(result, allow_nan=False)


def test_record_starting_at_the_disturbance_is_analysed_as_one_ringdown() -> None:
    _, angle, frequency = ringdown([SyntheticMode(1.2, 6.0, 6.0, (1.0, -1.0))], 20.0, 50.0, nominal_hz=50.0)
    rows = ["time_s,a:angle_deg,b:angle_deg,a:frequency_hz,b:frequency_hz"]
    rows += [
        f"{k / 50.0},{angle[k, 0]},{angle[k, 1]},{frequency[k, 0]},{frequency[k, 1]}" for k in range(angle.shape[0])
    ]
    result = analyze_table(parse_signal_csv(io.StringIO("\n".join(rows))), nominal_hz=50.0)
    record = [m for m in result["oscillation_modes"] if m["source"] == "record"]
    mode = min(record, key=lambda m: abs(m["frequency_hz"] - 1.2))
    assert mode["frequency_hz"] == pytest.approx(1.2, rel=0.01)
    assert mode["damping_pct"] == pytest.approx(6.0, abs=1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t,a:frequency_hz\n0,60\n1,60\n", "first column"),
        ("time_s,a:voltage\n0,1\n1,1\n", "not <pmu>:<quantity>"),
        ("time_s,a:frequency_hz\n0,sixty\n1,60\n", "non-numeric"),
        ("time_s,a:frequency_hz\n0,60\n0,60\n", "distinct"),
    ],
)
def test_bad_csv_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_signal_csv(io.StringIO(text))


def test_analyze_command_prints_json(tmp_path: Path) -> None:
    path = tmp_path / "record.csv"
    write_record(path)
    out = io.StringIO()
    call_command("analyze", str(path), "--nominal-hz", "60", stdout=out)
    result = json.loads(out.getvalue())
    assert "under_frequency" in {e["kind"] for e in result["events"]}
    assert result["oscillation_modes"]


def test_analyze_command_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError):
        call_command("analyze", str(tmp_path / "missing.csv"))
