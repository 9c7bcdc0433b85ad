"""Run-time state of the pdc's device links, written by the pdc process, read by everyone."""

from __future__ import annotations

from django.db import models

from wams.grid.models import CommunicationPath, Stream


class LinkState(models.Model):
    """The latest known state and statistics of one stream's link."""

    class State(models.TextChoices):
        CONNECTING = "connecting", "Connecting"
        CONFIGURING = "configuring", "Configuring"
        STREAMING = "streaming", "Streaming"
        STALE = "stale", "Stale"
        BACKING_OFF = "backing_off", "Backing off"
        DISABLED = "disabled", "Disabled"

    stream = models.OneToOneField(Stream, on_delete=models.CASCADE, related_name="link_state")
    state = models.CharField(max_length=12, choices=State.choices, default=State.CONNECTING)
    path = models.ForeignKey(CommunicationPath, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    shard = models.PositiveSmallIntegerField(default=0)
    rate_fps = models.FloatField(default=0.0)
    latency_ms = models.FloatField(null=True, blank=True, help_text="Receive time minus frame timestamp.")
    frames_received = models.PositiveBigIntegerField(default=0)
    frames_bad = models.PositiveBigIntegerField(default=0)
    frames_late = models.PositiveBigIntegerField(default=0)
    gaps = models.PositiveBigIntegerField(default=0, help_text="Missing reporting instants.")
    reconnects = models.PositiveIntegerField(default=0)
    last_frame_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["stream__name"]

    def __str__(self) -> str:
        return f"{self.stream}: {self.state}"
