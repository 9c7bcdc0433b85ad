"""Report what the historian stores per storage policy."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from wams.historian.policies import storage_usage


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024  # type: ignore[assignment]
    return str(value)


class Command(BaseCommand):
    help = "Report stored bytes, chunks, oldest and newest sample per storage policy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = storage_usage()
        if options["json"]:
            data = [
                {
                    "policy_id": row.policy_id,
                    "policy": row.name,
                    "pmus": row.pmus,
                    "chunks": row.chunks,
                    "bytes": row.bytes,
                    "max_bytes": row.max_bytes,
                    "oldest": row.oldest.isoformat() if row.oldest else None,
                    "newest": row.newest.isoformat() if row.newest else None,
                }
                for row in rows
            ]
            self.stdout.write(json.dumps(data, indent=2))
            return
        header = (
            f"{'policy':<30} {'pmus':>5} {'chunks':>9} {'bytes':>12} {'limit':>12} {'used':>6}  oldest / newest (UTC)"
        )
        self.stdout.write(header)
        for row in rows:
            used = f"{100 * row.bytes / row.max_bytes:.0f}%" if row.max_bytes else "-"
            span = (
                f"{row.oldest:%Y-%m-%d %H:%M:%S} / {row.newest:%Y-%m-%d %H:%M:%S}" if row.oldest and row.newest else "-"
            )
            self.stdout.write(
                f"{row.name[:30]:<30} {row.pmus:>5} {row.chunks:>9} {_size(row.bytes):>12} "
                f"{_size(row.max_bytes):>12} {used:>6}  {span}"
            )
