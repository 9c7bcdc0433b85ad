"""The Procfile topology's supervisor: configuration from the Procfile, restarts, give-up, stop, log lines.

The supervised runs use a small Procfile of shell commands, so they need nothing but supervisord;
tests/wams/test_topology_restart.py runs the real processes on Redis and PostgreSQL.
"""

from __future__ import annotations

import configparser
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.wams.supervised import ROOT, Topology, group_members, poll
from wams import topology


def write_procfile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Procfile"
    path.write_text(text)
    return path


def test_the_project_procfile_becomes_one_restarted_program_per_process_type(tmp_path: Path) -> None:
    entries = topology.read_procfile(ROOT / "Procfile")
    assert [entry.name for entry in entries] == ["web", "pdc", "worker", "beat", "sim"]
    text = topology.render_config(entries, directory=ROOT, run_dir=tmp_path, supervision=topology.Supervision(7, 3, 12))
    config = configparser.RawConfigParser()
    config.read_string(text)
    programs = [section for section in config.sections() if section.startswith("program:")]
    assert programs == [f"program:{entry.name}" for entry in entries]
    for entry, section in zip(entries, programs, strict=True):
        values = dict(config.items(section))
        assert values["autorestart"] == "true"
        assert (values["startsecs"], values["startretries"], values["stopwaitsecs"]) == ("7", "3", "12")
        assert values["stopasgroup"] == values["killasgroup"] == "true"
        assert values["stopsignal"] == "TERM"
        # The shell command runs unchanged (exec'd, so the pid supervisord reports is the process's).
        assert values["command"].replace("%%", "%").startswith("/bin/sh -c ")
        assert f"exec {entry.command}".split()[-1] in values["command"]
    assert config.get("unix_http_server", "file") == str(tmp_path / "supervisord.sock")
    assert config.get("supervisord", "nodaemon") == "true"


def test_percent_signs_in_commands_are_escaped_for_supervisord(tmp_path: Path) -> None:
    entry = topology.ProcfileEntry("date", "date +%H:%M")
    section = topology.program_section(entry, 100, tmp_path, topology.Supervision())
    assert "date +%%H:%%M" in section


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web daphne\n", "expected 'name: command'"),
        ("web:\n", "expected 'name: command'"),
        ("we b: x\n", "expected 'name: command'"),
        ("web: a\nweb: b\n", "appears twice"),
        ("# only a comment\n\n", "no process types"),
    ],
)
def test_a_procfile_that_cannot_run_is_refused_with_its_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(topology.ProcfileError, match=message):
        topology.read_procfile(write_procfile(tmp_path, text))


def test_selecting_an_unknown_process_type_names_the_known_ones() -> None:
    entries = [topology.ProcfileEntry("web", "a"), topology.ProcfileEntry("pdc", "b")]
    assert [entry.name for entry in topology.select(entries, ["pdc"])] == ["pdc"]
    assert topology.select(entries, []) == entries
    with pytest.raises(topology.ProcfileError, match=r"no process type wrker .*it has web, pdc"):
        topology.select(entries, ["wrker"])


def event(eventname: str, head: str, data: bytes = b"") -> bytes:
    """Return one supervisord event as the listener reads it on stdin."""
    payload = head.encode() + b"\n" + data
    header = f"ver:3.0 server:supervisor serial:1 pool:log poolserial:1 eventname:{eventname} len:{len(payload)}\n"
    return header.encode() + payload


