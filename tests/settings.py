"""Test settings: the real settings with a test secret key."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")

from wams.settings import *  # noqa: F403
from wams.settings import DATABASES, VAR_DIR

if str(DATABASES["default"]["ENGINE"]).endswith("sqlite3"):
    # A file, not memory: live-server and browser tests reach the database from other threads.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Rate limits off unless a test turns them on (with its own counter prefix): tests reuse user and
# application ids, so counters would carry over from one test to the next.
WAMS_API_RATE = WAMS_CONTROL_RATE = WAMS_PAGE_RATE = None
