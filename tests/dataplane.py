"""Helpers for tests that drive the real data plane through Django: root, loop devices, bubblewrap."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import pytest

from provisioning.base import Driver, Mount, SandboxSpec

TOOLS = ("bwrap", "nsenter", "losetup", "mkfs.ext4", "resize2fs", "e2fsck")


def require_data_plane() -> None:
    """Skip off CI on a machine that cannot run the data plane; in CI, fail instead."""
    missing = [name for name in TOOLS if shutil.which(name) is None]
    reason = "the data plane needs root" if os.geteuid() != 0 else ""
    reason = reason or (f"the data plane needs {', '.join(missing)}" if missing else "")
    if reason:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must run the data-plane tests, but {reason}", pytrace=False)
        pytest.skip(reason)


def wait_until(check: Callable[[], Any], *, timeout: float = 60, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def write_into_volume(driver: Driver, volume_id: str, script: str) -> str:
    """Run ``script`` in a throwaway sandbox with the volume at /data; return its stdout."""
    sandbox_id = f"t{time.monotonic_ns()}"
    driver.sandbox_start(SandboxSpec(id=sandbox_id, mounts=(Mount(volume_id=volume_id, path="/data"),)))
    try:
        result = driver.sandbox_exec(sandbox_id, script, timeout=60)
    finally:
        driver.sandbox_stop(sandbox_id)
    assert result.exit_code == 0, result.stderr.decode()
    return result.stdout.decode()
