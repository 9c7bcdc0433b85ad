"""Real-time soak (slow): 39-bus, 10 PMUs at 30 fps for 10 minutes, frames on schedule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def load_bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "bench_simulator.py"
    spec = importlib.util.spec_from_file_location("bench_simulator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ten_pmus_at_30_fps_keep_real_time_for_ten_minutes():
    result = load_bench().run(10, 30, 600.0)
    assert result["median_late_ms"] < 20.0
    assert result["last_fifth_median_ms"] < result["first_fifth_median_ms"] + 10.0  # no growing backlog
    assert result["delivered_pct"] > 99.0
