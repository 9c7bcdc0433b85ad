"""Factories of the API tests: applications with tokens, a clean recent window."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import make_organisation
from wams.api.auth import issue_token
from wams.api.models import Application
from wams.grid.models import Organisation
from wams.historian.recent import clear_recent_memory


def make_application(organisation: Organisation | None = None, name: str | None = None) -> tuple[Application, str]:
    """Create an application and return it with its bearer token."""
    organisation = organisation or make_organisation()
    application = Application.objects.create(name=name or f"App of {organisation.code}", organisation=organisation)
    return application, issue_token(application.pk)


def bearer(token: str) -> dict[str, str]:
    """Return the test-client keyword that sends the token."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture(autouse=True)
def _clean_recent_window() -> Iterator[None]:
    clear_recent_memory()
    yield
    clear_recent_memory()


@pytest.fixture(autouse=True)
def _tasks_in_process(settings: Any) -> Iterator[None]:
    """Run Celery tasks in the test's process whatever REDIS_URL says: these tests are about delivery logic."""
    from wams.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved
