"""Operator pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from wams.grid.services import visible_pmus


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """Show the overview page: map, frequency, alarms and link summary."""
    pmus = visible_pmus(request.user)
    return render(request, "dashboards/overview.html", {"pmus": pmus})
