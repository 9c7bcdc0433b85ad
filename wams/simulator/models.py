"""Requests to the running simulator, made from the admin and picked up by `simulate_grid`."""

from __future__ import annotations

from django.db import models

from wams.simulator.engine.scenarios import scenario_names


class SimulatorRequest(models.Model):
    """One thing for the running simulator to do: start a scenario or act on a simulated device.

    `simulate_grid` polls pending requests about once a second, applies them and records the
    outcome here (and, for scenarios, in its ground-truth JSON).
    """

    class Action(models.TextChoices):
        SCENARIO = "scenario", "Start a scenario"
        STREAM_RESTART = "stream_restart", "Restart a PMU stream"
        STREAM_RECONFIGURE = "stream_reconfigure", "Change a stream's configuration"
        PMU_FLAGS = "pmu_flags", "Set a PMU's STAT flags"
        PATH = "path", "Impair a communication path"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"

    action = models.CharField(max_length=20, choices=Action.choices, default=Action.SCENARIO)
    scenario = models.CharField(max_length=30, blank=True, choices=[(n, n.replace("_", " ")) for n in scenario_names()])
    target = models.CharField(
        max_length=100, blank=True, help_text="Stream name or IDCODE (device actions); path name after a colon."
    )
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text='Scenario parameters (e.g. {"bus": 16, "duration_s": 0.1}); flags '
        '{"sync_lost": true, "data_invalid": false}; reconfigure {"rate_fps": 60, "polar": false}; '
        'path {"delay_ms": 80, "jitter_ms": 10, "loss_pct": 5, "outage": false}.',
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    run_id = models.CharField(max_length=60, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        what = self.scenario if self.action == self.Action.SCENARIO else self.target
        return f"{self.get_action_display()}: {what}"
