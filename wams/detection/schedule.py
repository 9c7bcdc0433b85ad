"""Periodic detection work for Celery beat (plain constants; the lead wires them into settings)."""

from __future__ import annotations

BEAT_SCHEDULE: dict[str, dict] = {
    "detection-monitor-oscillations": {
        "task": "wams.detection.tasks.monitor_oscillations",
        "schedule": 10.0,
        "options": {"expires": 9.0},
    },
    "detection-capture-due-windows": {
        "task": "wams.detection.tasks.capture_due_windows",
        "schedule": 10.0,
        "options": {"expires": 9.0},
    },
    "detection-expire-shelves": {
        "task": "wams.detection.tasks.expire_shelves",
        "schedule": 10.0,
        "options": {"expires": 9.0},
    },
}
