"""What the navigation of every page shows for the user's role."""

from __future__ import annotations

from django import template

from dashboards import access
from wams.grid.services import AnyUser

register = template.Library()


@register.simple_tag
def nav_roles(user: AnyUser) -> dict[str, bool]:
    """Return which role-bound links the user gets: control (operators, admins), scenarios (admins)."""
    return {"operate": access.can_operate(user), "administer": access.can_administer(user)}
