"""Celery tasks of the API: thin adapters around fan-out, periodic reports and webhook delivery."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from wams.api import delivery, incidents, services


@shared_task(name="wams.api.tasks.fan_out_event", ignore_result=True)
def fan_out_event(event_id: int, change: str) -> int:
    """Create and send the deliveries of one event change; return how many."""
    return services.fan_out_event(event_id, change)


@shared_task(name="wams.api.tasks.fan_out_incident", ignore_result=True)
def fan_out_incident(incident_id: int, change: str) -> int:
    """Create and send the deliveries of one incident change; return how many."""
    return incidents.fan_out_incident(incident_id, change)


@shared_task(name="wams.api.tasks.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_id: int) -> str:
    """Make one attempt at a delivery if it is due; return its status (retries come from deliver_due)."""
    return delivery.deliver(delivery_id)


@shared_task(name="wams.api.tasks.deliver_due", ignore_result=True)
def deliver_due() -> int:
    """Attempt every delivery that is due (first tries in embedded mode, retries, abandoned sends)."""
    ids = delivery.due_deliveries(timezone.now())
    for delivery_id in ids:
        delivery.deliver(delivery_id)
    return len(ids)


@shared_task(name="wams.api.tasks.send_periodic_reports", ignore_result=True)
def send_periodic_reports() -> int:
    """Create the periodic reports that are due; return how many."""
    return services.send_due_reports()


@shared_task(name="wams.api.tasks.prune_deliveries", ignore_result=True)
def prune_deliveries() -> int:
    """Forget old delivered and failed deliveries; return how many."""
    return services.prune_deliveries()
