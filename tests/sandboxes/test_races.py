from __future__ import annotations

import pytest

from dashboard.errors import Conflict
from dashboard.models import Organization, Via
from dashboard.services import Actor
from sandboxes import services
from sandboxes.models import Sandbox
from tests.volumes.test_races import race
from volumes.models import Attachment, Node, Region, Volume, VolumeState
from volumes.services import volume_create

pytestmark = pytest.mark.django_db(transaction=True)
actor = Actor(via=Via.API)


def test_twenty_threads_racing_to_attach_one_volume_read_write_leave_one_winner(org: Organization) -> None:
    # A node no worker serves: a winner's start must not fail and release the volume mid-round.
    region = Region.objects.create(code="tst", name="Test")
    Node.objects.create(name="tst-1", region=region, data_root="/nonexistent", capacity=10**12)
    volume = volume_create(org=org, slug="contested", region="tst", actor=actor)
    Volume.objects.filter(id=volume.id).update(state=VolumeState.AVAILABLE)
    for _ in range(20):
        outcomes = race(
            *[
                lambda: services.sandbox_create(
                    org=org, region="tst", volumes={"/w": "contested"}, actor=actor
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
