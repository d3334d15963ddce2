from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from dashboard.models import Membership, Organization, Role
from volumes.services import regions_seed

DEMO_PASSWORD = "berth-demo"


class Command(BaseCommand):
    help = "Create the regions, one local node in each, and a demo organization and user. Safe to run twice."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        nodes = regions_seed(data_root=settings.NODE_DATA_ROOT)
        user, created = get_user_model().objects.get_or_create(
            username="demo", defaults={"email": "demo@example.com"}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        org, _ = Organization.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
        Membership.objects.get_or_create(organization=org, user=user, defaults={"role": Role.ADMIN})
        self.stdout.write(
            f"Regions: {', '.join(n.region.code for n in nodes)}; nodes: {', '.join(n.name for n in nodes)}"
        )
        self.stdout.write(self.style.SUCCESS(f"Log in as demo / {DEMO_PASSWORD} (organization 'demo')"))
