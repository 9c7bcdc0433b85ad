"""Typed readers of environment variables that fail loudly on bad values."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Return a string variable, or the default; fail if neither exists."""
    environ = os.environ if environ is None else environ
    value = environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"{name} must be set")
        return default
    return value


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    """Return a boolean variable (1/0, true/false, yes/no, on/off)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(
    name: str,
    default: int,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Return an integer variable within [minimum, maximum]."""
    environ = os.environ if environ is None else environ
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}")
    return value


def env_list(name: str, default: list[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Return a comma-separated list variable without empty items."""
    environ = os.environ if environ is None else environ
    raw = environ.get(name)
    if raw is None:
        return list(default)
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise ImproperlyConfigured(f"{name} is set but empty; give a comma-separated list")
    return items


def env_redis_url(name: str = "REDIS_URL", environ: Mapping[str, str] | None = None) -> str | None:
    """Return a redis:// or rediss:// URL, or None when unset (embedded mode)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in {"redis", "rediss", "unix"} or not (parsed.hostname or parsed.path):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a redis://host:port/db URL")
    return raw


def env_database(name: str, sqlite_path: Path, environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Return a Django DATABASES entry from a URL, or a SQLite file when unset."""
    import dj_database_url

    environ = os.environ if environ is None else environ
    raw = environ.get(name, "").strip()
    if not raw:
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(sqlite_path),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    scheme = urlparse(raw).scheme
    if scheme not in {"postgres", "postgresql", "sqlite"}:
        raise ImproperlyConfigured(
            f"{name}={raw!r}: unsupported scheme {scheme!r} (use postgres://... or sqlite:///...)"
        )
    try:
        config = dict(dj_database_url.parse(raw, conn_max_age=60))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a valid database URL: {exc}") from None
    if scheme != "sqlite" and not config.get("NAME"):
        raise ImproperlyConfigured(f"{name}={raw!r} names no database")
    return config


def env_choice(name: str, default: str, choices: tuple[str, ...], environ: Mapping[str, str] | None = None) -> str:
    """Return a string variable that must be one of `choices`."""
    value = env_str(name, default, environ)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def env_event_loop(name: str = "WAMS_PDC_EVENT_LOOP", environ: Mapping[str, str] | None = None) -> str:
    """Return "uvloop" or "asyncio": default uvloop when installed; fail if uvloop is asked for and missing."""
    import importlib.util

    has_uvloop = importlib.util.find_spec("uvloop") is not None
    value = env_choice(name, "uvloop" if has_uvloop else "asyncio", ("uvloop", "asyncio"), environ)
    if value == "uvloop" and not has_uvloop:
        raise ImproperlyConfigured(f"{name}=uvloop but uvloop is not installed (pip install uvloop, or use asyncio)")
    return value


_RATE_PERIODS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def env_rate(name: str, default: str, environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """Return a rate limit "N/m" (also /s, /h, /d, or "N/5m") as (requests, period_s); None for "off"."""
    raw = env_str(name, default, environ).strip().lower()
    if raw in {"off", "0", "none"}:
        return None
    count, _, period = raw.partition("/")
    multiple, unit = period[:-1], period[-1:]
    if not count.isdigit() or int(count) < 1 or unit not in _RATE_PERIODS_S or not (multiple.isdigit() or not multiple):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate (e.g. 600/m, 30/m, 10/s, 100/5m or off)")
    seconds = _RATE_PERIODS_S[unit] * (int(multiple) if multiple else 1)
    if seconds < 1:
        raise ImproperlyConfigured(f"{name}={raw!r}: the period must be at least one second")
    return int(count), seconds


def env_proxy_ssl_header(
    name: str = "WAMS_PROXY_SSL_HEADER", environ: Mapping[str, str] | None = None
) -> tuple[str, str] | None:
    """Return Django's SECURE_PROXY_SSL_HEADER for a header name such as X-Forwarded-Proto (value https); None when unset."""
    raw = env_str(name, "", environ).strip()
    if not raw:
        return None
    if not all(part.isalnum() for part in raw.split("-")):
        raise ImproperlyConfigured(f"{name}={raw!r} is not an HTTP header name (e.g. X-Forwarded-Proto)")
    return "HTTP_" + raw.upper().replace("-", "_"), "https"
