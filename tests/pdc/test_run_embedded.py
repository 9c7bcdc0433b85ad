"""What `run_embedded` (the command `make demo` runs) prints: the banner, and the simulator's manifest as a file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.conftest import make_user
from wams.pdc.management.commands.run_embedded import forward_simulator_output, manifest_of
from wams.welcome import banner

MANIFEST = {
    "run_id": "20250101T000000-ieee39",
    "truth": "/srv/var/truth/20250101T000000-ieee39.json",
    "streams": [{"name": "PDC 1", "paths": [{"name": "fibre", "port": 14001}]}, {"name": "PDC 2", "paths": []}],
    "rtus": [{"name": "RTU 1", "port": 24001}],
}


def forward(lines: list[str], manifest: Path) -> list[str]:
    out: list[str] = []
    forward_simulator_output(io.BytesIO("".join(line + "\n" for line in lines).encode()), out.append, manifest)
    return out


def test_the_simulators_manifest_goes_to_a_file_and_one_short_line_names_it(tmp_path: Path) -> None:
    manifest = tmp_path / "simulator-manifest.json"

    out = forward([json.dumps(MANIFEST), "Simulating ieee39; Ctrl-C to stop."], manifest)

    assert json.loads(manifest.read_text()) == MANIFEST
    assert out[0] == f"Simulator up: 2 streams, 1 RTUs; manifest with their ports in {manifest}"
    # Still one JSON line with the run and its ground truth: scripts read it from the log.
    assert json.loads(out[1]) == {"run_id": MANIFEST["run_id"], "truth": MANIFEST["truth"], "manifest": str(manifest)}
    assert len(out[1]) < 200
    assert out[2:] == ["Simulating ieee39; Ctrl-C to stop."]


def test_other_lines_pass_unchanged_and_a_broken_manifest_does_not_stop_the_copy(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")

    line = json.dumps(MANIFEST)
    out = forward(["{not json", line, "Stopped; ground truth in x"], not_a_directory / "m.json")

    assert out == ["{not json", line, "Stopped; ground truth in x"]  # no file: the manifest line as it came
    assert manifest_of('{"streams": []}') is None  # a JSON line without a run id is not the manifest


@pytest.mark.django_db
def test_banner_says_where_to_log_in_with_which_accounts_and_how_to_start_a_disturbance(
    django_user_model: object, settings: object
) -> None:
    make_user(django_user_model, "admin", username="admin")
    make_user(django_user_model, "operator", username="dso-operator")

    lines = banner(
        "http://127.0.0.1:8000/",
        scenario_command='manage.py run_embedded --sim-args "--scenario line_trip@60"',
        manifest=Path("/srv/var/simulator-manifest.json"),
    )
    text = "\n".join(lines)

    assert lines[0] == "WAMS on http://127.0.0.1:8000/ (Ctrl-C stops)"
    assert "http://127.0.0.1:8000/accounts/login/ as admin, dso-operator (operator)\n" in text
    assert "viewer" not in text  # only the demo accounts that exist
    assert "http://127.0.0.1:8000/scenarios/ (as admin)" in text
    assert 'manage.py run_embedded --sim-args "--scenario line_trip@60"' in text
    assert "/srv/var/simulator-manifest.json" in text


@pytest.mark.django_db
def test_banner_without_demo_accounts_says_how_to_create_them() -> None:
    text = "\n".join(banner("http://127.0.0.1:8000", scenario_command="manage.py simulate_grid --scenario fault"))
    assert "http://127.0.0.1:8000/accounts/login/" in text
    assert "`manage.py load_demo` creates them" in text
