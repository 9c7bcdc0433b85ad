from django.apps import AppConfig


class PdcConfig(AppConfig):
    name = "wams.pdc"
    label = "pdc"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A stream switched off shows as disabled (not as a link down) as soon as the switch commits.
        from wams.grid.services import stream_switched
        from wams.pdc.services import mark_stream_switched

        stream_switched.connect(mark_stream_switched, dispatch_uid="wams.pdc.mark_stream_switched")
