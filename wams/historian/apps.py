from django.apps import AppConfig


class HistorianConfig(AppConfig):
    name = "wams.historian"
    label = "historian"
    default_auto_field = "django.db.models.BigAutoField"
