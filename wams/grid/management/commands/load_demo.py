"""Load the IEEE 39-bus demo topology and create the demo accounts."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from wams.grid.loaders import DemoPorts, load_demo_topology
from wams.grid.models import Membership, Organisation
from wams.grid.services import ROLE_ADMIN, ROLE_OPERATOR, ROLE_VIEWER, ensure_role_groups

DEMO_ACCOUNTS = [
    # (username, role, organisation code, superuser)
    ("admin", ROLE_ADMIN, "netso", True),
    ("operator", ROLE_OPERATOR, "netso", False),
    ("viewer", ROLE_VIEWER, "netso", False),
    ("dso-operator", ROLE_OPERATOR, "pvdso", False),
]


class Command(BaseCommand):
    help = "Load the IEEE 39-bus New England demo topology (idempotent) and create demo accounts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Host where the simulated fleet listens.")
        parser.add_argument("--pmu-port-base", type=int, default=DemoPorts.pmu_port_base)
        parser.add_argument("--rtu-port-base", type=int, default=DemoPorts.rtu_port_base)
        parser.add_argument("--no-accounts", action="store_true", help="Load the topology only.")
        parser.add_argument(
            "--password", default=None, help="Password for every demo account (default: random, printed)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ports = DemoPorts(
            host=options["host"], pmu_port_base=options["pmu_port_base"], rtu_port_base=options["rtu_port_base"]
        )
        counts = load_demo_topology(ports)
        self.stdout.write("Demo topology: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        ensure_role_groups()
        if options["no_accounts"]:
            return
        self.stdout.write(self.style.SUCCESS("Demo accounts (username / password / role):"))
        for username, role, org_code, superuser in DEMO_ACCOUNTS:
            password = options["password"] or secrets.token_urlsafe(9)
            create_account(username, password, role, org_code, superuser)
            self.stdout.write(f"  {username:<13} {password:<14} {role}")


@transaction.atomic
def create_account(username: str, password: str, role: str, org_code: str, superuser: bool) -> None:
    """Create or reset one demo account with its role group and organisation."""
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username)
    user.is_staff = superuser or role in {ROLE_ADMIN}
    user.is_superuser = superuser
    user.set_password(password)
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    Membership.objects.update_or_create(user=user, defaults={"organisation": Organisation.objects.get(code=org_code)})
