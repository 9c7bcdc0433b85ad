"""Arm, disarm, block and switch the mode of countermeasure schemes, with permission and a log entry."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from wams.control.models import AuditRecord, Origin, Scheme
from wams.control.services.audit import Actor, write_audit
from wams.grid.services import ROLE_ADMIN, ROLE_OPERATOR, AnyUser, has_role, organisation_of, sees_everything


@dataclass(frozen=True)
class SchemeChange:
    """The outcome of an arming request."""

    ok: bool
    detail: str


def may_arm(user: AnyUser, scheme: Scheme) -> str | None:
    """Return why the user may not arm, disarm or block the scheme, or None."""
    if not user.is_authenticated or not user.is_active:
        return "not logged in"
    if not (has_role(user, ROLE_OPERATOR, ROLE_ADMIN) or user.has_perm("control.arm_scheme")):  # type: ignore[union-attr,attr-defined]
        return f"user {user.get_username()} may not arm schemes (operator or admin role, or the arm permission)"
    if sees_everything(user):
        return None
    organisation = organisation_of(user)
    if organisation is None or organisation.pk != scheme.owner_id:
        return "no such scheme"  # what a missing scheme gets: nothing said about other organisations
    return None


def readiness(scheme: Scheme) -> str | None:
    """Return why a scheme cannot be armed (no stages, actions on foreign devices, ...), or None."""
    stages = {stage.number: stage for stage in scheme.stages.all()}
    if not stages:
        return "the scheme has no stages"
    actions = list(scheme.actions.select_related("device"))
    if not actions:
        return "the scheme has no actions"
    for action in actions:
        if action.stage not in stages:
            return f"an action names stage {action.stage}, which does not exist"
        if action.device.owner_id != scheme.owner_id:
            return f"the device of action #{action.pk} belongs to another organisation"
    if scheme.quantity and any(stage.threshold is None for stage in stages.values()):
        return "every stage needs a threshold"
    return None


def arm_scheme(scheme_id: int, user: AnyUser, reason: str = "") -> SchemeChange:
    """Arm a scheme: from now on its stages act (or log, in dry-run mode)."""
    return _change(scheme_id, user, reason, "arm")


def disarm_scheme(scheme_id: int, user: AnyUser, reason: str = "") -> SchemeChange:
    """Disarm a scheme: it evaluates nothing until armed again."""
    return _change(scheme_id, user, reason, "disarm")


def set_supervisory_block(scheme_id: int, user: AnyUser, blocked: bool, reason: str = "") -> SchemeChange:
    """Set or clear the supervisory block: a blocked scheme logs its firings and sends nothing."""
    return _change(scheme_id, user, reason, "block" if blocked else "unblock")


def set_dry_run(scheme_id: int, user: AnyUser, dry_run: bool, reason: str = "") -> SchemeChange:
    """Switch between dry run (log what it would do) and live (send commands)."""
    return _change(scheme_id, user, reason, "dry_run" if dry_run else "live")


OUTCOMES = {
    "arm": AuditRecord.Outcome.ARMED,
    "disarm": AuditRecord.Outcome.DISARMED,
    "block": AuditRecord.Outcome.BLOCK_SET,
    "unblock": AuditRecord.Outcome.BLOCK_CLEARED,
    "dry_run": AuditRecord.Outcome.MODE_CHANGED,
    "live": AuditRecord.Outcome.MODE_CHANGED,
}


def _change(scheme_id: int, user: AnyUser, reason: str, what: str) -> SchemeChange:
    """Apply one arming change under permission, log it (refusals too) and reload the rules."""
    with transaction.atomic():
        scheme = Scheme.objects.select_for_update().filter(pk=scheme_id).first()
        if scheme is None:
            return SchemeChange(False, "no such scheme")
        actor = Actor(Origin.OPERATOR, user)
        refusal = may_arm(user, scheme) or (readiness(scheme) if what in ("arm", "live") else None)
        if refusal:
            write_audit(actor, AuditRecord.Outcome.REFUSED, action=what, scheme=scheme, reason=reason, detail=refusal)
            return SchemeChange(False, refusal)
        detail = _apply(scheme, user, what, reason)
        scheme.save()
        write_audit(actor, OUTCOMES[what], action=what, scheme=scheme, reason=reason, detail=detail)
    from wams.control.countermeasures import reload_schemes

    transaction.on_commit(reload_schemes)
    return SchemeChange(True, detail)


def _apply(scheme: Scheme, user: AnyUser, what: str, reason: str) -> str:
    """Change the scheme's flags; return a description."""
    if what == "arm":
        scheme.armed, scheme.armed_by, scheme.armed_at = True, user, timezone.now()  # type: ignore[assignment]
    elif what == "disarm":
        scheme.armed = False
    elif what == "block":
        scheme.blocked, scheme.blocked_by, scheme.block_reason = True, user, reason[:200]  # type: ignore[assignment]
    elif what == "unblock":
        scheme.blocked, scheme.blocked_by, scheme.block_reason = False, None, ""
    else:
        scheme.dry_run = what == "dry_run"
    mode = "dry run" if scheme.dry_run else "live"
    flags = ("armed" if scheme.armed else "disarmed") + (", blocked" if scheme.blocked else "")
    return f"{flags}, {mode}"
