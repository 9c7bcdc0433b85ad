"""Run the Procfile topology under supervisord: a process that exits is restarted, the Procfile stays the list.

`manage.py run_topology` reads the Procfile, writes a supervisord configuration from it and execs
supervisord in the foreground. Every process runs in its own process group and is restarted when it
exits; one that keeps dying before it has run `start_seconds` is retried with a growing back-off
(1 s, 2 s, 3 s, ...) and given up after `start_retries` tries (logged, the others keep running).
SIGINT or SIGTERM stops every process: SIGTERM to each process group, SIGKILL after `stop_seconds`.
The event listener below (`python -m wams.topology`, run by supervisord) prints every process's output
to the terminal prefixed with its name, ends what a dead process left running in its group before the
restart, and says how to start a process given up. No Django imports: the listener starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

PROJECT_DIR = Path(__file__).resolve().parents[1]  # where `python -m wams.topology` finds the package
# Leading `VAR=value ` words of a shell command (values bare or quoted).
ASSIGNMENTS = re.compile(r"""^(?:[A-Za-z_][A-Za-z0-9_]*=(?:'[^']*'|"[^"]*"|[^\s'"])*\s+)+""")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
LISTENER = "topology-events"


class ProcfileError(ValueError):
    """A Procfile line that cannot be run."""


@dataclass(frozen=True)
class ProcfileEntry:
    """One process type of the Procfile: its name and its shell command."""

    name: str
    command: str


@dataclass(frozen=True)
class Supervision:
    """How supervisord restarts and stops the processes."""

    start_seconds: int = 5  # a process that exits sooner has failed to start
    start_retries: int = 5  # failed starts in a row before giving up (back-off 1 s, 2 s, ... between them)
    stop_seconds: int = 10  # SIGTERM, then SIGKILL to the process group after this long


def read_procfile(path: Path) -> list[ProcfileEntry]:
    """Return the process types of a Procfile (`name: command` lines; blank lines and # comments skipped)."""
    entries: list[ProcfileEntry] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        name, command = name.strip(), command.strip()
        if not sep or not NAME.match(name) or not command:
            raise ProcfileError(f"{path}:{number}: expected 'name: command', got {line!r}")
        if any(entry.name == name for entry in entries):
            raise ProcfileError(f"{path}:{number}: process type {name!r} appears twice")
        entries.append(ProcfileEntry(name, command))
    if not entries:
        raise ProcfileError(f"{path}: no process types")
    return entries


def select(entries: Sequence[ProcfileEntry], names: Iterable[str]) -> list[ProcfileEntry]:
    """Return the entries named (all of them when no name is given), in Procfile order."""
    wanted = list(names)
    unknown = [name for name in wanted if name not in {entry.name for entry in entries}]
    if unknown:
        known = ", ".join(entry.name for entry in entries)
        raise ProcfileError(f"no process type {', '.join(unknown)} in the Procfile (it has {known})")
    return [entry for entry in entries if not wanted or entry.name in wanted]


def _value(text: str) -> str:
    """Escape a value for supervisord, which expands %(name)s in its configuration."""
    return text.replace("%", "%%")


def _section(header: str, values: dict[str, object]) -> str:
    lines = [f"[{header}]"] + [f"{key}={value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def exec_command(command: str) -> str:
    """Return the shell command with `exec` before its program, after any leading `VAR=value` assignments.

    `exec` leaves no shell between supervisord and the process: the pid it reports is the process's.
    """
    assignments = ASSIGNMENTS.match(command)
    prefix = assignments.group(0) if assignments else ""
    return f"{prefix}exec {command[len(prefix) :]}"


def program_section(entry: ProcfileEntry, priority: int, directory: Path, supervision: Supervision) -> str:
    """Return the [program:x] section of one Procfile entry."""
    command = shlex.join(["/bin/sh", "-c", exec_command(entry.command)])
    return _section(
        f"program:{entry.name}",
        {
            "command": _value(command),
            "directory": _value(str(directory)),
            "priority": priority,
            "autostart": "true",
            "autorestart": "true",
            "startsecs": supervision.start_seconds,
            "startretries": supervision.start_retries,
            "stopsignal": "TERM",
            "stopwaitsecs": supervision.stop_seconds,
            "stopasgroup": "true",
            "killasgroup": "true",
            "redirect_stderr": "true",
            "stdout_logfile": "NONE",
            "stdout_events_enabled": "true",  # the log listener prints it, prefixed with the name
        },
    )


def render_config(
    entries: Sequence[ProcfileEntry],
    *,
    directory: Path,
    run_dir: Path,
    python: str = sys.executable,
    supervision: Supervision = Supervision(),
) -> str:
    """Return a supervisord configuration running `entries` from `directory`, its files in `run_dir`."""
    socket = socket_path(run_dir)
    width = max(len(entry.name) for entry in entries)
    listener = [python, "-m", "wams.topology", "--width", str(width), "--config", str(config_path(run_dir))]
    listener += ["--stop-seconds", str(supervision.stop_seconds)]
    parts = [
        _section(
            "supervisord",
            {
                "nodaemon": "true",  # foreground: it also copies its own log to the terminal
                "logfile": _value(str(run_dir / "supervisord.log")),
                "logfile_maxbytes": "10MB",
                "logfile_backups": 3,
                "pidfile": _value(str(run_dir / "supervisord.pid")),
                "childlogdir": _value(str(run_dir)),
                "directory": _value(str(directory)),
            },
        ),
        _section("unix_http_server", {"file": _value(str(socket)), "chmod": "0700"}),
        _section(
            "rpcinterface:supervisor",
            {"supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"},
        ),
        _section("supervisorctl", {"serverurl": _value(f"unix://{socket}")}),
        _section(
            f"eventlistener:{LISTENER}",
            {
                "command": _value(shlex.join(listener)),
                "directory": _value(str(PROJECT_DIR)),
                "events": "PROCESS_LOG,PROCESS_STATE_EXITED,PROCESS_STATE_FATAL",
                "buffer_size": 10000,
                "priority": 1,  # started first, stopped last: no line is lost at start or stop
                "autorestart": "true",
                "stdout_logfile": "NONE",  # its stdout speaks the event protocol
                "stderr_logfile": "/dev/stdout",
                "stderr_logfile_maxbytes": 0,
            },
        ),
    ]
    parts += [program_section(entry, 100 + k, directory, supervision) for k, entry in enumerate(entries)]
    return "\n".join(parts)


def socket_path(run_dir: Path) -> Path:
    """Return where supervisord listens for supervisorctl and XML-RPC."""
    return run_dir / "supervisord.sock"


def config_path(run_dir: Path) -> Path:
    """Return where the generated supervisord configuration is written."""
    return run_dir / "supervisord.conf"


# --- the event listener: log lines, leftovers of exited processes, give-ups ------------------------------------------


def _tokens(line: bytes) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.decode().split())


