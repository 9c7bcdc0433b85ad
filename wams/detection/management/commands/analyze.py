"""Analyse a recorded CSV offline: `python manage.py analyze FILE.csv [--nominal-hz 60]`."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from wams.detection.analytics.offline import analyze_csv


class Command(BaseCommand):
    """Print the events and oscillation modes found in a CSV as JSON."""

    help = "Run the disturbance detectors and oscillation analysis over a CSV (time_s, <pmu>:<quantity>...)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the file and the nominal frequency."""
        parser.add_argument("file", help="CSV: time_s, then <pmu>:<quantity> columns")
        parser.add_argument("--nominal-hz", type=float, default=60.0, choices=(50.0, 60.0))

    def handle(self, *args: Any, **options: Any) -> None:
        """Analyse the file and print the result."""
        try:
            result = analyze_csv(options["file"], nominal_hz=options["nominal_hz"])
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result, indent=2, allow_nan=False))
