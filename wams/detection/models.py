"""Events and what is kept beside them: detector settings, pre/post data windows, fault records."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from wams.grid.models import Bus, DeviceGroup, Line, Pmu, Substation

POSITIVE = [MinValueValidator(0.0)]


class Incident(models.Model):
    """One disturbance as an operator needs it: what, where, its figures; its symptom events are the evidence."""

    class Kind(models.TextChoices):
        FAULT = "fault", "Fault"
        LINE_TRIP = "line_trip", "Line trip"
        GENERATOR_TRIP = "generator_trip", "Generator trip"
        LOAD_STEP = "load_step", "Load step"
        ISLANDING = "islanding", "Islanding"
        ANGLE_SEPARATION = "angle_separation", "Angle separation"
        OSCILLATION = "oscillation", "Poorly damped oscillation"
        FORCED_OSCILLATION = "forced_oscillation", "Forced oscillation"
        VOLTAGE_DECLINE = "voltage_decline", "Voltage decline"

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"

    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    severity = models.CharField(max_length=10, default="warning", help_text="info, warning, alarm, critical")
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE, db_index=True)
    summary = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(db_index=True)
    detected_at = models.DateTimeField(help_text="When the correlator named it.")
    ended_at = models.DateTimeField(null=True, blank=True)
    bus = models.ForeignKey(Bus, on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents")
    substation = models.ForeignKey(
        Substation, on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents"
    )
    line = models.ForeignKey(Line, on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents")
    bus_number = models.PositiveIntegerField(null=True, blank=True, help_text="As located, even without a Bus row.")
    line_name = models.CharField(max_length=100, blank=True, help_text="As located, even without a Line row.")
    location_method = models.CharField(max_length=40, blank=True)
    figures = models.JSONField(default=dict, blank=True, help_text="Key figures with units in their names.")
    source = models.CharField(max_length=20, default="pdc")
    correlation_key = models.CharField(
        max_length=100, unique=True, help_text="The correlator's identity of the incident (run and number)."
    )
    # Its alarm (ISA-18.2): raised once, latched until acknowledged, shelved for a time with a reason.
    alarm_key = models.CharField(
        max_length=150, blank=True, db_index=True, help_text="Kind and place: a re-raise within the deadband is this."
    )
    raised_at = models.DateTimeField(null=True, blank=True, help_text="When its alarm was raised (and notified).")
    raise_count = models.PositiveIntegerField(default=1, help_text="Raises, re-raises within the deadband included.")
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True, db_index=True)
    acknowledge_comment = models.CharField(max_length=300, blank=True)
    shelved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    shelved_at = models.DateTimeField(null=True, blank=True)
    shelved_until = models.DateTimeField(null=True, blank=True, db_index=True, help_text="Hidden until then.")
    shelve_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.started_at:%Y-%m-%d %H:%M:%S} ({self.state})"

    @property
    def alarm_state(self) -> str:
        """Return the ISA-18.2 state of its alarm (one of AlarmState)."""
        active = self.state == Incident.State.ACTIVE
        if self.acknowledged_at is None:
            return AlarmState.UNACK_ACTIVE if active else AlarmState.UNACK_RETURNED
        return AlarmState.ACK_ACTIVE if active else AlarmState.NORMAL

    def is_shelved(self, now: dt.datetime) -> bool:
        """Tell whether its alarm is shelved at this instant (an expired shelf counts as none)."""
        return self.shelved_until is not None and self.shelved_until > now


class AlarmState(models.TextChoices):
    """The states of an incident's alarm (ISA-18.2 / IEC 62682)."""

    UNACK_ACTIVE = "unack_active", "Unacknowledged, active"
    ACK_ACTIVE = "ack_active", "Acknowledged, active"
    UNACK_RETURNED = "unack_returned", "Unacknowledged, returned to normal"
    NORMAL = "normal", "Normal"


class IncidentKey(models.Model):
    """A further correlation key of an incident: a re-raise within the alarm deadband reported under it."""

    key = models.CharField(max_length=100, unique=True)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="keys")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key


