from django.apps import AppConfig


class DetectionConfig(AppConfig):
    name = "wams.detection"
    label = "detection"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The fast detectors run on every aligned snapshot of a pdc process: installed when one starts.
        from wams.detection.live import install_live_detection
        from wams.pdc.hooks import register_startup

        register_startup(install_live_detection)
