from __future__ import annotations

from typing import Any

import pytest

from dashboard.errors import Conflict
from dashboard.models import Organization, Via
from dashboard.services import Actor
from sandboxes import services
from sandboxes.models import Sandbox
from tests.volumes.test_races import race
from volumes.models import Attachment, Volume, VolumeState
from volumes.services import volume_create

pytestmark = pytest.mark.django_db(transaction=True)
actor = Actor(via=Via.API)


def test_twenty_threads_racing_to_attach_one_volume_read_write_leave_one_winner(
    org: Organization, regions: list[Any]
) -> None:
    volume = volume_create(org=org, slug="contested", region="ord", actor=actor)
    Volume.objects.filter(id=volume.id).update(state=VolumeState.AVAILABLE)
    for _ in range(20):
        outcomes = race(
            *[
                lambda: services.sandbox_create(
                    org=org, region="ord", volumes={"/w": "contested"}, actor=actor
                )
            ]
            * 20
        )
        winners = [o for o in outcomes if isinstance(o, Sandbox)]
        assert len(winners) == 1, outcomes
        assert all(
            isinstance(o, Conflict) and "is already attached" in o.message
            for o in outcomes
            if o not in winners
        )
        assert Attachment.objects.live().filter(volume=volume).count() == 1
        Attachment.objects.live().update(detached_at="2026-01-01T00:00:00Z")
        Sandbox.objects.filter(id=winners[0].id).update(state="stopped")
