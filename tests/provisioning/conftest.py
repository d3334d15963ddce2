"""Fixtures for the data-plane tests: real loop devices, real bubblewrap, as root.

Off CI these tests skip on a machine that cannot run them (not root, no bubblewrap);
with CI set they fail loudly instead, so a broken CI image never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provisioning.base import Mount, SandboxSpec
from provisioning.local import LocalDriver

MiB = 1024 * 1024
TOOLS = (
    "bwrap",
    "nsenter",
    "unshare",
    "losetup",
    "mkfs.ext4",
    "resize2fs",
    "e2fsck",
    "slirp4netns",
    "findmnt",
)
RUNNING_IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _why_not_runnable() -> str | None:
    if os.geteuid() != 0:
        return "the data-plane tests need root (loop devices, mounts, namespaces)"
    missing = [name for name in TOOLS if shutil.which(name) is None]
    if missing:
        return f"the data-plane tests need {', '.join(missing)} installed"
    return None


@pytest.fixture(scope="session", autouse=True)
def data_plane_host() -> None:
    reason = _why_not_runnable()
    if reason is not None:
        if RUNNING_IN_CI:
            pytest.fail(f"CI must run the data-plane tests, but {reason}", pytrace=False)
        pytest.skip(reason)


def loop_devices_of(data_root: str) -> list[str]:
    listing = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if data_root in line]


def clean_up(driver: LocalDriver) -> None:
    """Stop every sandbox and destroy every volume of a data root, then insist that no
    mount and no loop device of it is left on the host."""
    for sandbox_id in driver.inventory().sandboxes:
        driver.sandbox_stop(sandbox_id)
    for volume_id in driver.inventory().volumes:
        driver.volume_destroy(volume_id)
    with open("/proc/self/mountinfo") as handle:
        mounts = [line for line in handle if driver.data_root in line]
    assert mounts == [], f"mounts left behind: {mounts}"
    assert loop_devices_of(driver.data_root) == [], "loop devices left behind"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDriver]:
    """One data root per test module, emptied (and checked clean) at the end."""
    instance = LocalDriver(str(tmp_path_factory.mktemp("berth")))
    try:
        yield instance
    finally:
        clean_up(instance)


@pytest.fixture
def volume(driver: LocalDriver) -> Iterator[Callable[..., str]]:
    """Create volumes (64 MiB unless told); destroyed after the test."""
    made: list[str] = []

    def create(capacity: int = 64 * MiB) -> str:
        volume_id = f"vol-{os.urandom(4).hex()}"
        driver.volume_create(volume_id, capacity)
        made.append(volume_id)
        return volume_id

    yield create
    for volume_id in made:
        driver.volume_destroy(volume_id)


@pytest.fixture
def sandbox(driver: LocalDriver, volume: Callable[..., str]) -> Iterator[Callable[..., str]]:
    """Start sandboxes by keyword (``mounts``, ``image``...); all stopped after the test,
    before the test's volumes are destroyed (hence the dependency on ``volume``)."""
    started: list[str] = []

    def start(name: str | None = None, **fields: object) -> str:
        sandbox_id = name or f"sb-{os.urandom(4).hex()}"
        driver.sandbox_start(SandboxSpec(id=sandbox_id, **fields))  # type: ignore[arg-type]
        started.append(sandbox_id)
        return sandbox_id

    yield start
    for sandbox_id in started:
        driver.sandbox_stop(sandbox_id)


def mount(volume_id: str, path: str = "/data", read_only: bool = False) -> tuple[Mount, ...]:
    return (Mount(volume_id=volume_id, path=path, read_only=read_only),)


def host_processes_matching(needle: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
