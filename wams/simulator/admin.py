"""Admin for simulator requests: trigger scenarios and device actions while `simulate_grid` runs."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from wams.simulator.models import SimulatorRequest


@admin.register(SimulatorRequest)
class SimulatorRequestAdmin(admin.ModelAdmin):
    list_display = ("requested_at", "action", "scenario", "target", "status", "applied_at", "run_id")
    list_filter = ("action", "status", "scenario")
    readonly_fields = ("status", "requested_at", "applied_at", "run_id", "message")
    fields = ("action", "scenario", "target", "params", *readonly_fields)
    actions = ("request_again",)

    @admin.action(description="Request the selected actions again")
    def request_again(self, request: HttpRequest, queryset: QuerySet[SimulatorRequest]) -> None:
        for item in queryset:
            SimulatorRequest.objects.create(
                action=item.action, scenario=item.scenario, target=item.target, params=item.params
            )
        self.message_user(request, f"{queryset.count()} request(s) queued for the running simulator.")
