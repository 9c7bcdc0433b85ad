"""Admin for the pdc: output streams (provisioned) and link states (read-only, written by the pdc)."""

from django import forms
from django.contrib import admin

from wams.pdc import models


class OutputStreamForm(forms.ModelForm):
    class Meta:
        model = models.OutputStream
        fields = ["name", "idcode", "host", "port", "reporting_rate_fps", "pmus", "enabled"]

    def clean(self):  # type: ignore[no-untyped-def]
        cleaned = super().clean() or {}
        rate = cleaned.get("reporting_rate_fps")
        pmus = cleaned.get("pmus")
        if rate and pmus is not None:
            models.check_output_members(rate, pmus.select_related("stream"))
        return cleaned


@admin.register(models.OutputStream)
class OutputStreamAdmin(admin.ModelAdmin):
    form = OutputStreamForm
    list_display = ["name", "idcode", "host", "port", "reporting_rate_fps", "pmu_count", "enabled"]
    list_filter = ["enabled", "reporting_rate_fps"]
    search_fields = ["name", "idcode"]
    filter_horizontal = ["pmus"]

    @admin.display(description="PMUs")
    def pmu_count(self, obj: models.OutputStream) -> int:
        return obj.pmus.count()


@admin.register(models.LinkState)
class LinkStateAdmin(admin.ModelAdmin):
    list_display = [
        "stream",
        "state",
        "path",
        "shard",
        "rate_fps",
        "latency_ms",
        "frames_received",
        "frames_bad",
        "frames_late",
        "gaps",
        "reconnects",
        "last_frame_at",
        "updated_at",
    ]
    list_filter = ["state", "shard"]
    search_fields = ["stream__name"]
    readonly_fields = [f.name for f in models.LinkState._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
