"""Settings of the Daphne subprocess in the control browser test: the test settings, with /control/ mounted."""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.control.urls"
ASGI_APPLICATION = "tests.control.asgi.application"
