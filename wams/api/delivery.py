"""Webhook delivery: a signed POST per Delivery row, claimed so that no two workers send it at once.

The body is the delivery's JSON (sorted keys, compact); the header `X-WAMS-Signature` carries
`sha256=<hex HMAC-SHA256 of the body keyed with the subscription secret>`. A non-2xx answer or a
network error is retried with exponential backoff until MAX_ATTEMPTS, then the delivery fails. A URL
the guard (wams/api/urlguard.py) refuses at sending time fails at once, with the reason and no
connection made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
from typing import Any

from django.db.models import F, Q
from django.utils import timezone

from wams.api.models import Delivery
from wams.api.urlguard import UnresolvedHost, UnsafeUrl, check_webhook_url

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
TIMEOUT_S = 5.0
BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 300.0
LEASE_S = TIMEOUT_S + 25.0  # a claim older than this belongs to a worker that died
SIGNATURE_HEADER = "X-WAMS-Signature"


def body_of(payload: dict[str, Any]) -> bytes:
    """Return the exact bytes sent (and signed) for a payload."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign(body: bytes, secret: str) -> str:
    """Return the signature header value of a body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str) -> bool:
    """Tell whether a signature header value matches the body (what a receiving application does)."""
    return hmac.compare_digest(sign(body, secret), signature)


def backoff_s(attempts: int) -> float:
    """Return the wait before the next attempt after `attempts` failed ones."""
    return float(min(BACKOFF_FIRST_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to the host's checked address: Host header from the URL, socket to `address`."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._create_connection = lambda _addr, timeout, source: socket.create_connection(  # type: ignore[assignment]
            (address, port), timeout, source
        )


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to the checked address; TLS still verifies the certificate for the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._create_connection = lambda _addr, timeout, source: socket.create_connection(  # type: ignore[assignment]
            (address, port), timeout, source
        )


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float = TIMEOUT_S) -> int:
    """POST a body to a URL the guard accepts; return the HTTP status (raise OSError on network failure).

    The guard runs now (not only when subscribing) and the socket goes to the address it checked, so a
    DNS answer that changed since cannot point the request elsewhere. Redirects are answers, not hops.
    """
    checked = check_webhook_url(url)
    kind = _PinnedHTTPSConnection if checked.scheme == "https" else _PinnedHTTPConnection
    connection = kind(checked.host, checked.port, checked.address, timeout_s)
    try:
        connection.request("POST", checked.target, body=body, headers=headers)
        return int(connection.getresponse().status)
    finally:
        connection.close()


def claim(delivery_id: int, now: dt.datetime) -> bool:
    """Take a due delivery for sending (or one whose sender died); return whether this caller has it."""
    due = Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Delivery.Status.SENDING, lease_until__lt=now
    )
    taken = (
        Delivery.objects.filter(due, pk=delivery_id)
        .filter(subscription__enabled=True, subscription__application__enabled=True)
        .update(
            status=Delivery.Status.SENDING, lease_until=now + dt.timedelta(seconds=LEASE_S), attempts=F("attempts") + 1
        )
    )
    return taken == 1


def deliver(delivery_id: int) -> str:
    """Make one attempt at a delivery if it is due; return its status afterwards."""
    now = timezone.now()
    if not claim(delivery_id, now):
        return str(Delivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first() or "missing")
    delivery = Delivery.objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    body = body_of(delivery.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "WAMS-webhook/1",
        SIGNATURE_HEADER: sign(body, subscription.secret),
        "X-WAMS-Delivery": str(delivery.pk),
        "X-WAMS-Attempt": str(delivery.attempts),
    }
    code: int | None = None
    error = ""
    refused = False
    try:
        code = post(subscription.webhook_url, body, headers)
    except UnresolvedHost as exc:  # DNS may come back: retried like a network error
        error = f"{type(exc).__name__}: {exc}"[:300]
    except UnsafeUrl as exc:  # nothing was sent: the URL (or what its host resolves to now) is not public
        error, refused = f"refused: {exc}"[:300], True
    except (OSError, ValueError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    done = timezone.now()
    if code is not None and 200 <= code < 300:
        status = Delivery.Status.DELIVERED
        fields: dict[str, Any] = {"delivered_at": done, "last_error": ""}
    else:
        error = error or f"HTTP {code}"
        final = refused or delivery.attempts >= MAX_ATTEMPTS
        status = Delivery.Status.FAILED if final else Delivery.Status.PENDING
        fields = {"next_attempt_at": done + dt.timedelta(seconds=backoff_s(delivery.attempts)), "last_error": error}
        logger.warning(
            "delivery %d to %s: %s (attempt %d)", delivery.pk, subscription.webhook_url, error, delivery.attempts
        )
    Delivery.objects.filter(pk=delivery.pk).update(status=status, lease_until=None, last_status_code=code, **fields)
    return str(status)


def due_deliveries(now: dt.datetime, limit: int = 100) -> list[int]:
    """Return the ids of deliveries due for an attempt (pending and due, or abandoned mid-send)."""
    due = Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Delivery.Status.SENDING, lease_until__lt=now
    )
    return list(Delivery.objects.filter(due).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
