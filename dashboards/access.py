"""Who may see and do what on the operator pages: roles and organisation scoping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponseBase

from wams.detection.models import Event
from wams.grid.models import Pmu, Substation
from wams.grid.services import (
    ROLE_ADMIN,
    ROLE_OPERATOR,
    ROLES,
    AnyUser,
    has_role,
    organisation_of,
    sees_everything,
    visible_devices,
    visible_pmus,
)

View = Callable[..., HttpResponseBase]


def can_view_pages(user: AnyUser) -> bool:
    """Tell whether the user holds any role that opens the operator pages."""
    return has_role(user, *ROLES)


def can_operate(user: AnyUser) -> bool:
    """Tell whether the user may acknowledge alarms and see device control panels."""
    return has_role(user, ROLE_OPERATOR, ROLE_ADMIN)


def page(view: View) -> View:
    """Require a logged-in user with a role; anyone else is sent to login or refused."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not can_view_pages(request.user):
            raise PermissionDenied("No role grants access to the operator pages.")
        return view(request, *args, **kwargs)

    return wrapped


def visible_substations(user: AnyUser) -> QuerySet[Substation]:
    """Return the substations owned by the user's organisation or hosting a PMU it may see."""
    substations = Substation.objects.all()
    if sees_everything(user):
        return substations
    organisation = organisation_of(user)
    pmu_ids = visible_pmus(user).values("pk")
    own = Q(owner=organisation) if organisation is not None else Q(pk__in=[])
    return substations.filter(own | Q(pmus__in=pmu_ids)).distinct()


def visible_events(user: AnyUser) -> QuerySet[Event]:
    """Return events naming a PMU or substation the user may see, or naming none at all."""
    events = Event.objects.all()
    if sees_everything(user):
        return events
    if not user.is_authenticated:
        return events.none()
    pmu_ids = visible_pmus(user).values("pk")
    substation_ids = visible_substations(user).values("pk")
    unscoped = Q(pmus__isnull=True) & Q(substations__isnull=True)
    return events.filter(Q(pmus__in=pmu_ids) | Q(substations__in=substation_ids) | unscoped).distinct()


def get_visible_pmu(user: AnyUser, pmu_id: int) -> Pmu:
    """Return a PMU the user may see, or raise 404 (another organisation's device does not exist for them)."""
    try:
        return visible_pmus(user).get(pk=pmu_id)
    except Pmu.DoesNotExist:
        raise Http404("No such PMU.") from None


def get_visible_substation(user: AnyUser, substation_id: int) -> Substation:
    """Return a substation the user may see, or raise 404."""
    try:
        return visible_substations(user).get(pk=substation_id)
    except Substation.DoesNotExist:
        raise Http404("No such substation.") from None


def get_visible_event(user: AnyUser, event_id: int) -> Event:
    """Return an event the user may see, or raise 404."""
    try:
        return visible_events(user).get(pk=event_id)
    except Event.DoesNotExist:
        raise Http404("No such event.") from None


@dataclass(frozen=True)
class Scope:
    """What one user may receive over a websocket: ids of PMUs, streams and devices."""

    pmu_ids: frozenset[int]
    stream_ids: frozenset[int]
    device_ids: frozenset[int]
    pmu_streams: dict[int, int] = field(default_factory=dict)
    everything: bool = False

    def allows_pmus(self, pmu_ids: list[int]) -> bool:
        """Tell whether every one of the PMUs is visible."""
        return all(pmu_id in self.pmu_ids for pmu_id in pmu_ids)


def load_scope(user: AnyUser) -> Scope:
    """Read the user's visible PMU, stream and device ids from the database (sync)."""
    pmus = list(visible_pmus(user).values_list("pk", "stream_id"))
    return Scope(
        pmu_ids=frozenset(pk for pk, _ in pmus),
        stream_ids=frozenset(stream for _, stream in pmus),
        device_ids=frozenset(visible_devices(user).values_list("pk", flat=True)),
        pmu_streams=dict(pmus),
        everything=sees_everything(user),
    )


def event_visible(user: AnyUser, event_id: int) -> bool:
    """Tell whether the user may see one event (sync)."""
    return visible_events(user).filter(pk=event_id).exists()


def can_administer(user: AnyUser) -> bool:
    """Tell whether the user may start simulator scenarios (admins and superusers)."""
    return has_role(user, ROLE_ADMIN)
