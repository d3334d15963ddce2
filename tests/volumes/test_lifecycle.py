"""A volume's life with a real worker over real Redis, on the real data plane."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from dashboard.errors import Conflict
from dashboard.models import AuditEvent, Organization, Via
from dashboard.services import Actor
from tests.dataplane import require_data_plane, wait_until, write_into_volume
from volumes import services
from volumes.models import Volume, VolumeState
from volumes.nodes import driver_of
from volumes.tasks import volume_purge

pytestmark = pytest.mark.django_db(transaction=True)
actor = Actor(via=Via.API)
HASH = (
    "head -c 3000000 /dev/urandom > /data/blob && mkdir -p /data/src && echo hello > /data/src/a.txt"
    " && sha256sum /data/blob /data/src/a.txt"
)
CHECK = "sha256sum /data/blob /data/src/a.txt"


@pytest.fixture(autouse=True)
def _data_plane() -> None:
    require_data_plane()


def available(volume: Volume) -> Volume:
    return wait_until(
        lambda: Volume.objects.filter(id=volume.id, state=VolumeState.AVAILABLE).first(),
        what=f"volume {volume.slug} to become available",
    )


def test_create_provisions_real_storage_of_exactly_that_size(
    org: Organization, regions: list[Any], celery_worker: subprocess.Popen[bytes]
) -> None:
    volume = available(
        services.volume_create(org=org, slug="data", region="ord", capacity="2GB", actor=actor)
    )
    driver = driver_of(volume.node)
    assert driver.inventory().volumes[str(volume.id)] == 2_000_000_000
    image = os.path.join(volume.node.data_root, "volumes", f"{volume.id}.img")
    assert os.stat(image).st_size == 2_000_000_000
    assert os.stat(image).st_blocks * 512 < 200_000_000  # sparse: only what ext4 wrote
    assert volume.used is not None and volume.used_at is not None
    assert AuditEvent.objects.filter(
        action="volume.available", target_id=str(volume.id), via="worker"
    ).exists()


def test_a_failed_provision_is_an_error_with_a_message_and_a_retry(
    org: Organization, regions: list[Any], celery_worker: subprocess.Popen[bytes]
) -> None:
    volume = services.volume_create(org=org, slug="doomed", region="iad", actor=actor)
    failed = wait_until(lambda: Volume.objects.filter(id=volume.id, state=VolumeState.ERROR).first()
                        if Volume.objects.filter(id=volume.id).update(capacity=1000) or True else None,
                        what="the volume to fail")  # fmt: skip
    assert "capacity" in failed.error.lower() or "small" in failed.error.lower(), failed.error
    Volume.objects.filter(id=volume.id).update(capacity=1_000_000_000)
    services.volume_retry(org=org, id_or_slug="doomed", actor=actor)
    assert available(volume).error == ""


def test_data_survives_the_grace_period_and_restore_returns_it_byte_for_byte(
    org: Organization, regions: list[Any], celery_worker: subprocess.Popen[bytes]
) -> None:
    volume = available(services.volume_create(org=org, slug="keep", region="ams", actor=actor))
    driver = driver_of(volume.node)
    before = write_into_volume(driver, str(volume.id), HASH)

    deleted = services.volume_delete(org=org, id_or_slug="keep", actor=actor)
    assert deleted.deleted_at is not None and deleted.purge_after is not None
    assert deleted.purge_after == deleted.deleted_at + settings.VOLUME_PURGE_GRACE
    assert not Volume.objects.for_org(org).live().filter(slug="keep").exists()
    almost = deleted.deleted_at + timedelta(hours=23, minutes=59)
    assert services.volume_purge_sweep(now=almost) == []
    assert str(volume.id) in driver.inventory().volumes

    restored = services.volume_restore(volume_id=volume.id, org=org, actor=actor)
    assert restored.state == VolumeState.AVAILABLE and restored.slug == "keep"
    assert write_into_volume(driver, str(volume.id), CHECK) == before


def test_after_purge_after_the_sweep_destroys_the_storage_and_restore_is_refused(
    org: Organization, regions: list[Any], celery_worker: subprocess.Popen[bytes]
) -> None:
    volume = available(services.volume_create(org=org, slug="gone", region="lax", actor=actor))
    driver = driver_of(volume.node)
    deleted = services.volume_delete(org=org, id_or_slug="gone", actor=actor)

    assert deleted.purge_after is not None
    claimed = services.volume_purge_sweep(now=deleted.purge_after + timedelta(seconds=1))
    assert claimed == [str(volume.id)]
    wait_until(
        lambda: Volume.objects.filter(id=volume.id, state=VolumeState.PURGED).exists(), what="the purge"
    )
    assert str(volume.id) not in driver.inventory().volumes
    tombstone = Volume.objects.get(id=volume.id)
    assert tombstone.purged_at is not None and tombstone.slug == "gone"
    with pytest.raises(
        Conflict, match='Volume "gone" was purged after its grace period ended; its data is gone'
    ):
        services.volume_restore(volume_id=volume.id, org=org, actor=actor)


def test_a_stale_purge_message_after_a_restore_does_nothing(
    org: Organization, regions: list[Any], celery_worker: subprocess.Popen[bytes]
) -> None:
    volume = available(services.volume_create(org=org, slug="stale", region="ord", actor=actor))
    deleted = services.volume_delete(org=org, id_or_slug="stale", actor=actor)
    old_generation = deleted.generation
    services.volume_restore(volume_id=volume.id, org=org, actor=actor)
    # A purge sent for the deleted generation, delivered late (say after a broker restart):
    Volume.objects.filter(id=volume.id).update(state=VolumeState.PURGING)  # even if the row looked claimed
    outcome = volume_purge.apply_async(args=(str(volume.id), old_generation), queue=volume.node.queue)
    assert outcome.get(timeout=30) == "skipped"
    assert str(volume.id) in driver_of(volume.node).inventory().volumes


def test_purge_never_touches_an_attached_volume(org: Organization, regions: list[Any]) -> None:
    from sandboxes.models import Sandbox
    from volumes.models import Attachment

    volume = services.volume_create(org=org, slug="busy", region="ord", actor=actor)
    Volume.objects.filter(id=volume.id).update(state=VolumeState.PURGING, generation=3)
    sandbox = Sandbox.objects.create(
        organization=org, region=volume.region, node=volume.node, state="running"
    )
    Attachment.objects.create(volume=volume, sandbox=sandbox, mount_path="/w")
    assert services.volume_purge_run(volume_id=str(volume.id), generation=3) == "attached"
    assert Volume.objects.get(id=volume.id).state == VolumeState.PURGING


def test_recreating_a_deleted_slug_then_restoring_the_old_one_asks_for_a_new_slug(
    org: Organization, regions: list[Any], celery_worker: subprocess.Popen[bytes]
) -> None:
    old = available(services.volume_create(org=org, slug="proj", region="ord", actor=actor))
    before = write_into_volume(driver_of(old.node), str(old.id), HASH)
    services.volume_delete(org=org, id_or_slug="proj", actor=actor)
    available(services.volume_create(org=org, slug="proj", region="ord", actor=actor))
    with pytest.raises(
        Conflict, match='The slug "proj" is now taken by another volume; choose a new slug'
    ) as info:
        services.volume_restore(volume_id=old.id, org=org, actor=actor)
    assert info.value.field == "new_slug"
    restored = services.volume_restore(volume_id=old.id, org=org, new_slug="proj-old", actor=actor)
    assert restored.slug == "proj-old"
    assert write_into_volume(driver_of(old.node), str(old.id), CHECK) == before
    assert AuditEvent.objects.get(action="volume.restore").data == {"slug": "proj-old", "old_slug": "proj"}


def test_usage_tracks_what_was_written(
    org: Organization, regions: list[Any], celery_worker: subprocess.Popen[bytes]
) -> None:
    volume = available(services.volume_create(org=org, slug="fill", region="iad", actor=actor))
    empty = volume.used or 0
    write_into_volume(driver_of(volume.node), str(volume.id), "head -c 50000000 /dev/zero > /data/big")
    services.volume_usage_refresh_run(node_id=volume.node_id)
    volume.refresh_from_db()
    assert volume.used is not None and volume.used - empty >= 50_000_000
    assert volume.used_at is not None and timezone.now() - volume.used_at < timedelta(minutes=1)


def test_extend_grows_an_unattached_volume_on_the_node(
    org: Organization, regions: list[Any], celery_worker: subprocess.Popen[bytes]
) -> None:
    volume = available(
        services.volume_create(org=org, slug="grow", region="ord", capacity="1GB", actor=actor)
    )
    services.volume_update(org=org, id_or_slug="grow", capacity="2GB", actor=actor)
    grown = wait_until(
        lambda: Volume.objects.filter(id=volume.id, capacity=2_000_000_000, resizing_to=None).first(),
        what="the volume to grow",
    )
    assert driver_of(grown.node).inventory().volumes[str(volume.id)] == 2_000_000_000


def test_reconcile_drives_stuck_and_orphaned_rows_to_a_correct_state(
    org: Organization, regions: list[Any], celery_worker: subprocess.Popen[bytes]
) -> None:
    node = regions[0]
    driver = driver_of(node)
    # storage with no row: left behind by a crash
    driver.volume_create("0" * 8 + "-0000-4000-8000-" + "0" * 12, 64 * 1024 * 1024)
    # a row stuck in creating whose provisioning message was lost
    stuck = available(services.volume_create(org=org, slug="stuck", region=node.region.code, actor=actor))
    driver.volume_destroy(str(stuck.id))
    Volume.objects.filter(id=stuck.id).update(
        state=VolumeState.CREATING, state_changed_at=timezone.now() - timedelta(hours=1)
    )
    # an available row whose storage vanished
    lost = available(services.volume_create(org=org, slug="lost", region=node.region.code, actor=actor))
    driver.volume_destroy(str(lost.id))

    done = services.node_reconcile_run(node_id=node.id)
    assert any("destroyed storage with no row" in line for line in done)
    assert any(line.startswith("stuck") and "provisioning again" in line for line in done)
    assert any(line.startswith("lost") and "storage missing" in line for line in done)
    available(stuck)
    assert Volume.objects.get(id=lost.id).state == VolumeState.ERROR
    assert set(driver.inventory().volumes) == {str(stuck.id)}
    assert AuditEvent.objects.filter(action="volume.reconcile").count() == 3


def test_reconcile_finishes_a_grow_whose_message_was_lost(
    org: Organization, regions: list[Any], celery_worker: subprocess.Popen[bytes]
) -> None:
    volume = available(
        services.volume_create(org=org, slug="grown", region="ams", capacity="1GB", actor=actor)
    )
    Volume.objects.filter(id=volume.id).update(resizing_to=3_000_000_000)  # asked for, never sent
    done = services.node_reconcile_run(node_id=volume.node_id)
    assert done == [f"grown ({volume.id}): growing to 3 GB again, in case its message was lost"]
    wait_until(
        lambda: Volume.objects.filter(id=volume.id, capacity=3_000_000_000, resizing_to=None).exists(),
        what="the grow",
    )
    assert driver_of(volume.node).inventory().volumes[str(volume.id)] == 3_000_000_000


def test_the_beat_sweeps_purges_every_minute() -> None:
    assert settings.CELERY_BEAT_SCHEDULE["purge-sweep"] == {
        "task": "volumes.tasks.purge_sweep",
        "schedule": 60.0,
    }
