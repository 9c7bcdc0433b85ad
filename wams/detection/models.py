"""Events: disturbances and alarms raised by detectors, with their lifecycle."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from wams.grid.models import Pmu, Substation


class Event(models.Model):
    """A disturbance or alarm: raised, acknowledged by an operator, cleared when it ends."""

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ALARM = "alarm", "Alarm"
        CRITICAL = "critical", "Critical"

    class State(models.TextChoices):
        RAISED = "raised", "Raised"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        CLEARED = "cleared", "Cleared"

    kind = models.CharField(max_length=40, db_index=True, help_text="under_frequency, rocof, oscillation, ...")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    state = models.CharField(max_length=12, choices=State.choices, default=State.RAISED, db_index=True)
    dedup_key = models.CharField(max_length=200, db_index=True, help_text="Same key while active = same event.")
    summary = models.CharField(max_length=300)
    started_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    pmus = models.ManyToManyField(Pmu, blank=True, related_name="events")
    substations = models.ManyToManyField(Substation, blank=True, related_name="events")
    quantities = models.JSONField(default=dict, blank=True, help_text="Key figures with units in their names.")
    source = models.CharField(max_length=20, default="pdc", help_text="pdc, worker, analyze, simulator ...")
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["dedup_key", "state"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.started_at:%Y-%m-%d %H:%M:%S} ({self.state})"
