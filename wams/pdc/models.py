"""Run-time state of the pdc's device links (written by the pdc, read by everyone) and its output streams."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import models

from wams.grid.models import (
    IDCODE_VALIDATORS,
    PORT_VALIDATORS,
    REPORTING_RATES_FPS,
    CommunicationPath,
    Pmu,
    Stream,
)
from wams.pdc.reports import LinkReport


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

    def report(self) -> LinkReport:
        """Return the row as the pdc's LinkReport (needs `stream` and `path`; select_related them)."""
        return LinkReport(
            stream_id=self.stream_id,
            stream_name=self.stream.name,
            state=self.state,
            path_id=self.path_id,
            path_name=self.path.name if self.path is not None else "",
            rate_fps=self.rate_fps,
            latency_ms=self.latency_ms,
            frames_received=self.frames_received,
            frames_bad=self.frames_bad,
            frames_late=self.frames_late,
            gaps=self.gaps,
            reconnects=self.reconnects,
            last_frame_at_s=self.last_frame_at.timestamp() if self.last_frame_at is not None else None,
            last_error=self.last_error,
        )


class OutputStream(models.Model):
    """A concentrated C37.118 stream the pdc serves to downstream PDCs and applications."""

    name = models.CharField(max_length=100, unique=True)
    idcode = models.PositiveIntegerField(validators=IDCODE_VALIDATORS, help_text="IDCODE of the output stream.")
    host = models.CharField(max_length=255, default="0.0.0.0", help_text="Address to listen on.")
    port = models.PositiveIntegerField(validators=PORT_VALIDATORS, help_text="TCP port to listen on.")
    reporting_rate_fps = models.PositiveSmallIntegerField(
        default=30, help_text="Frames per second; lower than the PMUs' rate is decimated with an anti-alias filter."
    )
    pmus = models.ManyToManyField(Pmu, blank=True, related_name="output_streams", verbose_name="PMUs")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["host", "port"], name="output_stream_socket_unique")]

    def clean(self) -> None:
        allowed = sorted(set(REPORTING_RATES_FPS[50]) | set(REPORTING_RATES_FPS[60]))
        if self.reporting_rate_fps not in allowed:
            raise ValidationError({"reporting_rate_fps": f"Use one of {allowed} frames per second."})

    def __str__(self) -> str:
        return self.name


def check_output_members(reporting_rate_fps: int, pmus: Iterable[Pmu]) -> None:
    """Refuse members whose streams' rates differ or are not a whole multiple of the output rate."""
    rates = sorted({pmu.stream.reporting_rate_fps for pmu in pmus})
    if len(rates) > 1:
        raise ValidationError({"pmus": f"The PMUs report at different rates ({rates} fps): choose one rate."})
    if rates and rates[0] % reporting_rate_fps:
        raise ValidationError(
            {"reporting_rate_fps": f"{reporting_rate_fps} fps does not divide the PMUs' {rates[0]} fps."}
        )
