"""Commands to field devices, their append-only audit trail, device states and countermeasure schemes."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from wams.grid.models import ControllableDevice, Corridor, Organisation, Pmu, Stream


class Origin(models.TextChoices):
    """Who asked for a command."""

    OPERATOR = "operator", "Operator"
    RULE = "rule", "Countermeasure scheme"
    APPLICATION = "application", "Application"
    SYSTEM = "system", "System"


class Action(models.TextChoices):
    """What a command does; which actions a target accepts is in `wams.control.vocabulary`."""

    OPEN = "open", "Open breaker"
    CLOSE = "close", "Close breaker"
    SHED = "shed", "Shed load block"
    RESTORE = "restore", "Restore load block"
    SET_POINT = "set_point", "Change set point"
    START = "start", "Start data transmission"
    STOP = "stop", "Stop data transmission"
    SEND_HEADER = "send_header", "Send header frame"
    SEND_CFG1 = "send_cfg1", "Send CFG-1"
    SEND_CFG2 = "send_cfg2", "Send CFG-2"
    SEND_CFG3 = "send_cfg3", "Send CFG-3"


class Command(models.Model):
    """One command to a controllable device (IEC 60870-5-104) or a C37.118 stream, and its progress."""

    class State(models.TextChoices):
        SELECTED = "selected", "Selected (awaiting execute)"
        EXECUTING = "executing", "Sent to the device"
        COMPLETED = "completed", "Completed"
        CONFIRMED = "confirmed", "Confirmed by the device (no status reported)"
        FAILED = "failed", "Failed"
        TIMEOUT = "timeout", "Timed out"
        REFUSED = "refused", "Refused"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Selection expired"

    ACTIVE_STATES = (State.SELECTED, State.EXECUTING)

    device = models.ForeignKey(
        ControllableDevice, on_delete=models.PROTECT, null=True, blank=True, related_name="commands"
    )
    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, null=True, blank=True, related_name="commands")
    action = models.CharField(max_length=20, choices=Action.choices)
    value = models.FloatField(null=True, blank=True, help_text="Set point in MW for set-point commands.")
    origin = models.CharField(max_length=12, choices=Origin.choices, default=Origin.OPERATOR)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="control_commands"
    )
    scheme = models.ForeignKey(
        "control.Scheme", on_delete=models.PROTECT, null=True, blank=True, related_name="commands"
    )
    reason = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.SELECTED, db_index=True)
    detail = models.TextField(blank=True)
    device_state = models.CharField(max_length=40, blank=True, help_text="State the device reported last.")
    # Set while the command holds its target (selected or executing): one active command per target.
    active_target = models.CharField(max_length=40, null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="When an unexecuted selection lapses.")
    detected_at = models.DateTimeField(null=True, blank=True, help_text="When the triggering detection was made.")
    sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(device__isnull=True) | models.Q(stream__isnull=True),
                name="command_has_one_target",
            ),
        ]

    @property
    def target(self) -> ControllableDevice | Stream | None:
        """Return the device or stream the command is for."""
        return self.device if self.device_id is not None else self.stream

    @property
    def is_active(self) -> bool:
        """Tell whether the command still holds its target."""
        return self.state in self.ACTIVE_STATES

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_action_display()} {self.target} ({self.state})"


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit record."""


