from typing import Any

from django.apps import AppConfig


def forward_incident(sender: Any, incident_id: int, change: str, **kwargs: Any) -> None:
    """Publish a changed incident to the pages while wams.live has no incident event type of its own.

    Once `wams.live` defines `EVENT_INCIDENT`, the detection services publish incidents themselves
    and this does nothing.
    """
    from wams import live
    from wams.detection.models import Incident
    from wams.detection.services import incident_payload

    if hasattr(live, "EVENT_INCIDENT"):
        return
    incident = Incident.objects.select_related("bus", "substation", "line").filter(pk=incident_id).first()
    if incident is not None:
        live.publish(live.GROUP_ALARMS, live.EVENT_ALARM, {**incident_payload(incident), "change": change})


class DashboardsConfig(AppConfig):
    name = "dashboards"
    label = "dashboards"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from wams.detection.services import incident_changed

        incident_changed.connect(forward_incident, dispatch_uid="dashboards.forward_incident")
