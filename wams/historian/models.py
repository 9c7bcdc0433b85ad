"""Stored measurements: compressed column chunks, one row per PMU per few seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import models

from wams.grid.models import Pmu

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_from_us(timestamp_us: int) -> datetime:
    """Return a UTC datetime for microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=int(timestamp_us))


def us_from_datetime(moment: datetime) -> int:
    """Return UTC microseconds since the epoch for an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a timezone-aware (UTC) datetime")
    return (moment - EPOCH) // timedelta(microseconds=1)


class Chunk(models.Model):
    """A run of one PMU's samples stored as compressed columns (see `wams.historian.codec`)."""

    pmu = models.ForeignKey(Pmu, on_delete=models.CASCADE, related_name="chunks")
    start_us = models.BigIntegerField(help_text="First sample, UTC microseconds since the epoch.")
    end_us = models.BigIntegerField(help_text="Last sample, UTC microseconds since the epoch.")
    n_samples = models.PositiveIntegerField()
    n_late = models.PositiveIntegerField(default=0, help_text="Samples that arrived after the pdc's wait time.")
    n_phasors = models.PositiveSmallIntegerField(default=0)
    n_analogs = models.PositiveSmallIntegerField(default=0)
    n_digitals = models.PositiveSmallIntegerField(default=0)
    downsampled_fps = models.PositiveSmallIntegerField(
        default=0, help_text="0: samples as received; otherwise the rate kept by a storage policy."
    )
    size_bytes = models.PositiveIntegerField(help_text="Length of the compressed data.")
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pmu", "start_us"]
        constraints = [
            # A sample is stored once: the ingest removes duplicates, so no two chunks share a first sample.
            models.UniqueConstraint(fields=["pmu", "start_us"], name="chunk_start_unique_per_pmu"),
        ]
        indexes = [models.Index(fields=["start_us"], name="chunk_start_idx")]

    @property
    def start_at(self) -> datetime:
        return datetime_from_us(self.start_us)

    @property
    def end_at(self) -> datetime:
        return datetime_from_us(self.end_us)

    def __str__(self) -> str:
        return f"{self.pmu_id} {self.start_at:%Y-%m-%d %H:%M:%S.%f} ({self.n_samples} samples)"