class AlarmAction(models.Model):
    """One thing that happened to an incident's alarm: what alarm-rate figures are counted from."""

    class Action(models.TextChoices):
        RAISED = "raised", "Raised"
        RERAISED = "reraised", "Re-raised within the deadband (not notified)"
        RETURNED = "returned", "Returned to normal"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        SHELVED = "shelved", "Shelved"
        UNSHELVED = "unshelved", "Unshelved"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="alarm_actions")
    action = models.CharField(max_length=12, choices=Action.choices, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    at = models.DateTimeField(db_index=True)
    comment = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.action} incident {self.incident_id} at {self.at:%Y-%m-%d %H:%M:%S}"


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
    incident = models.ForeignKey(
        Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="events", help_text="Its disturbance."
    )
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


class DetectorSettings(models.Model):
    """Thresholds of the detectors for the PMUs of a device group; the row without a group is the default."""

    group = models.OneToOneField(
        DeviceGroup,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="detector_settings",
        help_text="Empty: the defaults, for PMUs in no group with settings (and grid-wide detectors).",
    )
    priority = models.PositiveSmallIntegerField(default=100, help_text="A PMU in several groups takes the lowest.")
    enabled = models.BooleanField(default=True, help_text="Untick to run no fast detector on these PMUs.")
    frequency_warning_deviation_hz = models.FloatField(default=0.2, validators=POSITIVE)
    frequency_alarm_deviation_hz = models.FloatField(default=0.5, validators=POSITIVE)
    frequency_pickup_s = models.FloatField(default=0.1, validators=POSITIVE)
    rocof_window_s = models.FloatField(
        default=0.5, validators=[MinValueValidator(0.02)], help_text="Grid-wide: taken from the defaults."
    )
    rocof_warning_hz_per_s = models.FloatField(default=0.2, validators=POSITIVE)
    rocof_alarm_hz_per_s = models.FloatField(default=0.5, validators=POSITIVE)
    voltage_sag_warning_pu = models.FloatField(default=0.9, validators=POSITIVE)
    voltage_sag_alarm_pu = models.FloatField(default=0.7, validators=POSITIVE)
    voltage_swell_warning_pu = models.FloatField(default=1.1, validators=POSITIVE)
    voltage_swell_alarm_pu = models.FloatField(default=1.2, validators=POSITIVE)
    voltage_pickup_s = models.FloatField(default=0.05, validators=POSITIVE)
    angle_warning_fraction = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0.1), MaxValueValidator(1.0)],
        help_text="Warn at this share of a corridor's angle limit; the limit itself alarms.",
    )
    angle_pickup_s = models.FloatField(default=0.5, validators=POSITIVE)
    line_trip_angle_step_deg = models.FloatField(default=5.0, validators=POSITIVE)
    islanding_divergence_hz = models.FloatField(
        default=0.1, validators=POSITIVE, help_text="Grid-wide: taken from the defaults."
    )
    islanding_alarm_divergence_hz = models.FloatField(default=0.3, validators=POSITIVE)
    stale_after_s = models.FloatField(default=1.0, validators=[MinValueValidator(0.05)])
    damping_warning_pct = models.FloatField(
        default=5.0, validators=POSITIVE, help_text="Oscillation monitoring (grid-wide: taken from the defaults)."
    )
    damping_alarm_pct = models.FloatField(default=3.0, validators=POSITIVE)
    sustained_frequency_band_hz = models.FloatField(
        default=0.12,
        validators=[MinValueValidator(0.01)],
        help_text="Grid-wide: a frequency this far from 60 Hz (scaled on 50 Hz grids) for the delay alarms.",
    )
    sustained_frequency_delay_s = models.FloatField(default=60.0, validators=[MinValueValidator(1.0)])
    sustained_voltage_low_pu = models.FloatField(default=0.95, validators=POSITIVE)
    sustained_voltage_high_pu = models.FloatField(
        default=1.10, validators=POSITIVE, help_text="Grid-wide: a voltage outside the limits for the delay alarms."
    )
    sustained_voltage_delay_s = models.FloatField(default=60.0, validators=[MinValueValidator(1.0)])
    alarm_deadband_s = models.FloatField(
        default=60.0,
        validators=POSITIVE,
        help_text="Grid-wide: an incident of the same kind and place within this of the last is a re-raise.",
    )

    class Meta:
        ordering = ["priority", "pk"]
        verbose_name_plural = "detector settings"

    def clean(self) -> None:
        if self.group_id is None:
            others = DetectorSettings.objects.filter(group__isnull=True).exclude(pk=self.pk)
            if others.exists():
                raise ValidationError({"group": "There is already a default row (no group)."})
        if self.frequency_alarm_deviation_hz < self.frequency_warning_deviation_hz:
            raise ValidationError({"frequency_alarm_deviation_hz": "The alarm deviation is at least the warning."})
        if self.rocof_alarm_hz_per_s < self.rocof_warning_hz_per_s:
            raise ValidationError({"rocof_alarm_hz_per_s": "The alarm ROCOF is at least the warning."})
        if not self.voltage_sag_alarm_pu <= self.voltage_sag_warning_pu < 1.0 < self.voltage_swell_warning_pu:
            raise ValidationError("Use sag alarm <= sag warning < 1 pu < swell warning.")
        if self.voltage_swell_alarm_pu < self.voltage_swell_warning_pu:
            raise ValidationError({"voltage_swell_alarm_pu": "The swell alarm is at least the swell warning."})
        if self.damping_alarm_pct > self.damping_warning_pct:
            raise ValidationError({"damping_alarm_pct": "Alarm damping is at most the warning damping."})
        if not self.sustained_voltage_low_pu < 1.0 < self.sustained_voltage_high_pu:
            raise ValidationError("Use sustained voltage low < 1 pu < sustained voltage high.")

    def __str__(self) -> str:
        return f"Detector settings: {self.group or 'defaults'}"


