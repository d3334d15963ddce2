from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dashboard.errors import BerthError
from dashboard.models import Organization, Role, Via
from dashboard.services import Actor, token_create


class Command(BaseCommand):
    help = "Create an API token for an organization and print it (it is shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--user", help="the user the token acts for, in the audit log")
        parser.add_argument("--name", default="command line")
        parser.add_argument("--expires-in-days", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"There is no organization with the slug {options['org']!r}")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"There is no user {options['user']!r}")
        days = options["expires_in_days"]
        expires_at = timezone.now() + timedelta(days=days) if days else None
        try:
            _, secret = token_create(
                org=org,
                name=options["name"],
                role=options["role"],
                expires_at=expires_at,
                actor=Actor(user=user, via=Via.CLI),
            )
        except BerthError as error:
            raise CommandError(error.message) from None
        self.stdout.write(secret)
