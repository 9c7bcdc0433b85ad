"""Periodic work of the pdc app: none; the pdc process runs its own loops (links, states, live)."""

BEAT_SCHEDULE: dict[str, dict[str, object]] = {}
