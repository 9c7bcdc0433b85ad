"""Issue an application's API token (creating the application if asked); the token is printed once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from wams.api.auth import issue_token
from wams.api.models import Application
from wams.grid.models import Organisation


class Command(BaseCommand):
    help = "Issue a new API token for an application (its old token stops working)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Application name.")
        parser.add_argument("--create", metavar="ORG_CODE", help="Create the application for this organisation.")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        application = Application.objects.filter(name=name).first()
        if application is None:
            if not options["create"]:
                raise CommandError(f"no application {name!r} (use --create ORG_CODE to create it)")
            organisation = Organisation.objects.filter(code=options["create"]).first()
            if organisation is None:
                raise CommandError(f"no organisation with code {options['create']!r}")
            application = Application.objects.create(name=name, organisation=organisation)
        self.stdout.write(issue_token(application.pk))
