"""Applications that use the API, what they subscribe to, and every webhook delivery made to them."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from wams.detection.models import Event, Incident
from wams.grid.models import Organisation, Pmu


class Application(models.Model):
    """An external application (SCADA/EMS, planning, a DSO's tool) acting for one organisation.

    It authenticates with a bearer token of which only a SHA-256 hash is kept; the token is shown
    once, when issued. WAMS authenticates itself to the application by signing every webhook.
    """

    name = models.CharField(max_length=100, unique=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="applications")
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True, help_text="Untick to refuse its token and stop its deliveries.")
    token_prefix = models.CharField(max_length=16, unique=True, null=True, blank=True, editable=False)
    token_hash = models.CharField(max_length=64, blank=True, editable=False)
    token_issued_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    """What an application wants pushed to its webhook: periodic reports, or events as they happen."""

    class Kind(models.TextChoices):
        PERIODIC = "periodic", "Periodic report"
        EVENT = "event", "Event-based report"
        INCIDENT = "incident", "Incidents (one delivery per incident and per state change)"

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="subscriptions")
    name = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    period_s = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1.0), MaxValueValidator(86_400.0)],
        help_text="Periodic reports: seconds between reports.",
    )
    quantities = models.JSONField(
        default=list, blank=True, help_text="Periodic reports: channels (frequency_hz, phasor_0_magnitude, ...)."
    )
    event_kinds = models.JSONField(
        default=list, blank=True, help_text="Event or incident reports: kinds wanted; empty: all."
    )
    min_severity = models.CharField(max_length=10, choices=Event.Severity.choices, default=Event.Severity.WARNING)
    pmus = models.ManyToManyField(
        Pmu, blank=True, related_name="+", help_text="Empty: every PMU the application may see."
    )
    webhook_url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, editable=False, help_text="Signs each delivery (HMAC SHA-256).")
    enabled = models.BooleanField(default=True)
    next_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["application", "pk"]

    def __str__(self) -> str:
        return self.name or f"{self.application}: {self.get_kind_display()} #{self.pk}"


class Delivery(models.Model):
    """One webhook message to one subscription, with its attempts."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    change = models.CharField(
        max_length=30,
        help_text="Events: raised, escalated:<severity>, cleared; incidents: raised, updated, ended, acknowledged; "
        "or periodic.",
    )
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event", "change"],
                condition=Q(event__isnull=False),
                name="delivery_once_per_event_change",
            ),
            models.UniqueConstraint(
                fields=["subscription", "incident", "change"],
                condition=Q(incident__isnull=False) & ~Q(change="updated"),
                name="delivery_once_per_incident_change",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.change} to {self.subscription} ({self.status})"
