from django.apps import AppConfig


class ControlConfig(AppConfig):
    name = "wams.control"
    label = "control"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Countermeasure schemes hear of detector events (after commit) and see every aligned snapshot
        # of a pdc process; elsewhere the snapshot hook is simply never called.
        from wams.control.countermeasures import on_event_changed, snapshot_handler
        from wams.detection.services import event_changed
        from wams.pdc.hooks import register_snapshot_handler

        event_changed.connect(on_event_changed, dispatch_uid="wams.control.countermeasures")
        register_snapshot_handler(snapshot_handler)
