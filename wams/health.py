"""Health checks: the status for load balancers; database, Redis, workers and pdc links for staff."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def check_database() -> dict[str, Any]:
    """Run a trivial query against the default database."""
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        return {"status": "down", "error": str(exc)[:200]}
    return {"status": "up", "vendor": connection.vendor, "ms": round((time.perf_counter() - started) * 1000, 2)}


def check_redis() -> dict[str, Any]:
    """Ping Redis with a short timeout; embedded mode has none."""
    if not settings.REDIS_URL:
        return {"status": "not_configured", "mode": "embedded"}
    import redis

    started = time.perf_counter()
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        return {"status": "down", "error": str(exc)[:200]}
    return {"status": "up", "ms": round((time.perf_counter() - started) * 1000, 2)}


def check_workers() -> dict[str, Any]:
    """Ask Celery workers to answer a ping; embedded mode runs tasks in-process."""
    if settings.EMBEDDED:
        return {"status": "up", "mode": "in-process"}
    from wams.celery import app

    try:
        replies = app.control.ping(timeout=0.5) or []
    except Exception as exc:  # noqa: BLE001 - broker down or unreachable
        return {"status": "down", "error": str(exc)[:200]}
    names = sorted(name for reply in replies for name in reply)
    return {"status": "up" if names else "down", "workers": names}


def check_links() -> dict[str, Any]:
    """Summarise pdc link states from the database."""
    from wams.pdc.models import LinkState
    from wams.pdc.reports import link_payload

    try:
        rows = list(LinkState.objects.select_related("stream", "path").order_by("stream__name"))
    except Exception as exc:  # noqa: BLE001 - database down is reported by check_database
        return {"status": "unknown", "error": str(exc)[:200]}
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    links = [{**link_payload(row.report()), "updated_at": row.updated_at.isoformat()} for row in rows]
    status = "up" if rows and counts.get("streaming", 0) == len(rows) else ("degraded" if rows else "none")
    return {"status": status, "counts": counts, "links": links}


def may_see_details(request: HttpRequest) -> bool:
    """Tell whether the caller is a staff user logged in with a session (engineers, not load balancers)."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def healthz(request: HttpRequest) -> JsonResponse:
    """Return {"status": "up"|"down"} (503 when the database or a configured Redis is down); details for staff.

    Anyone (a load balancer) gets the status alone; a staff session also gets the database, Redis, worker and
    pdc-link reports, which name every stream.
    """
    report: dict[str, Any] = {"database": check_database(), "redis": check_redis()}
    critical_down = report["database"]["status"] == "down" or report["redis"]["status"] == "down"
    status = "down" if critical_down else "up"
    http_status = 503 if critical_down else 200
    if not may_see_details(request):
        return JsonResponse({"status": status}, status=http_status)
    report["workers"] = check_workers()
    report["pdc_links"] = check_links()
    report["status"] = status
    return JsonResponse(report, status=http_status)
