"""WAMS: wide-area measurement and control for power grids."""

from wams.celery import app as celery_app

__all__ = ["celery_app"]
