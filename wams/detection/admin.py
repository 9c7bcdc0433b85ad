"""Admin for detection: detector thresholds per device group, events, their windows and fault records."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from wams.detection.faultrecords import FaultRecordError, ingest_burst
from wams.detection.models import (
    AlarmAction,
    DetectorSettings,
    Event,
    EventWindow,
    FaultRecord,
    Incident,
    OscillationAnalysis,
)


@admin.register(DetectorSettings)
class DetectorSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "priority",
        "enabled",
        "frequency_warning_deviation_hz",
        "rocof_warning_hz_per_s",
        "voltage_sag_warning_pu",
        "damping_warning_pct",
    ]
    list_filter = ["enabled"]
    fieldsets = [
        (None, {"fields": ["group", "priority", "enabled"]}),
        (
            "Frequency and ROCOF",
            {
                "fields": [
                    "frequency_warning_deviation_hz",
                    "frequency_alarm_deviation_hz",
                    "frequency_pickup_s",
                    "rocof_window_s",
                    "rocof_warning_hz_per_s",
                    "rocof_alarm_hz_per_s",
                ]
            },
        ),
        (
            "Voltage",
            {
                "fields": [
                    "voltage_sag_warning_pu",
                    "voltage_sag_alarm_pu",
                    "voltage_swell_warning_pu",
                    "voltage_swell_alarm_pu",
                    "voltage_pickup_s",
                ]
            },
        ),
        (
            "Angles, line trips, islanding, data quality",
            {
                "fields": [
                    "angle_warning_fraction",
                    "angle_pickup_s",
                    "line_trip_angle_step_deg",
                    "islanding_divergence_hz",
                    "islanding_alarm_divergence_hz",
                    "stale_after_s",
                ]
            },
        ),
        ("Oscillations", {"fields": ["damping_warning_pct", "damping_alarm_pct"]}),
        (
            "Sustained off-nominal states and alarms (grid-wide: taken from the defaults)",
            {
                "fields": [
                    "sustained_frequency_band_hz",
                    "sustained_frequency_delay_s",
                    "sustained_voltage_low_pu",
                    "sustained_voltage_high_pu",
                    "sustained_voltage_delay_s",
                    "alarm_deadband_s",
                ]
            },
        ),
    ]


class FaultRecordInline(admin.TabularInline):
    model = FaultRecord
    extra = 0
    fields = ["name", "station_name", "device_id", "trigger_at", "sample_rate_hz", "n_samples"]
    readonly_fields = ["name", "station_name", "device_id", "trigger_at", "sample_rate_hz", "n_samples"]
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["started_at", "kind", "severity", "state", "summary", "source", "window_kept"]
    list_filter = ["state", "severity", "kind", "source"]
    search_fields = ["summary", "kind", "dedup_key"]
    date_hierarchy = "started_at"
    readonly_fields = ["created_at", "updated_at", "acknowledged_by", "acknowledged_at", "dedup_key"]
    filter_horizontal = ["pmus", "substations"]
    inlines = [FaultRecordInline]

    @admin.display(description="window", boolean=True)
    def window_kept(self, event: Event) -> bool:
        window = EventWindow.objects.filter(event=event).only("complete").first()
        return bool(window and window.complete)


@admin.register(EventWindow)
class EventWindowAdmin(admin.ModelAdmin):
    list_display = ["event", "start_at", "end_at", "complete", "n_samples", "size_bytes", "captured_at"]
    list_filter = ["complete"]
    readonly_fields = ["event", "start_at", "end_at", "complete", "n_samples", "size_bytes", "captured_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that takes several files at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class UploadForm(forms.Form):
    records = MultipleFileField(help_text="COMTRADE .cfg and .dat files (pairs share a name), or .zip archives.")


@admin.register(FaultRecord)
class FaultRecordAdmin(admin.ModelAdmin):
    list_display = ["name", "station_name", "device_id", "trigger_at", "event", "sample_rate_hz", "n_samples"]
    list_filter = ["station_name"]
    search_fields = ["name", "station_name", "device_id"]
    exclude = ["cfg", "dat"]
    readonly_fields = [
        "name",
        "station_name",
        "device_id",
        "revision_year",
        "substation",
        "start_at",
        "trigger_at",
        "frequency_hz",
        "sample_rate_hz",
        "n_samples",
        "n_analogs",
        "n_digitals",
        "sha256",
        "uploaded_by",
        "uploaded_at",
    ]
    change_list_template = "admin/detection/faultrecord/change_list.html"

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).defer("cfg", "dat")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # records come in through the upload view

    def get_urls(self) -> list[Any]:
        upload = path("upload/", self.admin_site.admin_view(self.upload_view), name="detection_faultrecord_upload")
        return [upload, *super().get_urls()]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Take a burst of COMTRADE files and attach each record to its event."""
        if not self.has_change_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            files = [(f.name, f.read()) for f in form.cleaned_data["records"]]
            try:
                results = ingest_burst(files, uploaded_by=f"user {request.user}")
            except FaultRecordError as exc:
                messages.error(request, str(exc))
                results = []
            for result in results:
                if result.record is None:
                    messages.error(request, f"{result.name}: {result.error}")
                else:
                    state = "stored" if result.created else "already stored"
                    messages.success(request, f"{result.name}: {state}, attached to event {result.record.event_id}")
            return HttpResponseRedirect(reverse("admin:detection_faultrecord_changelist"))
        context = {**self.admin_site.each_context(request), "form": form, "title": "Upload fault records"}
        return TemplateResponse(request, "admin/detection/faultrecord/upload.html", context)


@admin.register(OscillationAnalysis)
class OscillationAnalysisAdmin(admin.ModelAdmin):
    list_display = ["analysed_at", "window_s", "n_pmus", "poorly_damped"]
    readonly_fields = ["analysed_at", "window_s", "n_pmus", "modes"]

    @admin.display(description="poorly damped modes")
    def poorly_damped(self, analysis: OscillationAnalysis) -> int:
        return len(analysis.modes)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class AlarmActionInline(admin.TabularInline):
    model = AlarmAction
    extra = 0
    can_delete = False
    fields = ["at", "action", "user", "comment"]
    readonly_fields = ["at", "action", "user", "comment"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    """Incidents and their alarms (read only: operators act on alarms through the services); alarm rates."""

    list_display = ["started_at", "kind", "severity", "state", "alarm_state", "substation", "raise_count"]
    list_filter = ["kind", "state", "severity"]
    date_hierarchy = "started_at"
    inlines = [AlarmActionInline]
    change_list_template = "admin/detection/incident/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="alarm")
    def alarm_state(self, obj: Incident) -> str:
        return obj.alarm_state

    def get_urls(self) -> list[Any]:
        own = [path("alarm-rates/", self.admin_site.admin_view(self.rates_view), name="detection_alarm_rates")]
        return own + super().get_urls()

    def rates_view(self, request: HttpRequest) -> HttpResponse:
        """Show alarms presented and acknowledged per operator per 10 minutes over the last `hours`."""
        import datetime as dt

        from django.utils import timezone

        from wams.detection.alarm_rates import alarm_rates

        try:
            hours = min(max(float(request.GET.get("hours", "24")), 0.2), 24 * 31)
        except ValueError:
            hours = 24.0
        until = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "title": "Alarm rates per operator",
            "rates": alarm_rates(until - dt.timedelta(hours=hours), until),
            "hours": hours,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/detection/incident/alarm_rates.html", context)
