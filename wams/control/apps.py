from django.apps import AppConfig


class ControlConfig(AppConfig):
    name = "wams.control"
    label = "control"
    default_auto_field = "django.db.models.BigAutoField"
