"""What `make demo` prints once the system starts: where to log in, how to start a disturbance, where things are."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.urls import reverse

from wams.grid.management.commands.load_demo import DEMO_ACCOUNTS

MANIFEST_NAME = "simulator-manifest.json"


def manifest_path() -> Path:
    """Return where the running simulator's manifest (run id, streams with their ports, RTUs) is written."""
    return Path(settings.VAR_DIR) / MANIFEST_NAME


def demo_accounts() -> list[tuple[str, str]]:
    """Return (username, role) of the demo accounts that exist, in load_demo's order."""
    names = [username for username, _role, _org, _superuser in DEMO_ACCOUNTS]
    try:
        existing = set(get_user_model().objects.filter(username__in=names).values_list("username", flat=True))
    except DatabaseError:  # not migrated yet: the banner still says where to go
        existing = set()
    return [(username, role) for username, role, _org, _superuser in DEMO_ACCOUNTS if username in existing]


def banner(base_url: str, *, scenario_command: str, scenario_note: str = "", manifest: Path | None = None) -> list[str]:
    """Return the start-up lines: the site, the login and its accounts, the Scenarios page and command."""
    base_url = base_url.rstrip("/")
    accounts = demo_accounts()
    login_url = base_url + reverse("login")
    if accounts:
        who = ", ".join(username if username == role else f"{username} ({role})" for username, role in accounts)
        login = [
            f"  Log in:      {login_url} as {who}",
            "               with the passwords load_demo printed (`manage.py load_demo --password PW` sets new ones)",
        ]
    else:
        login = [
            f"  Log in:      {login_url}",
            "               no demo account yet: `manage.py load_demo` creates them and prints their passwords",
        ]
    lines = [
        f"WAMS on {base_url}/ (Ctrl-C stops)",
        *login,
        f"  Disturbance: {base_url}{reverse('dashboards:scenarios')} (as admin) starts one in the running simulator,",
        f"               or from the start: `{scenario_command}`{' ' + scenario_note if scenario_note else ''}",
        "               (`manage.py help simulate_grid` lists the scenarios)",
        f"  Links:       {base_url}{reverse('dashboards:pmus')}; the log counts them every few seconds until all stream",
    ]
    if manifest is not None:
        lines.append(f"  Simulator:   manifest (run id, streams and their ports, RTUs) in {manifest} once it is up")
    return lines