class EventWindow(models.Model):
    """The measurements of an event's PMUs from before to after it, kept whatever the storage policies."""

    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="window")
    start_at = models.DateTimeField()
    end_at = models.DateTimeField()
    complete = models.BooleanField(default=False, help_text="False while the post-event part is still to come.")
    n_samples = models.PositiveIntegerField(default=0)
    size_bytes = models.PositiveIntegerField(default=0)
    captured_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"window of {self.event}"


class EventWindowBlock(models.Model):
    """One PMU's samples of an event window, compressed with the historian's chunk codec."""

    window = models.ForeignKey(EventWindow, on_delete=models.CASCADE, related_name="blocks")
    pmu = models.ForeignKey(Pmu, on_delete=models.CASCADE, related_name="+")
    n_samples = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["window", "pmu"], name="event_window_block_unique")]

    def __str__(self) -> str:
        return f"{self.pmu_id}: {self.n_samples} samples"


class FaultRecord(models.Model):
    """A fault recorder's COMTRADE record (cfg + dat as uploaded), attached to its event."""

    event = models.ForeignKey(Event, on_delete=models.SET_NULL, null=True, blank=True, related_name="fault_records")
    name = models.CharField(max_length=200, help_text="File name without extension.")
    station_name = models.CharField(max_length=100, blank=True)
    device_id = models.CharField(max_length=100, blank=True)
    revision_year = models.CharField(max_length=4, blank=True)
    substation = models.ForeignKey(
        Substation, on_delete=models.SET_NULL, null=True, blank=True, related_name="fault_records"
    )
    start_at = models.DateTimeField()
    trigger_at = models.DateTimeField(db_index=True)
    frequency_hz = models.FloatField()
    sample_rate_hz = models.FloatField()
    n_samples = models.PositiveIntegerField()
    n_analogs = models.PositiveSmallIntegerField()
    n_digitals = models.PositiveSmallIntegerField()
    cfg = models.BinaryField()
    dat = models.BinaryField()
    sha256 = models.CharField(max_length=64, unique=True, help_text="Of cfg + dat: the same upload is kept once.")
    uploaded_by = models.CharField(max_length=150, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-trigger_at"]

    @property
    def duration_s(self) -> float:
        return (self.n_samples - 1) / self.sample_rate_hz if self.sample_rate_hz > 0 and self.n_samples else 0.0

    def __str__(self) -> str:
        return f"{self.name} ({self.station_name}, {self.trigger_at:%Y-%m-%d %H:%M:%S})"


class OscillationAnalysis(models.Model):
    """One ambient mode analysis and the poorly damped modes it found (kept a while, to confirm alarms)."""

    analysed_at = models.DateTimeField(db_index=True, help_text="End of the analysed window.")
    window_s = models.FloatField()
    n_pmus = models.PositiveIntegerField()
    modes = models.JSONField(default=list, blank=True, help_text="Modes below the warning damping, with shapes.")

    class Meta:
        ordering = ["-analysed_at"]

    def __str__(self) -> str:
        return f"ambient analysis {self.analysed_at:%Y-%m-%d %H:%M:%S} ({len(self.modes)} poorly damped)"