class LogPrinter:
    """Print process output line by line, each prefixed with its process name (partial lines wait)."""

    def __init__(self, out: TextIO, width: int) -> None:
        self.out = out
        self.width = width
        self.partial: dict[str, bytes] = {}

    def output(self, name: str, data: bytes) -> None:
        """Print the complete lines of `data`; keep a trailing partial line for the next chunk."""
        text = self.partial.pop(name, b"") + data
        *lines, rest = text.split(b"\n")
        if len(rest) > 65536:  # a process writing without newlines: print what it has
            lines, rest = [*lines, rest], b""
        if rest:
            self.partial[name] = rest
        for line in lines:
            self.line(name, line.decode("utf-8", "replace").rstrip("\r"))

    def line(self, name: str, text: str) -> None:
        """Print one line as `name | text`."""
        self.out.write(f"{name:<{self.width}} | {text}\n")
        self.out.flush()


def end_group(pgid: int, grace_s: float) -> bool:
    """Stop what is left of an exited process's group: SIGTERM now, SIGKILL after `grace_s`; False if empty."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    timer = threading.Timer(grace_s, _kill_group, args=(pgid,))
    timer.daemon = True
    timer.start()
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class Listener:
    """What the topology does on supervisord's events: print output, clean up after exits, announce give-ups."""

    def __init__(self, printer: LogPrinter, config: str, grace_s: float, end: Callable[[int, float], bool]) -> None:
        self.printer = printer
        self.config = config
        self.grace_s = grace_s
        self.end = end

    def handle(self, eventname: str, fields: dict[str, str], data: bytes) -> None:
        """Act on one event."""
        name = fields.get("processname", "?")
        if eventname.startswith("PROCESS_LOG"):
            self.printer.output(name, data)
        elif eventname == "PROCESS_STATE_EXITED":
            # A process that died leaves its children running (supervisord signals groups only when it
            # stops a process itself): end them, so that the restarted process starts alone.
            if self.end(int(fields["pid"]), self.grace_s):
                self.printer.line(name, f"*** ended what its exit left running in process group {fields['pid']}")
        elif eventname == "PROCESS_STATE_FATAL":
            self.printer.line(name, "*** gave up: it kept exiting at start; the other processes keep running")
            self.printer.line(name, f"*** fix it, then: supervisorctl -c {self.config} start {name}")


def listen(stdin: BinaryIO, stdout: BinaryIO, listener: Listener) -> None:
    """Serve supervisord's event listener protocol until stdin closes."""
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        header_line = stdin.readline()
        if not header_line:
            return
        header = _tokens(header_line)
        payload = stdin.read(int(header["len"]))
        head, _, data = payload.partition(b"\n")
        listener.handle(header["eventname"], _tokens(head), data)
        stdout.write(b"RESULT 2\nOK")
        stdout.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the event listener (supervisord starts it with `python -m wams.topology ...`)."""
    parser = argparse.ArgumentParser(description="supervisord event listener of the Procfile topology")
    parser.add_argument("--width", type=int, default=8, help="Width of the process-name column.")
    parser.add_argument("--config", default="supervisord.conf", help="The configuration, named in hints.")
    parser.add_argument("--stop-seconds", type=float, default=10.0, help="SIGTERM to SIGKILL for leftovers.")
    args = parser.parse_args(argv)
    printer = LogPrinter(sys.stderr, args.width)
    listen(sys.stdin.buffer, sys.stdout.buffer, Listener(printer, args.config, args.stop_seconds, end_group))


if __name__ == "__main__":
    main()
