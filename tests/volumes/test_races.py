"""Races on PostgreSQL with real threads: each one must end in exactly one consistent outcome."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from dashboard.errors import BerthError, Conflict, NotFound
from dashboard.models import AuditEvent, Organization, Via
from dashboard.services import Actor
from tests.dataplane import require_data_plane
from volumes import services
from volumes.models import Volume, VolumeState
from volumes.nodes import driver_of

pytestmark = pytest.mark.django_db(transaction=True)
actor = Actor(via=Via.API)
MiB = 1024 * 1024


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same instant, each in its own thread with its own connection."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            outcomes[index] = call()
        except BerthError as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def purge_now() -> list[str]:
    """The beat's sweep followed at once by the node's purge of what it claimed."""
    claimed = services.volume_purge_sweep()
    for volume in Volume.objects.filter(id__in=claimed):
        services.volume_purge_run(volume_id=str(volume.id), generation=volume.generation)
    return claimed


def test_restore_against_purge_always_ends_in_one_outcome_the_storage_agrees_with(
    org: Organization, regions: list[Any]
) -> None:
    require_data_plane()
    node = regions[0]
    driver = driver_of(node)
    tally = {"restored": 0, "purged": 0}
    for _ in range(200):
        volume = Volume.objects.create(
            organization=org, slug="contested", region=node.region, node=node, capacity=64 * MiB,
            state=VolumeState.DELETED, deleted_at=timezone.now() - timedelta(days=1),
            purge_after=timezone.now() - timedelta(seconds=1), generation=1,
        )  # fmt: skip
        driver.volume_create(str(volume.id), 64 * MiB)
        restore, purge = race(
            lambda: services.volume_restore(volume_id=volume.id, org=org, actor=actor),  # noqa: B023
            purge_now,
        )
        volume.refresh_from_db()
        on_node = str(volume.id) in driver.inventory().volumes
        if volume.state == VolumeState.AVAILABLE:
            assert isinstance(restore, Volume) and purge == [] and on_node
            tally["restored"] += 1
            driver.volume_destroy(str(volume.id))
            Volume.objects.filter(id=volume.id).delete()
        else:
            assert volume.state == VolumeState.PURGED, volume.state
            assert isinstance(restore, Conflict) and purge == [str(volume.id)] and not on_node
            tally["purged"] += 1
    assert sum(tally.values()) == 200
    print(f"restore won {tally['restored']} rounds, purge won {tally['purged']}")


def test_two_concurrent_deletes_delete_once(org: Organization, regions: list[Any]) -> None:
    for round_ in range(20):
        volume = services.volume_create(org=org, slug=f"twice-{round_}", region="ord", actor=actor)
        Volume.objects.filter(id=volume.id).update(state=VolumeState.AVAILABLE)
        first, second = race(
            lambda: services.volume_delete(org=org, id_or_slug=volume.slug, actor=actor),  # noqa: B023
            lambda: services.volume_delete(org=org, id_or_slug=str(volume.id), actor=actor),  # noqa: B023
        )
        assert sorted(type(o).__name__ for o in (first, second)) == ["NotFound", "Volume"]
        assert any(isinstance(o, NotFound) for o in (first, second))
        volume.refresh_from_db()
        assert volume.state == VolumeState.DELETED and volume.generation == 1
        assert AuditEvent.objects.filter(action="volume.delete", target_id=str(volume.id)).count() == 1


def test_two_concurrent_creates_of_one_slug_make_one_volume(org: Organization, regions: list[Any]) -> None:
    for round_ in range(20):
        slug = f"dup-{round_}"
        outcomes = race(*[lambda: services.volume_create(org=org, slug=slug, region="ord", actor=actor)] * 4)  # noqa: B023
        assert sum(isinstance(o, Volume) for o in outcomes) == 1
        assert all(isinstance(o, (Volume, Conflict)) for o in outcomes)
        assert Volume.objects.filter(slug=slug).count() == 1
