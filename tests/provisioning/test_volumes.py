"""Volumes: sparse ext4 images that enforce their capacity."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import pytest

from provisioning.base import CapacityError, PathRefused, ProvisioningError, VolumeBusy, VolumeNotFound
from provisioning.local import LocalDriver
from tests.provisioning.conftest import MiB, mount


def test_it_creates_a_sparse_image_of_exactly_the_capacity(
    driver: LocalDriver, volume: Callable[..., str]
) -> None:
    volume_id = volume(64 * MiB + 4096)
    image = os.stat(os.path.join(driver.data_root, "volumes", f"{volume_id}.img"))
    assert image.st_size == 64 * MiB + 4096
    assert image.st_blocks * 512 < 16 * MiB  # sparse: only metadata is allocated
    assert driver.volume_exists(volume_id)
    assert driver.volume_usage(volume_id).capacity == 64 * MiB + 4096


@pytest.mark.parametrize("capacity", [0, -1, 1024, 15 * MiB])
def test_it_refuses_capacities_below_the_minimum(driver: LocalDriver, capacity: int) -> None:
    with pytest.raises(CapacityError):
        driver.volume_create("too-small", capacity)
    assert not driver.volume_exists("too-small")


def test_creating_again_is_a_no_op_but_another_capacity_is_refused(
    driver: LocalDriver, volume: Callable[..., str]
) -> None:
    volume_id = volume()
    driver.volume_create(volume_id, 64 * MiB)
    with pytest.raises(CapacityError, match="already exists"):
        driver.volume_create(volume_id, 128 * MiB)
    leftovers = [
        name for name in os.listdir(os.path.join(driver.data_root, "volumes")) if name.startswith(".")
    ]
    assert leftovers == []


def test_it_refuses_ids_that_are_not_plain_names(driver: LocalDriver) -> None:
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ProvisioningError):
            driver.volume_create(bad, 64 * MiB)


def test_it_refuses_writes_past_capacity_and_keeps_earlier_files(
    driver: LocalDriver, volume: Callable[..., str], sandbox: Callable[..., str]
) -> None:
    volume_id = volume(64 * MiB)
    empty = driver.volume_usage(volume_id).used
    box = sandbox(mounts=mount(volume_id))
    first = driver.sandbox_exec(box, "head -c 10485760 /dev/urandom > /data/first && sha256sum /data/first")
    assert first.exit_code == 0, first.stderr
    assert 10 * MiB <= driver.volume_usage(volume_id).used - empty < 11 * MiB

    too_much = driver.sandbox_exec(box, "head -c 80530636 /dev/zero > /data/second")  # 120 % of 64 MiB

    assert too_much.exit_code != 0
    assert b"No space left on device" in too_much.stderr
    again = driver.sandbox_exec(box, "sha256sum /data/first")
    assert again.stdout == first.stdout
    usage = driver.volume_usage(volume_id)
    # Full: everything but ext4's own overhead (journal, inode tables) is in use.
    assert 0.85 * usage.capacity < usage.used <= usage.capacity
    driver.sandbox_exec(box, "rm /data/second")
    assert driver.volume_usage(volume_id).used - empty < 11 * MiB


def test_usage_tracks_what_was_written_while_unmounted_too(
    driver: LocalDriver, volume: Callable[..., str], sandbox: Callable[..., str]
) -> None:
    volume_id = volume()
    before = driver.volume_usage(volume_id).used
    box = sandbox(mounts=mount(volume_id))
    driver.sandbox_exec(box, "head -c 5242880 /dev/urandom > /data/five && sync")
    driver.sandbox_stop(box)
    assert 5 * MiB <= driver.volume_usage(volume_id).used - before < 6 * MiB


def test_extend_grows_an_unmounted_volume_and_refuses_while_mounted(
    driver: LocalDriver, volume: Callable[..., str], sandbox: Callable[..., str]
) -> None:
    volume_id = volume(64 * MiB)
    box = sandbox(mounts=mount(volume_id))
    driver.sandbox_exec(box, "echo kept > /data/kept")
    with pytest.raises(VolumeBusy, match="stop it first"):
        driver.volume_extend(volume_id, 128 * MiB)
    driver.sandbox_stop(box)

    driver.volume_extend(volume_id, 128 * MiB)
    driver.volume_extend(volume_id, 128 * MiB)  # repeating is harmless

    assert driver.volume_usage(volume_id).capacity == 128 * MiB
    box = sandbox(mounts=mount(volume_id))
    sizes = driver.sandbox_exec(box, "df -B1 --output=size /data | tail -1; cat /data/kept")
    size, kept = sizes.stdout.split()
    assert 100 * MiB < int(size) <= 128 * MiB  # was under 64 MiB; ext4 keeps a few for itself
    assert kept == b"kept"


def test_extend_refuses_to_shrink_and_needs_an_existing_volume(
    driver: LocalDriver, volume: Callable[..., str]
) -> None:
    volume_id = volume(64 * MiB)
    with pytest.raises(CapacityError, match="can grow but not shrink"):
        driver.volume_extend(volume_id, 32 * MiB)
    with pytest.raises(VolumeNotFound):
        driver.volume_extend("no-such-volume", 128 * MiB)


def test_destroy_is_idempotent_and_refused_while_in_use(
    driver: LocalDriver, volume: Callable[..., str], sandbox: Callable[..., str]
) -> None:
    volume_id = volume()
    box = sandbox(mounts=mount(volume_id))
    with pytest.raises(VolumeBusy, match=f"Volume {volume_id} is mounted by sandbox"):
        driver.volume_destroy(volume_id)
    driver.sandbox_stop(box)

    driver.volume_destroy(volume_id)
    driver.volume_destroy(volume_id)

    assert not driver.volume_exists(volume_id)
    assert volume_id not in driver.inventory().volumes
    with pytest.raises(VolumeNotFound):
        driver.volume_usage(volume_id)


def test_inventory_lists_volumes_and_sandboxes(
    driver: LocalDriver, volume: Callable[..., str], sandbox: Callable[..., str]
) -> None:
    volume_id = volume(32 * MiB)
    box = sandbox(mounts=mount(volume_id))

    inventory = driver.inventory()

    assert inventory.volumes[volume_id] == 32 * MiB
    assert inventory.sandboxes[box] is True
    driver.sandbox_stop(box)
    assert box not in driver.inventory().sandboxes


def test_volume_browsing_reads_files_and_never_leaves_the_volume(
    driver: LocalDriver, volume: Callable[..., str], sandbox: Callable[..., str]
) -> None:
    volume_id = volume()
    box = sandbox(mounts=mount(volume_id))
    driver.sandbox_exec(
        box,
        "mkdir /data/docs && printf hello > /data/docs/a.txt"
        " && ln -s / /data/root && ln -s ../../../../etc/shadow /data/up",
    )
    assert driver.volume_read_file(volume_id, "docs/a.txt") == b"hello"  # while mounted
    driver.sandbox_stop(box)

    names = {entry.name: entry.kind for entry in driver.volume_list_dir(volume_id, "/")}
    assert names == {"docs": "dir", "lost+found": "dir", "root": "symlink", "up": "symlink"}
    assert driver.volume_read_file(volume_id, "/docs/a.txt", limit=4) == b"hell"
    assert {entry.name for entry in driver.volume_list_dir(volume_id, "/root")} == set(names)
    for escape in ("../../etc/shadow", "/etc/shadow", "root/etc/shadow", "up"):
        with pytest.raises((PathRefused, ProvisioningError)):
            driver.volume_read_file(volume_id, escape)
    digest = hashlib.sha256(driver.volume_read_file(volume_id, "docs/a.txt")).hexdigest()
    assert digest == hashlib.sha256(b"hello").hexdigest()
