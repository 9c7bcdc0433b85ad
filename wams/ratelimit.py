"""Request rate limits: fixed windows counted in Django's cache (Redis when configured).

Counting is django-ratelimit's (`get_usage`: an atomic add/incr per window, with the seconds left
in the window, which becomes the `Retry-After` header). Three limits use it: per application
token on /api/ (WAMS_API_RATE), per user on control actions (WAMS_CONTROL_RATE) and per user on
page reads (WAMS_PAGE_RATE, this module's middleware). A cache that cannot be reached lets the
request through (logged): the limits protect the service, they must not take it down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)

Rate = tuple[int, int]  # (requests, period in seconds), as wams.env.env_rate returns


@dataclass(frozen=True)
class Limited:
    """A request over its limit: how many were allowed, per how long, and when to come back."""

    limit: int
    period_s: int
    retry_after_s: int

    @property
    def message(self) -> str:
        """Return the sentence a client is told."""
        return f"rate limit of {self.limit} requests per {self.period_s} s exceeded: retry in {self.retry_after_s} s"


def hit(request: HttpRequest, group: str, key: str, rate: Rate | None) -> Limited | None:
    """Count one request of `key` in `group`; return Limited when it is over `rate` (None: no limit)."""
    if rate is None:
        return None
    try:
        usage = get_usage(request, group=group, key=lambda _group, _request: key, rate=rate, increment=True)
    except Exception:  # the cache is down: count nothing rather than refuse everyone
        logger.warning("rate limit %s not checked: the cache is unavailable", group, exc_info=True)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    if usage["limit"] == 0:  # the counter could not be read or written
        logger.warning("rate limit %s not checked: the cache refused the counter", group)
        return None
    return Limited(limit=rate[0], period_s=rate[1], retry_after_s=max(1, int(usage["time_left"])))


def with_retry_after(response: HttpResponse, limited: Limited) -> HttpResponse:
    """Mark a 429 response with the seconds until the window resets."""
    response["Retry-After"] = str(limited.retry_after_s)
    return response


def user_key(request: HttpRequest) -> str:
    """Return the rate-limit key of the logged-in user."""
    return f"user:{request.user.pk}"


PAGE_EXEMPT_PREFIXES = ("/api/", "/static/", "/healthz", "/accounts/", "/admin/")


class PageRateLimitMiddleware:
    """Limit page and history reads per logged-in user (WAMS_PAGE_RATE); the API counts per token itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            request.method in ("GET", "HEAD")
            and user is not None
            and user.is_authenticated
            and not request.path.startswith(PAGE_EXEMPT_PREFIXES)
        ):
            limited = hit(request, "pages", user_key(request), settings.WAMS_PAGE_RATE)
            if limited is not None:
                response = HttpResponse(limited.message + "\n", status=429, content_type="text/plain; charset=utf-8")
                return with_retry_after(response, limited)
        return self.get_response(request)
