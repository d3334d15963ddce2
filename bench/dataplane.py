"""Data-plane timings, each beside the floor the host allows (run as root).

    python bench/dataplane.py [--rounds N]

Prints the median of N rounds for: creating a 1 GB volume (floor: bare mkfs.ext4 on a
sparse 1 GB file), starting a sandbox with that volume mounted (floor: a bare
``bwrap ... true``), an ``echo`` exec round trip (floors: a bare nsenter into the same
sandbox, and a plain host fork+exec of echo), and stopping the sandbox.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from provisioning.base import Mount, SandboxSpec
from provisioning.local import LocalDriver

GB = 1000 * 1000 * 1000
BARE_BWRAP = [
    "bwrap", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
    "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin", "--proc", "/proc", "--dev", "/dev",
    "--unshare-all", "true",
]  # fmt: skip


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bare_mkfs(folder: str, round_no: int) -> float:
    image = os.path.join(folder, f"floor-{round_no}.img")
    with open(image, "wb") as handle:
        handle.truncate(GB)
    elapsed = timed(lambda: subprocess.run(["mkfs.ext4", "-F", "-q", image], check=True))
    os.unlink(image)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    if os.geteuid() != 0:
        sys.exit("The data-plane bench needs root (loop devices, mounts, namespaces).")
    root = tempfile.mkdtemp(prefix="berth-bench-", dir="/var/tmp")
    driver = LocalDriver(root)
    samples: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    try:
        driver.sandbox_start(SandboxSpec(id="warm-up"))  # builds the host skeleton once
        driver.sandbox_stop("warm-up")
        for round_no in range(rounds):
            volume_id, sandbox_id = f"bench-vol-{round_no}", f"bench-sb-{round_no}"
            add("create 1 GB volume", timed(lambda: driver.volume_create(volume_id, GB)))  # noqa: B023
            add("  floor: mkfs.ext4 on a sparse 1 GB file", bare_mkfs(root, round_no))
            spec = SandboxSpec(id=sandbox_id, mounts=(Mount(volume_id, "/data"),))
            add("start sandbox with the volume", timed(lambda: driver.sandbox_start(spec)))  # noqa: B023
            add(
                "  floor: bwrap --ro-bind /usr /usr ... true",
                timed(lambda: subprocess.run(BARE_BWRAP, check=True)),
            )
            add("exec `echo hi` round trip", timed(lambda: driver.sandbox_exec(sandbox_id, "echo hi")))  # noqa: B023
            state = driver.sandboxes.state(sandbox_id)
            assert state is not None and state.init is not None
            nsenter = ["nsenter", "-t", str(state.init.pid), "-U", "-m", "-p", "-i", "-u", "-n", "-r", "-w",
                       "/bin/echo", "hi"]  # fmt: skip
            add("  floor: bare nsenter ... echo", timed(lambda: subprocess.run(nsenter, capture_output=True)))  # noqa: B023
            add(
                "  floor: host fork+exec of echo",
                timed(lambda: subprocess.run(["echo"], capture_output=True)),
            )
            add("stop sandbox (unmounts the volume)", timed(lambda: driver.sandbox_stop(sandbox_id)))  # noqa: B023
            driver.volume_destroy(volume_id)
    finally:
        for sandbox_id in driver.inventory().sandboxes:
            driver.sandbox_stop(sandbox_id)
        for volume_id in driver.inventory().volumes:
            driver.volume_destroy(volume_id)
        shutil.rmtree(root, ignore_errors=True)
    print(f"median of {rounds} rounds")
    for name, values in samples.items():
        print(f"{name:<45} {statistics.median(values) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