class AuditQuerySet(models.QuerySet["AuditRecord"]):
    """A queryset that can add audit records but never change or delete them."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit records cannot be changed.")

    def delete(self) -> NoReturn:  # type: ignore[override]
        raise AppendOnlyError("Audit records cannot be deleted.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit records cannot be changed.")

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit records cannot be changed.")


class AuditRecord(models.Model):
    """One entry of the append-only control log: who did what to which target, why, when, with what outcome."""

    class Outcome(models.TextChoices):
        SELECTED = "selected", "Selected"
        REFUSED = "refused", "Refused"
        SENT = "sent", "Sent"
        COMPLETED = "completed", "Completed"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed"
        TIMEOUT = "timeout", "Timed out"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"
        TRIGGERED = "triggered", "Scheme triggered"
        DRY_RUN = "dry_run", "Dry run (not sent)"
        BLOCKED = "blocked", "Suppressed by supervisory block"
        RATE_LIMITED = "rate_limited", "Suppressed by rate limit"
        ARMED = "armed", "Scheme armed"
        DISARMED = "disarmed", "Scheme disarmed"
        BLOCK_SET = "block_set", "Supervisory block set"
        BLOCK_CLEARED = "block_cleared", "Supervisory block cleared"
        MODE_CHANGED = "mode_changed", "Scheme mode changed"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor = models.CharField(max_length=150, help_text="User name or scheme name, kept as written.")
    origin = models.CharField(max_length=12, choices=Origin.choices)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="Target owner."
    )
    command = models.ForeignKey(Command, on_delete=models.PROTECT, null=True, blank=True, related_name="audit")
    device = models.ForeignKey(
        ControllableDevice, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_records"
    )
    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    scheme = models.ForeignKey(
        "control.Scheme", on_delete=models.PROTECT, null=True, blank=True, related_name="audit_records"
    )
    target = models.CharField(max_length=150, help_text="Target name, kept as written.")
    action = models.CharField(max_length=20)
    value = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True)
    outcome = models.CharField(max_length=14, choices=Outcome.choices, db_index=True)
    detail = models.TextField(blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit records cannot be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit records cannot be deleted.")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}: {self.outcome}"


class DeviceState(models.Model):
    """The last state a device reported (breaker position, load block connected, set point)."""

    device = models.OneToOneField(
        ControllableDevice, on_delete=models.CASCADE, primary_key=True, related_name="control_state"
    )
    state = models.CharField(max_length=40, default="unknown")
    value = models.FloatField(null=True, blank=True, help_text="Set point in MW, where the device has one.")
    updated_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=20, default="command", help_text="command or poll")

    def __str__(self) -> str:
        return f"{self.device}: {self.state}"


class Scheme(models.Model):
    """An automatic countermeasure: a trigger, staged actions, arming, a supervisory block and rate limits."""

    class Quantity(models.TextChoices):
        NONE = "", "None (event kinds only)"
        FREQUENCY = "frequency_hz", "Frequency (Hz)"
        ROCOF = "rocof_hz_per_s", "ROCOF (Hz/s)"
        MAGNITUDE = "magnitude_pu", "Voltage magnitude (pu)"
        ANGLE_SEPARATION = "angle_separation_deg", "Corridor angle separation (deg)"

    class Comparison(models.TextChoices):
        BELOW = "below", "below"
        ABOVE = "above", "above"

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="control_schemes")
    event_kinds = models.CharField(
        max_length=200,
        blank=True,
        help_text="Detector event kinds, comma-separated (e.g. under_frequency). With a quantity, an event of "
        "these kinds must be active for the condition to count; without one, a raised event fires the stages.",
    )
    event_quantity = models.CharField(
        max_length=60,
        blank=True,
        help_text="Event-only schemes: the event quantity compared with each stage threshold "
        "(e.g. angle_separation_deg). Empty: every stage fires on the event.",
    )
    quantity = models.CharField(max_length=24, choices=Quantity.choices, blank=True, default=Quantity.NONE)
    comparison = models.CharField(max_length=5, choices=Comparison.choices, default=Comparison.BELOW)
    pmus = models.ManyToManyField(
        Pmu, blank=True, related_name="control_schemes", help_text="PMUs watched; none selected: every PMU."
    )
    corridor = models.ForeignKey(
        Corridor, on_delete=models.PROTECT, null=True, blank=True, help_text="Angle separation: the PMU pair."
    )
    min_pmus = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="How many PMUs must meet the condition at once."
    )
    reset_ms = models.PositiveIntegerField(
        default=5000, help_text="The condition must stay clear this long before fired stages re-arm."
    )
    rate_limit_count = models.PositiveSmallIntegerField(
        default=3, help_text="At most this many stage firings per window (0: no limit)."
    )
    rate_limit_window_s = models.PositiveIntegerField(default=600, validators=[MinValueValidator(1)])
    dry_run = models.BooleanField(default=True, help_text="Log what the scheme would do; send nothing.")
    armed = models.BooleanField(default=False, editable=False)
    armed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False, related_name="+"
    )
    armed_at = models.DateTimeField(null=True, blank=True, editable=False)
    blocked = models.BooleanField(default=False, editable=False, help_text="Supervisory block: no action is taken.")
    blocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False, related_name="+"
    )
    block_reason = models.CharField(max_length=200, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("arm_scheme", "Can arm, disarm and block countermeasure schemes")]

    def clean(self) -> None:
        if self.quantity == self.Quantity.ANGLE_SEPARATION and self.corridor_id is None:
            raise ValidationError({"corridor": "Angle separation needs a corridor (the PMU pair)."})
        if not self.quantity and not self.event_kinds.strip():
            raise ValidationError("Give a quantity, event kinds, or both.")

    def event_kind_list(self) -> list[str]:
        """Return the event kinds as a list."""
        return [kind.strip() for kind in self.event_kinds.split(",") if kind.strip()]

    def __str__(self) -> str:
        return self.name


class SchemeStage(models.Model):
    """One stage of a scheme: a threshold held for a duration fires the stage's actions."""

    scheme = models.ForeignKey(Scheme, on_delete=models.CASCADE, related_name="stages")
    number = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(99)])
    threshold = models.FloatField(
        null=True, blank=True, help_text="In the scheme's quantity unit (or the event quantity's)."
    )
    duration_ms = models.PositiveIntegerField(default=0, help_text="How long the condition must hold.")

    class Meta:
        ordering = ["scheme", "number"]
        constraints = [models.UniqueConstraint(fields=["scheme", "number"], name="scheme_stage_number_unique")]

    def clean(self) -> None:
        if self.scheme_id is not None and self.scheme.quantity and self.threshold is None:
            raise ValidationError({"threshold": "A scheme with a quantity needs a threshold on every stage."})

    def __str__(self) -> str:
        return f"{self.scheme} stage {self.number}"


class SchemeAction(models.Model):
    """One command a stage sends: shed a load block, open a tie line, change a set point."""

    scheme = models.ForeignKey(Scheme, on_delete=models.CASCADE, related_name="actions")
    stage = models.PositiveSmallIntegerField(help_text="Stage number this action belongs to.")
    device = models.ForeignKey(ControllableDevice, on_delete=models.PROTECT, related_name="scheme_actions")
    action = models.CharField(max_length=20, choices=Action.choices)
    value = models.FloatField(null=True, blank=True, help_text="Set point in MW for set-point actions.")

    class Meta:
        ordering = ["scheme", "stage", "pk"]

    def clean(self) -> None:
        from wams.control.vocabulary import actions_for_device

        if self.device_id is None:
            return
        if self.action not in actions_for_device(self.device.kind):
            allowed = ", ".join(actions_for_device(self.device.kind))
            raise ValidationError({"action": f"A {self.device.get_kind_display()} accepts: {allowed}."})
        if self.action == Action.SET_POINT and self.value is None:
            raise ValidationError({"value": "A set-point action needs a value in MW."})
        if self.scheme_id is not None and self.device.owner_id != self.scheme.owner_id:
            raise ValidationError({"device": "A scheme acts only on devices its organisation owns."})

    def __str__(self) -> str:
        return f"{self.scheme} stage {self.stage}: {self.action} {self.device}"
