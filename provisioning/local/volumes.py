"""Volumes: sparse image files holding ext4, loop-mounted on the node while in use.

Layout under the data root::

    volumes/<id>.img   the image, exactly ``capacity`` bytes (sparse)
    mnt/<id>/          where it is mounted while a sandbox uses it
    peek/<id>/         a brief read-only mount to measure or browse an unused volume

Callers hold the node lock around everything that mounts, unmounts or resizes.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
from collections.abc import Iterator

from provisioning.base import CapacityError, ProvisioningError, VolumeNotFound
from provisioning.local._system import check_name, fsync_dir, run, tool

MiB = 1024 * 1024
# Below this ext4's own overhead (journal, inode tables) eats most of the space.
MIN_CAPACITY = 16 * MiB
MAX_CAPACITY = 64 * 1024 * 1024 * MiB  # 64 TiB: far beyond any plan, a guard against typos
BLOCK = 4096

# lazy_*_init: do not zero inode tables and journal up front (the kernel does it in the
# background), which keeps creation fast and the image sparse; -m 0: no blocks reserved
# for root, so the user gets the whole capacity.
MKFS_OPTIONS = (
    "-F",
    "-q",
    "-m",
    "0",
    "-b",
    str(BLOCK),
    "-E",
    "lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=0:0",
)
MOUNT_OPTIONS = "loop,nosuid,nodev,noatime"


def check_capacity(capacity: int) -> int:
    if not isinstance(capacity, int) or isinstance(capacity, bool):
        raise CapacityError(f"Capacity must be a whole number of bytes, not {capacity!r}")
    if capacity < MIN_CAPACITY:
        raise CapacityError(f"Capacity {capacity} B is below the minimum of {MIN_CAPACITY // MiB} MiB")
    if capacity > MAX_CAPACITY:
        raise CapacityError(f"Capacity {capacity} B is above the maximum of 64 TiB")
    return capacity


class Volumes:
    def __init__(self, data_root: str) -> None:
        self.images = os.path.join(data_root, "volumes")
        self.mounts = os.path.join(data_root, "mnt")
        self.peeks = os.path.join(data_root, "peek")
        for folder in (self.images, self.mounts, self.peeks):
            os.makedirs(folder, mode=0o700, exist_ok=True)

    def image(self, volume_id: str) -> str:
        return os.path.join(self.images, f"{check_name(volume_id, 'Volume id')}.img")

    def mount_point(self, volume_id: str) -> str:
        return os.path.join(self.mounts, check_name(volume_id, "Volume id"))

    def capacity(self, volume_id: str) -> int | None:
        try:
            return os.stat(self.image(volume_id)).st_size
        except FileNotFoundError:
            return None

    def require(self, volume_id: str) -> int:
        capacity = self.capacity(volume_id)
        if capacity is None:
            raise VolumeNotFound(f"Volume {volume_id} does not exist on this node")
        return capacity

    def all(self) -> dict[str, int]:
        found = {}
        for path in glob.glob(os.path.join(self.images, "*.img")):
            volume_id = os.path.basename(path)[: -len(".img")]
            with contextlib.suppress(FileNotFoundError):
                found[volume_id] = os.stat(path).st_size
        return found

    # --- lifecycle --------------------------------------------------------------------

    def create(self, volume_id: str, capacity: int) -> None:
        """Make the image in a temporary file and publish it with link(2).

        link fails if the name exists, so of two racing creators exactly one publishes, and
        a crash leaves at most a ``.<id>.*.tmp`` file, never a half-made ``<id>.img``.
        """
        final = self.image(volume_id)
        if self._same_capacity(volume_id, capacity):
            return
        temp = os.path.join(self.images, f".{volume_id}.{secrets.token_hex(4)}.tmp")
        try:
            with open(temp, "wb") as handle:
                handle.truncate(capacity)
            run([tool("mkfs.ext4"), *MKFS_OPTIONS, temp])
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
            try:
                os.link(temp, final)
            except FileExistsError:
                self._same_capacity(volume_id, capacity)
            fsync_dir(self.images)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    def _same_capacity(self, volume_id: str, capacity: int) -> bool:
        existing = self.capacity(volume_id)
        if existing is None:
            return False
        if existing != capacity:
            raise CapacityError(f"Volume {volume_id} already exists with {existing} B, not {capacity} B")
        return True

    def remove(self, volume_id: str) -> None:
        """Delete the image and leftovers of interrupted creations; the volume is unmounted."""
        for path in [self.image(volume_id), *glob.glob(os.path.join(self.images, f".{volume_id}.*.tmp"))]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(self.mount_point(volume_id))

    def extend(self, volume_id: str, capacity: int) -> None:
        """Grow an unmounted volume: check the filesystem, grow the file, grow ext4 into it.

        Repeating it after a crash between the two growth steps finishes the job, since
        the filesystem is compared with the file rather than the file with the request.
        """
        current = self.require(volume_id)
        if capacity < current:
            raise CapacityError(
                f"Volume {volume_id} has {current} B; a volume can grow but not shrink to {capacity} B"
            )
        image = self.image(volume_id)
        if capacity == current and self._filesystem_bytes(image) >= current - BLOCK + 1:
            return
        # -p repairs what is safe to repair; 1 means "errors corrected", still fine.
        run([tool("e2fsck"), "-f", "-p", image], ok=(0, 1))
        os.truncate(image, capacity)
        run([tool("resize2fs"), image])
        # resize2fs trims a file image to whole filesystem blocks; the capacity stays exact.
        os.truncate(image, capacity)

    def _filesystem_bytes(self, image: str) -> int:
        header = run([tool("dumpe2fs"), "-h", image])
        fields = dict(line.split(":", 1) for line in header.splitlines() if ":" in line)
        return int(fields["Block count"]) * int(fields["Block size"])

    # --- mounting ---------------------------------------------------------------------

    def is_mounted(self, volume_id: str) -> bool:
        return os.path.ismount(self.mount_point(volume_id))

    def mount(self, volume_id: str) -> str:
        point = self.mount_point(volume_id)
        if not os.path.ismount(point):
            self.require(volume_id)
            os.makedirs(point, mode=0o700, exist_ok=True)
            run([tool("mount"), "-t", "ext4", "-o", MOUNT_OPTIONS, self.image(volume_id), point])
        return point

    def unmount(self, volume_id: str) -> None:
        point = self.mount_point(volume_id)
        if os.path.ismount(point):
            run([tool("umount"), point])
        with contextlib.suppress(FileNotFoundError, OSError):
            os.rmdir(point)
        self._detach_loops(volume_id)

    def _detach_loops(self, volume_id: str) -> None:
        """Free loop devices still bound to the image (normally autoclear did it already)."""
        listing = run([tool("losetup"), "-n", "-O", "NAME", "-j", self.image(volume_id)])
        for device in listing.split():
            with contextlib.suppress(ProvisioningError):
                run([tool("losetup"), "-d", device])

    @contextlib.contextmanager
    def peek(self, volume_id: str) -> Iterator[str]:
        """A directory showing the volume: its live mount, or a brief read-only one."""
        self.require(volume_id)
        if self.is_mounted(volume_id):
            yield self.mount_point(volume_id)
            return
        point = os.path.join(self.peeks, volume_id)
        os.makedirs(point, mode=0o700, exist_ok=True)
        run([tool("mount"), "-t", "ext4", "-o", f"{MOUNT_OPTIONS},ro", self.image(volume_id), point])
        try:
            yield point
        finally:
            run([tool("umount"), point])
            with contextlib.suppress(OSError):
                os.rmdir(point)
            self._detach_loops(volume_id)

    def used(self, volume_id: str) -> int:
        """Bytes in use according to ext4 itself (like df's "Used" column)."""
        with self.peek(volume_id) as point:
            stats = os.statvfs(point)
        return (stats.f_blocks - stats.f_bfree) * stats.f_frsize
