from django.apps import AppConfig


class DetectionConfig(AppConfig):
    name = "wams.detection"
    label = "detection"
    default_auto_field = "django.db.models.BigAutoField"
