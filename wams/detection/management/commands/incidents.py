"""List incidents: `python manage.py incidents --since 2024-01-01T00:00:00Z --json`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from wams.detection.services import incidents_since


def parse_instant(text: str) -> dt.datetime:
    """Parse an ISO 8601 instant; a naive one is taken as UTC."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CommandError(f"--since: not an ISO 8601 instant: {text!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = "List the incidents since an instant (one located, classified incident per disturbance)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, help="ISO 8601 instant, e.g. 2024-05-01T12:00:00Z")
        parser.add_argument("--json", action="store_true", help="Print a JSON list (the checking contract).")

    def handle(self, *args: Any, **options: Any) -> None:
        incidents = incidents_since(parse_instant(options["since"]))
        if options["json"]:
            self.stdout.write(json.dumps(incidents, indent=2))
            return
        for item in incidents:
            loc = item["location"]
            where = loc["substation"] or (f"bus {loc['bus']}" if loc["bus"] is not None else "-")
            self.stdout.write(
                f"{item['started_at']}  {item['kind']:<18} {item['severity']:<8} {where:<8} "
                f"{len(item['events']):>3} events  {item['summary']}"
            )
