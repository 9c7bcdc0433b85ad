from django.apps import AppConfig


class PdcConfig(AppConfig):
    name = "wams.pdc"
    label = "pdc"
    default_auto_field = "django.db.models.BigAutoField"
