"""Admin for applications: tokens (shown once), subscriptions (secret shown once), deliveries."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from wams.api.auth import issue_token
from wams.api.models import Application, Delivery, Subscription


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fields = ["name", "kind", "period_s", "min_severity", "webhook_url", "enabled"]
    show_change_link = True


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "enabled", "token_issued_at", "last_seen_at"]
    list_filter = ["enabled", "organisation"]
    search_fields = ["name", "description"]
    readonly_fields = ["token_prefix", "token_issued_at", "last_seen_at", "created_at"]
    inlines = [SubscriptionInline]
    actions = ["issue_new_token"]

    def save_model(self, request: HttpRequest, obj: Application, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            token = issue_token(obj.pk)
            messages.warning(request, f"Token for {obj}: {token} - copy it now, it is not shown again.")

    @admin.action(description="Issue a new token (the old one stops working)")
    def issue_new_token(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        for application in queryset:
            token = issue_token(application.pk)
            messages.warning(request, f"Token for {application}: {token} - copy it now, it is not shown again.")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "application", "kind", "period_s", "min_severity", "webhook_url", "enabled"]
    list_filter = ["kind", "enabled", "application"]
    filter_horizontal = ["pmus"]
    readonly_fields = ["next_due_at", "created_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        if not change:
            obj.secret = secrets.token_hex(32)
        super().save_model(request, obj, form, change)
        if not change:
            messages.warning(request, f"Signing secret of {obj}: {obj.secret} - give it to the application now.")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "subscription", "change", "status", "attempts", "last_status_code", "last_error"]
    list_filter = ["status", "change"]
    readonly_fields = [
        "subscription",
        "event",
        "change",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    actions = ["retry_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = queryset.exclude(status=Delivery.Status.DELIVERED).update(
            status=Delivery.Status.PENDING, next_attempt_at=timezone.now(), attempts=0
        )
        messages.info(request, f"{count} deliveries will be retried within seconds.")
