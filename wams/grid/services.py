"""Access rules over the grid model: roles and organisation scoping."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db.models import Q, QuerySet

from wams.grid.models import ControllableDevice, Organisation, Pmu, Substation

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


# --- one redaction rule ------------------------------------------------------------------------
# A viewer (a user, or an application of an organisation) sees its organisation's PMUs, those shared
# with it, and the substations it owns or where it sees a PMU. Everything else of other
# organisations - names, ids, figures naming them - is left out of pages, API answers, websocket
# messages and errors, and a refused action on it reads exactly like one on a missing object.


@dataclass(frozen=True)
class Visibility:
    """The ids one viewer may see (everything for superusers)."""

    pmu_ids: frozenset[int]
    substation_ids: frozenset[int]
    everything: bool = False

    def shows_all(self, pmu_ids: Iterable[int], substation_ids: Iterable[int] = ()) -> bool:
        """Tell whether every one of these PMUs and substations is visible."""
        if self.everything:
            return True
        return all(p in self.pmu_ids for p in pmu_ids) and all(s in self.substation_ids for s in substation_ids)

    def visible_pmus(self, pmu_ids: Iterable[int]) -> list[int]:
        """Keep the visible PMU ids, in order."""
        return [p for p in pmu_ids if self.everything or p in self.pmu_ids]

    def visible_substations(self, substation_ids: Iterable[int]) -> list[int]:
        """Keep the visible substation ids, in order."""
        return [s for s in substation_ids if self.everything or s in self.substation_ids]


def organisation_visibility(organisation_id: int | None) -> Visibility:
    """Return what an organisation's users and applications may see."""
    if organisation_id is None:
        return Visibility(frozenset(), frozenset())
    pmus = Pmu.objects.filter(Q(owner_id=organisation_id) | Q(shared_with=organisation_id))
    pmu_ids = frozenset(pmus.values_list("pk", flat=True))
    own = Substation.objects.filter(Q(owner_id=organisation_id) | Q(pmus__in=list(pmu_ids)))
    return Visibility(pmu_ids, frozenset(own.values_list("pk", flat=True)))


def user_visibility(user: AnyUser) -> Visibility:
    """Return what a user may see."""
    if not user.is_authenticated:
        return Visibility(frozenset(), frozenset())
    if sees_everything(user):
        return Visibility(frozenset(), frozenset(), everything=True)
    organisation = organisation_of(user)
    return organisation_visibility(organisation.pk if organisation is not None else None)
