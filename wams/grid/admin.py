"""Admin site for provisioning the grid: organisations, substations, devices, paths, policies."""

from django.contrib import admin, messages

from wams.grid import models


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(models.Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "role"]
    list_filter = ["role"]
    search_fields = ["name", "code"]
    inlines = [MembershipInline]


class BusInline(admin.TabularInline):
    model = models.Bus
    extra = 0


@admin.register(models.Substation)
class SubstationAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "voltage_level_kv", "area", "owner", "latitude", "longitude"]
    list_filter = ["owner", "area", "voltage_level_kv"]
    search_fields = ["name", "code"]
    inlines = [BusInline]


@admin.register(models.Bus)
class BusAdmin(admin.ModelAdmin):
    list_display = ["number", "name", "substation", "base_kv"]
    list_filter = ["substation__area", "base_kv"]
    search_fields = ["name", "number", "substation__name"]
    autocomplete_fields = ["substation"]


@admin.register(models.Line)
class LineAdmin(admin.ModelAdmin):
    list_display = ["name", "from_bus", "to_bus", "rating_mva", "is_transformer", "is_tie_line"]
    list_filter = ["is_transformer", "is_tie_line"]
    search_fields = ["name"]
    autocomplete_fields = ["from_bus", "to_bus"]


class PmuInline(admin.StackedInline):
    model = models.Pmu
    extra = 0
    show_change_link = True
    autocomplete_fields = ["substation", "bus", "owner"]
    filter_horizontal = ["shared_with"]


class PathInline(admin.TabularInline):
    model = models.CommunicationPath
    extra = 0


@admin.register(models.Stream)
class StreamAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "idcode", "reporting_rate_fps", "transport", "tls", "enabled", "owner"]
    list_filter = ["kind", "transport", "tls", "enabled", "owner", "reporting_rate_fps"]
    search_fields = ["name", "idcode"]
    inlines = [PmuInline, PathInline]
    actions = ["enable_streams", "disable_streams"]

    @admin.action(description="Enable (connect) selected streams")
    def enable_streams(self, request, queryset):  # type: ignore[no-untyped-def]
        self._switch(request, queryset, enabled=True)

    @admin.action(description="Disable (disconnect) selected streams")
    def disable_streams(self, request, queryset):  # type: ignore[no-untyped-def]
        self._switch(request, queryset, enabled=False)

    def _switch(self, request, queryset, enabled: bool) -> None:  # type: ignore[no-untyped-def]
        from django.core.exceptions import PermissionDenied

        from wams.grid.services import set_stream_enabled

        done, refused = 0, []
        for stream in queryset:
            try:
                set_stream_enabled(stream.pk, enabled, by_user=request.user)
                done += 1
            except PermissionDenied as exc:
                refused.append(f"{stream}: {exc}")
        self.message_user(request, f"{done} stream(s) {'enabled' if enabled else 'disabled'}.")
        if refused:
            self.message_user(request, "Refused: " + "; ".join(refused), level=messages.ERROR)


class ChannelInline(admin.TabularInline):
    model = models.Channel
    extra = 0
    autocomplete_fields = ["bus", "line"]


@admin.register(models.Pmu)
class PmuAdmin(admin.ModelAdmin):
    list_display = ["station_name", "idcode", "stream", "substation", "nominal_frequency_hz", "owner", "enabled"]
    list_filter = ["owner", "nominal_frequency_hz", "phasor_format", "phasor_notation", "enabled", "substation__area"]
    search_fields = ["station_name", "idcode", "substation__name", "stream__name"]
    autocomplete_fields = ["stream", "substation", "bus", "owner"]
    filter_horizontal = ["shared_with"]
    inlines = [ChannelInline]


@admin.register(models.Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["pmu", "kind", "order", "name", "measures", "unit", "scale"]
    list_filter = ["kind", "measures", "unit"]
    search_fields = ["name", "pmu__station_name"]
    autocomplete_fields = ["pmu", "bus", "line"]


@admin.register(models.CommunicationPath)
class CommunicationPathAdmin(admin.ModelAdmin):
    list_display = [
        "stream",
        "name",
        "host",
        "port",
        "transport",
        "medium",
        "nominal_latency_ms",
        "priority",
        "enabled",
    ]
    list_filter = ["medium", "transport", "enabled"]
    search_fields = ["name", "host", "stream__name"]
    autocomplete_fields = ["stream"]


@admin.register(models.Corridor)
class CorridorAdmin(admin.ModelAdmin):
    list_display = ["name", "from_pmu", "to_pmu", "angle_limit_deg"]
    search_fields = ["name"]
    autocomplete_fields = ["from_pmu", "to_pmu"]


@admin.register(models.ControllableDevice)
class ControllableDeviceAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "substation",
        "load_mw",
        "iec104_host",
        "iec104_port",
        "common_address",
        "ioa",
        "tagged_out",
        "enabled",
    ]
    list_filter = ["kind", "tagged_out", "enabled", "owner", "substation__area"]
    search_fields = ["name", "substation__name"]
    autocomplete_fields = ["substation", "owner", "line", "bus"]


@admin.register(models.DeviceGroup)
class DeviceGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "description"]
    search_fields = ["name"]
    filter_horizontal = ["pmus"]


@admin.register(models.StoragePolicy)
class StoragePolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "max_bytes", "max_age_days", "downsample_after_days", "downsample_rate_fps"]
    search_fields = ["name"]
    filter_horizontal = ["pmus", "groups"]
