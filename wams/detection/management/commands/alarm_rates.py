"""Alarm rates per operator: `python manage.py alarm_rates --since 2026-01-01T00:00:00Z [--until ...] [--json]`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from wams.detection.alarm_rates import alarm_rates
from wams.detection.management.commands.incidents import parse_instant


class Command(BaseCommand):
    help = "Alarms presented and acknowledged per operator per 10 minutes (EEMUA 191)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="ISO 8601 instant (default: 24 hours ago)")
        parser.add_argument("--until", help="ISO 8601 instant (default: now)")
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        until = parse_instant(options["until"]) if options["until"] else timezone.now()
        since = parse_instant(options["since"]) if options["since"] else until - dt.timedelta(hours=24)
        rates = alarm_rates(since, until)
        if options["json"]:
            self.stdout.write(json.dumps(rates, indent=2))
            return
        self.stdout.write(f"{rates['alarms_raised']} alarms raised, {rates['n_intervals']} intervals of 10 min")
        for op in rates["operators"]:
            self.stdout.write(
                f"{op['user']:<20} presented {op['presented']:>4} (mean {op['presented_per_10min_mean']:>5}/10 min, "
                f"peak {op['presented_per_10min_peak']:>3})  acknowledged {op['acknowledged']:>4}  "
                f"floods {op['flood_intervals']}"
            )
