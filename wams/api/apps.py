from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "wams.api"
    label = "api"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Report event and incident changes to subscribed applications."""
        from wams.api.incidents import on_incident_changed
        from wams.api.services import on_event_changed
        from wams.detection.services import event_changed, incident_changed

        event_changed.connect(on_event_changed, dispatch_uid="wams.api.on_event_changed")
        incident_changed.connect(on_incident_changed, dispatch_uid="wams.api.on_incident_changed")
