"""Celery beat entries of the control app (wired into settings and the embedded runner by the project)."""

BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "control-expire-selections": {"task": "wams.control.expire_selections", "schedule": 5.0},
    "control-poll-device-states": {"task": "wams.control.poll_device_states", "schedule": 5.0},
}
