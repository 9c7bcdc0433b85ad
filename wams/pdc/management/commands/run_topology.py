"""Run the Procfile topology under supervisord: every process restarted when it exits (see wams/topology.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from wams import topology, welcome


class Command(BaseCommand):
    help = (
        "Run the Procfile's processes (all, or those named) under supervisord, each restarted when it exits, "
        "until SIGINT or SIGTERM stops them all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="Process types to run (default: every one in the Procfile).")
        parser.add_argument("--procfile", type=Path, default=Path(settings.BASE_DIR) / "Procfile")
        parser.add_argument(
            "--run-dir",
            type=Path,
            default=Path(settings.VAR_DIR) / "run",
            help="Where the generated configuration, socket, pid and log files go (default: WAMS_VAR_DIR/run).",
        )
        defaults = topology.Supervision()
        parser.add_argument(
            "--start-seconds",
            type=int,
            default=defaults.start_seconds,
            help="A process that exits sooner than this after its start has failed to start.",
        )
        parser.add_argument(
            "--start-retries",
            type=int,
            default=defaults.start_retries,
            help="Failed starts in a row (1 s, 2 s, ... apart) before giving a process up.",
        )
        parser.add_argument(
            "--stop-seconds",
            type=int,
            default=defaults.stop_seconds,
            help="How long a stopping process group has between SIGTERM and SIGKILL.",
        )
        parser.add_argument("--print-config", action="store_true", help="Print the configuration and exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        procfile: Path = options["procfile"]
        if settings.EMBEDDED and procfile == Path(settings.BASE_DIR) / "Procfile":
            raise CommandError("REDIS_URL is not set: the Procfile topology needs Redis (or run `run_embedded`).")
        supervision = topology.Supervision(options["start_seconds"], options["start_retries"], options["stop_seconds"])
        if min(supervision.start_seconds, supervision.start_retries, supervision.stop_seconds) < 0:
            raise CommandError("--start-seconds, --start-retries and --stop-seconds must not be negative")
        try:
            entries = topology.select(topology.read_procfile(procfile), options["names"])
        except (OSError, topology.ProcfileError) as exc:
            raise CommandError(str(exc)) from exc
        run_dir: Path = options["run_dir"].resolve()
        config = topology.render_config(
            entries, directory=procfile.resolve().parent, run_dir=run_dir, supervision=supervision
        )
        if options["print_config"]:
            self.stdout.write(config)
            return
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        config_path = topology.config_path(run_dir)
        config_path.write_text(config)
        self.stdout.write(
            f"Running {', '.join(entry.name for entry in entries)} under supervisord (Ctrl-C stops them all); "
            f"status: supervisorctl -c {config_path} status"
        )
        if any(entry.name == "web" for entry in entries):
            lines = welcome.banner(
                f"http://127.0.0.1:{settings.WAMS_HTTP_PORT}/",
                scenario_command="manage.py simulate_grid --scenario line_trip@60",
                scenario_note="(in place of the Procfile's sim)",
            )
            self.stdout.write("\n".join(lines))
        self.stdout.flush()
        self.exec_supervisord(config_path)

    def exec_supervisord(self, config_path: Path) -> None:
        """Replace this process by supervisord, so that signals reach it directly."""
        env = dict(os.environ)
        # The Procfile names `python`, `celery` and `daphne`: the ones beside this interpreter.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
        env["PYTHONUNBUFFERED"] = "1"  # lines reach the terminal as they are written
        command = [sys.executable, "-m", "supervisor.supervisord", "-c", str(config_path)]
        os.execve(sys.executable, command, env)  # noqa: S606 - a fixed argv, no shell
