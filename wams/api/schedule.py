"""Periodic API work for Celery beat (plain constants; the lead wires them into settings)."""

from __future__ import annotations

BEAT_SCHEDULE: dict[str, dict] = {
    "api-send-periodic-reports": {
        "task": "wams.api.tasks.send_periodic_reports",
        "schedule": 1.0,
        "options": {"expires": 5.0},
    },
    "api-deliver-due": {
        "task": "wams.api.tasks.deliver_due",
        "schedule": 1.0,
        "options": {"expires": 5.0},
    },
    "api-prune-deliveries": {
        "task": "wams.api.tasks.prune_deliveries",
        "schedule": 3600.0,
        "options": {"expires": 600.0},
    },
}
