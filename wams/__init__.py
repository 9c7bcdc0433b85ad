"""WAMS: wide-area measurement and control for power grids."""

from wams.memory import configure_process

configure_process()  # every process importing WAMS (manage.py, ASGI, Celery), before its threads start

from wams.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
