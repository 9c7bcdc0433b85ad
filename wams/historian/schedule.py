"""Periodic historian work for Celery beat (plain constants; the lead wires them into settings)."""

from __future__ import annotations

BEAT_SCHEDULE: dict[str, dict] = {
    "historian-persist-blocks": {
        "task": "wams.historian.tasks.persist_blocks",
        "schedule": 1.0,
        # A worker busy for longer than this would only find the stream empty: drop stale runs.
        "options": {"expires": 5.0},
    },
    "historian-compact-chunks": {
        "task": "wams.historian.tasks.compact_chunks",
        # Often and briefly (COMPACT_TASK_SECONDS each): the windows that settle together every chunk
        # length are merged over several runs, and hand-off entries never wait long behind a run.
        "schedule": 2.5,
        "options": {"expires": 2.0},
    },
    "historian-enforce-storage-policies": {
        "task": "wams.historian.tasks.enforce_storage_policies",
        "schedule": 60.0,
        "options": {"expires": 55.0},
    },
}
