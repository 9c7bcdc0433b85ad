"""Admin for countermeasure schemes (configure, arm, block, dry run) and the read-only control log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from wams.control import models
from wams.control.services import (
    arm_scheme,
    disarm_scheme,
    set_dry_run,
    set_supervisory_block,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Show rows; never add, change or delete them here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "origin", "action", "target", "value", "outcome", "reason", "detail"]
    list_filter = ["outcome", "origin", "action", "organisation"]
    search_fields = ["actor", "target", "reason", "detail"]
    date_hierarchy = "at"


@admin.register(models.Command)
class CommandAdmin(ReadOnlyAdmin):
    list_display = ["pk", "created_at", "origin", "user", "scheme", "action", "device", "stream", "value", "state"]
    list_filter = ["state", "origin", "action"]
    search_fields = ["device__name", "stream__name", "reason", "detail"]
    date_hierarchy = "created_at"


@admin.register(models.DeviceState)
class DeviceStateAdmin(ReadOnlyAdmin):
    list_display = ["device", "state", "value", "updated_at", "source"]
    search_fields = ["device__name"]


class StageInline(admin.TabularInline):
    model = models.SchemeStage
    extra = 0


class ActionInline(admin.TabularInline):
    model = models.SchemeAction
    extra = 0
    autocomplete_fields = ["device"]


def _apply(request: HttpRequest, queryset: QuerySet[models.Scheme], change: Any, label: str, *args: Any) -> None:
    """Apply one arming service to each selected scheme and report each outcome."""
    for scheme in queryset:
        result = change(scheme.pk, request.user, *args, f"{label} from the admin")
        level = messages.SUCCESS if result.ok else messages.ERROR
        messages.add_message(request, level, f"{scheme.name}: {result.detail}")


@admin.register(models.Scheme)
class SchemeAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "quantity", "event_kinds", "armed", "blocked", "dry_run", "updated_at"]
    list_filter = ["armed", "blocked", "dry_run", "owner"]
    search_fields = ["name", "description"]
    filter_horizontal = ["pmus"]
    readonly_fields = ["armed", "armed_by", "armed_at", "blocked", "blocked_by", "block_reason", "updated_at"]
    inlines = [StageInline, ActionInline]
    actions = ["arm", "disarm", "block", "unblock", "to_dry_run", "to_live"]
    fieldsets = [
        (None, {"fields": ["name", "description", "owner"]}),
        (
            "Trigger",
            {"fields": ["event_kinds", "event_quantity", "quantity", "comparison", "pmus", "corridor", "min_pmus"]},
        ),
        ("Limits", {"fields": ["reset_ms", "rate_limit_count", "rate_limit_window_s"]}),
        (
            "Arming (change with the list actions)",
            {"fields": ["dry_run", "armed", "armed_by", "armed_at", "blocked", "blocked_by", "block_reason"]},
        ),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The mode of an existing scheme changes through the audited actions only.
        fields = list(self.readonly_fields)
        return [*fields, "dry_run"] if obj is not None else fields

    @admin.action(description="Arm the selected schemes")
    def arm(self, request: HttpRequest, queryset: QuerySet[models.Scheme]) -> None:
        _apply(request, queryset, arm_scheme, "armed")

    @admin.action(description="Disarm the selected schemes")
    def disarm(self, request: HttpRequest, queryset: QuerySet[models.Scheme]) -> None:
        _apply(request, queryset, disarm_scheme, "disarmed")

    @admin.action(description="Set the supervisory block")
    def block(self, request: HttpRequest, queryset: QuerySet[models.Scheme]) -> None:
        _apply(request, queryset, set_supervisory_block, "blocked", True)

    @admin.action(description="Clear the supervisory block")
    def unblock(self, request: HttpRequest, queryset: QuerySet[models.Scheme]) -> None:
        _apply(request, queryset, set_supervisory_block, "unblocked", False)

    @admin.action(description="Switch to dry run (log only)")
    def to_dry_run(self, request: HttpRequest, queryset: QuerySet[models.Scheme]) -> None:
        _apply(request, queryset, set_dry_run, "dry run", True)

    @admin.action(description="Switch to live (send commands)")
    def to_live(self, request: HttpRequest, queryset: QuerySet[models.Scheme]) -> None:
        _apply(request, queryset, set_dry_run, "live", False)
