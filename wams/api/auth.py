"""Application tokens: issued once, kept as a SHA-256 hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import transaction
from django.utils import timezone

from wams.api.models import Application

TOKEN_PREFIX = "wams"  # noqa: S105 - the public first part of every token, not a secret


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@transaction.atomic
def issue_token(application_id: int) -> str:
    """Give an application a new token (the old one stops working) and return it: it is never shown again."""
    application = Application.objects.select_for_update().get(pk=application_id)
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    application.token_prefix = prefix
    application.token_hash = _hash(token)
    application.token_issued_at = timezone.now()
    application.save(update_fields=["token_prefix", "token_hash", "token_issued_at"])
    return token


def authenticate(authorization: str) -> Application | None:
    """Return the enabled application an `Authorization: Bearer <token>` header names, or None."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    parts = token.split("_")
    if len(parts) < 3 or parts[0] != TOKEN_PREFIX:
        return None
    application = Application.objects.select_related("organisation").filter(token_prefix=parts[1]).first()
    if application is None or not application.enabled or not application.token_hash:
        return None
    if not hmac.compare_digest(application.token_hash, _hash(token)):
        return None
    now = timezone.now()
    if application.last_seen_at is None or (now - application.last_seen_at).total_seconds() > 60:
        Application.objects.filter(pk=application.pk).update(last_seen_at=now)
    return application
