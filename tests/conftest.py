"""Factories shared by every test package."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.contrib.auth.models import Group

from wams.grid.models import Membership, Organisation, Pmu, Stream, Substation
from wams.grid.services import ensure_role_groups

_counter = itertools.count(1)


def make_organisation(code: str | None = None, role: str = "tso") -> Organisation:
    """Create an organisation with a unique code."""
    code = code or f"org{next(_counter)}"
    return Organisation.objects.create(name=f"Organisation {code}", code=code, role=role)


def make_substation(owner: Organisation | None = None, **fields: Any) -> Substation:
    """Create a substation owned by an organisation."""
    n = next(_counter)
    values: dict[str, Any] = {
        "name": f"Substation {n}",
        "code": f"SUB{n}",
        "voltage_level_kv": 345.0,
        "latitude": 42.0,
        "longitude": -71.0,
        "owner": owner or make_organisation(),
    }
    values.update(fields)
    return Substation.objects.create(**values)


def make_stream(owner: Organisation | None = None, **fields: Any) -> Stream:
    """Create a stream with one PMU-sized default configuration."""
    n = next(_counter)
    values: dict[str, Any] = {"name": f"Stream {n}", "idcode": n, "owner": owner or make_organisation()}
    values.update(fields)
    return Stream.objects.create(**values)


def make_pmu(stream: Stream | None = None, substation: Substation | None = None, **fields: Any) -> Pmu:
    """Create a PMU in a stream at a substation."""
    stream = stream or make_stream()
    substation = substation or make_substation(owner=stream.owner)
    values: dict[str, Any] = {
        "stream": stream,
        "idcode": next(_counter),
        "station_name": f"PMU{next(_counter)}",
        "substation": substation,
        "owner": stream.owner,
    }
    values.update(fields)
    return Pmu.objects.create(**values)


def make_user(django_user_model: Any, role: str, organisation: Organisation | None = None, **fields: Any) -> Any:
    """Create a user with a role group and, optionally, an organisation."""
    ensure_role_groups()
    user = django_user_model.objects.create_user(
        username=fields.pop("username", f"user{next(_counter)}"), password=fields.pop("password", "pw-123456"), **fields
    )
    user.groups.add(Group.objects.get(name=role))
    if organisation is not None:
        Membership.objects.create(user=user, organisation=organisation)
    return user


@pytest.fixture
def admin_client_logged(client: Any, django_user_model: Any) -> Any:
    """Return a test client logged in as a superuser."""
    # force_login: client.login() authenticates without a request, which the lockout backend (axes) refuses.
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.org", "pw-123456"))
    return client
