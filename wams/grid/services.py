"""Access rules over the grid model: roles and organisation scoping."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db.models import Q, QuerySet

from wams.grid.models import ControllableDevice, Organisation, Pmu

ROLE_VIEWER = "viewer"
ROLE_OPERATOR = "operator"
ROLE_ENGINEER = "engineer"
ROLE_ADMIN = "admin"
ROLES = (ROLE_VIEWER, ROLE_OPERATOR, ROLE_ENGINEER, ROLE_ADMIN)

AnyUser = AbstractBaseUser | AnonymousUser


def ensure_role_groups() -> None:
    """Create the role groups if they are missing."""
    for role in ROLES:
        Group.objects.get_or_create(name=role)


def has_role(user: AnyUser, *roles: str) -> bool:
    """Tell whether the user holds one of the roles (superusers hold all)."""
    if not user.is_authenticated or not user.is_active:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return user.groups.filter(name__in=roles).exists()  # type: ignore[union-attr,attr-defined]


def organisation_of(user: AnyUser) -> Organisation | None:
    """Return the user's organisation, or None."""
    if not user.is_authenticated:
        return None
    membership = getattr(user, "membership", None)
    return membership.organisation if membership is not None else None


def sees_everything(user: AnyUser) -> bool:
    """Superusers and users without an organisation in an admin role see every device."""
    return bool(getattr(user, "is_superuser", False))


def visible_pmus(user: AnyUser) -> QuerySet[Pmu]:
    """Return the PMUs a user may see: own organisation's and those shared with it."""
    pmus = Pmu.objects.select_related("stream", "substation", "owner")
    if not user.is_authenticated:
        return pmus.none()
    if sees_everything(user):
        return pmus.all()
    organisation = organisation_of(user)
    if organisation is None:
        return pmus.none()
    return pmus.filter(Q(owner=organisation) | Q(shared_with=organisation)).distinct()


def visible_devices(user: AnyUser) -> QuerySet[ControllableDevice]:
    """Return the controllable devices a user may see (their organisation's own)."""
    devices = ControllableDevice.objects.select_related("substation", "owner")
    if not user.is_authenticated:
        return devices.none()
    if sees_everything(user):
        return devices.all()
    organisation = organisation_of(user)
    if organisation is None:
        return devices.none()
    return devices.filter(owner=organisation)


def can_view_pmu(user: AnyUser, pmu_id: int) -> bool:
    """Tell whether the user may see one PMU."""
    return visible_pmus(user).filter(pk=pmu_id).exists()
