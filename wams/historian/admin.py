"""Read-only admin for stored chunks: what is kept, for which PMU, over which time, at what size."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from wams.historian.models import Chunk


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["pmu", "start", "end", "n_samples", "n_late", "downsampled_fps", "size_bytes"]
    list_filter = ["downsampled_fps", "pmu__stream"]
    list_select_related = ["pmu"]
    search_fields = ["pmu__station_name"]
    ordering = ["-start_us"]
    show_full_result_count = False
    exclude = ["data"]
    readonly_fields = [
        "pmu",
        "start",
        "end",
        "start_us",
        "end_us",
        "n_samples",
        "n_late",
        "n_phasors",
        "n_analogs",
        "n_digitals",
        "downsampled_fps",
        "size_bytes",
        "created_at",
    ]

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).defer("data")

    @admin.display(description="first sample (UTC)", ordering="start_us")
    def start(self, chunk: Chunk) -> str:
        return f"{chunk.start_at:%Y-%m-%d %H:%M:%S.%f}"

    @admin.display(description="last sample (UTC)", ordering="end_us")
    def end(self, chunk: Chunk) -> str:
        return f"{chunk.end_at:%Y-%m-%d %H:%M:%S.%f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Chunk | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Chunk | None = None) -> bool:
        return False