def test_the_event_listener_prefixes_lines_ends_leftovers_and_announces_give_ups() -> None:
    def log(name: str, data: bytes) -> bytes:
        return event("PROCESS_LOG_STDOUT", f"processname:{name} groupname:{name} pid:42 channel:stdout", data)

    stdin = io.BytesIO(
        log("web", b"one\ntw")
        + log("pdc", b"x 100%\n")
        + log("web", b"o\n")
        + event("PROCESS_STATE_EXITED", "processname:web groupname:web from_state:RUNNING expected:0 pid:4242")
        + event("PROCESS_STATE_EXITED", "processname:pdc groupname:pdc from_state:RUNNING expected:0 pid:77")
        + event("PROCESS_STATE_FATAL", "processname:pdc groupname:pdc from_state:BACKOFF")
    )
    ended: list[tuple[int, float]] = []

    def end(pgid: int, grace_s: float) -> bool:
        ended.append((pgid, grace_s))
        return pgid == 4242  # only the web process left something running

    stdout, out = io.BytesIO(), io.StringIO()
    listener = topology.Listener(topology.LogPrinter(out, 4), "/run/supervisord.conf", 3.0, end)
    topology.listen(stdin, stdout, listener)
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["web  | one", "pdc  | x 100%", "web  | two"]
    assert ended == [(4242, 3.0), (77, 3.0)]
    assert lines[3] == "web  | *** ended what its exit left running in process group 4242"
    assert lines[4].startswith("pdc  | *** gave up")
    assert "supervisorctl -c /run/supervisord.conf start pdc" in lines[5]
    assert len(lines) == 6
    assert stdout.getvalue() == b"READY\n" + b"RESULT 2\nOKREADY\n" * 6


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Topology]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({"SECRET_KEY": "topology-test", "WAMS_VAR_DIR": str(tmp_path / "var")})
    run = Topology(tmp_path / "run", tmp_path / "topology.log", env)
    yield run
    run.stop(timeout_s=20)
    assert not run.kill_leftovers(), "processes outlived supervisord"


def test_a_killed_process_is_restarted_and_one_failing_at_start_is_given_up(
    tmp_path: Path, supervised: Topology
) -> None:
    procfile = write_procfile(
        tmp_path,
        "steady: sh -c 'echo steady up; sleep 300 & exec sleep 300'\n"  # a child in its group too
        "broken: sh -c 'echo broken config; exit 3'\n",
    )
    supervised.start("--procfile", str(procfile), "--start-seconds", "2", "--start-retries", "2")
    first = supervised.wait_running(["steady"], 30)["steady"]
    os.kill(first, signal.SIGKILL)
    second = supervised.wait_running(["steady"], 30, not_pids={"steady": first})["steady"]
    assert second != first
    # What the killed process left in its group (its `sleep 300 &`) is ended, not leaked.
    assert poll(lambda: group_members(first) == [], 15), supervised.log_tail()
    # Exits at once every time: tried 1 + 2 times (1 s, then 2 s back-off), then given up.
    assert poll(lambda: supervised.info("broken")["statename"] == "FATAL", 30), supervised.log_tail()
    log = supervised.log_tail(100_000)
    assert log.count("spawned: 'broken'") == 3
    assert "gave up: broken entered FATAL state" in log
    assert "broken | *** gave up" in log
    assert log.count("broken | broken config") == 3  # its output, prefixed with its name
    assert "steady | steady up" in log
    assert supervised.running("steady") == second  # the other process was left running


def test_sigterm_stops_every_process_group_and_its_children(tmp_path: Path, supervised: Topology) -> None:
    procfile = write_procfile(
        tmp_path,
        "a: sh -c 'sleep 300 & sleep 300 & wait'\n"
        "b: sh -c 'trap \"\" TERM; sleep 300 & wait; sleep 300'\n",  # ignores SIGTERM: needs the SIGKILL
    )
    supervised.start("--procfile", str(procfile), "--start-seconds", "1", "--stop-seconds", "2")
    pids = supervised.wait_running(["a", "b"], 30)
    assert poll(lambda: all(len(group_members(pid)) >= 2 for pid in pids.values()), 10)
    assert supervised.stop(timeout_s=30) == 0
    assert all(group_members(pid) == [] for pid in pids.values())
    log = supervised.log_tail(100_000)
    assert "stopped: a (terminated by SIGTERM)" in log
    assert "killing 'b'" in log and "stopped: b (terminated by SIGKILL)" in log


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("daphne -p ${PORT:-8000} x", "exec daphne -p ${PORT:-8000} x"),
        ("WAMS_PDC_SHARD=1 python manage.py run_pdc", "WAMS_PDC_SHARD=1 exec python manage.py run_pdc"),
        ("A='x y' B=\"z\" celery -A wams worker", "A='x y' B=\"z\" exec celery -A wams worker"),
    ],
)
def test_the_program_is_execed_after_leading_environment_assignments(command: str, expected: str) -> None:
    assert topology.exec_command(command) == expected
