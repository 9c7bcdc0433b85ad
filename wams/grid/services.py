"""Access rules over the grid model (roles, organisation scoping) and switching streams on and off."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.dispatch import Signal

from wams.grid.models import ControllableDevice, Organisation, Pmu, Stream, Substation

ROLE_VIEWER = "viewer"
ROLE_OPERATOR = "operator"
ROLE_ENGINEER = "engineer"
ROLE_ADMIN = "admin"
ROLES = (ROLE_VIEWER, ROLE_OPERATOR, ROLE_ENGINEER, ROLE_ADMIN)

AnyUser = AbstractBaseUser | AnonymousUser
logger = logging.getLogger(__name__)


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


# --- continuous connectivity ---------------------------------------------------------------------

stream_switched = Signal()  # sent after commit: stream_id, enabled, by (a user, or None for an application)


def can_switch_stream(user: AnyUser, stream: Stream) -> bool:
    """Tell whether a user may switch a stream's connectivity: operator or above, seeing its PMUs."""
    if not has_role(user, ROLE_OPERATOR, ROLE_ENGINEER, ROLE_ADMIN):
        return False
    if getattr(user, "is_superuser", False):
        return True
    return visible_pmus(user).filter(stream=stream).exists()


def set_stream_enabled(stream_id: int, enabled: bool, by_user: AnyUser | None = None) -> Stream:
    """Switch a stream's continuous connectivity on or off; the pdc follows within seconds.

    `by_user` None means an application or an internal mechanism (trusted caller); a user must be an
    operator (or engineer, admin) who sees the stream's PMUs, else PermissionDenied.
    """
    with transaction.atomic():
        stream = Stream.objects.select_for_update().get(pk=stream_id)
        if by_user is not None and not can_switch_stream(by_user, stream):
            raise PermissionDenied(f"{by_user} may not switch stream {stream}")
        if stream.enabled != enabled:
            stream.enabled = enabled
            stream.save(update_fields=["enabled"])
        who = "an application" if by_user is None else str(by_user)
        logger.info("stream %s %s by %s", stream, "enabled" if enabled else "disabled", who)
        transaction.on_commit(
            lambda: stream_switched.send_robust(sender=Stream, stream_id=stream_id, enabled=enabled, by=by_user)
        )
    return stream
