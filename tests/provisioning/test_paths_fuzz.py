"""Hostile paths thrown at the file calls never reach a host file."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioning.base import ProvisioningError, SandboxSpec
from provisioning.local import LocalDriver
from tests.provisioning.conftest import MiB, mount

CANARY = b"host canary: if a sandbox call returns or changes this, it escaped\n"
WATCHED_HOST_FILES = ("/etc/passwd", "/etc/shadow", "/usr/bin/dash", "/etc/hostname")


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("host-side") / "canary.txt"
    path.write_bytes(CANARY)
    return path


@pytest.fixture(scope="module")
def fuzz_box(driver: LocalDriver, canary: Path) -> Iterator[str]:
    """A sandbox full of traps: symlinks to /, up the tree, to the host canary's path."""
    driver.volume_create("fuzz-volume", 32 * MiB)
    driver.sandbox_start(SandboxSpec(id="fuzz", mounts=mount("fuzz-volume")))
    setup = driver.sandbox_exec(
        "fuzz",
        f"""set -e
        cd /tmp
        ln -s / rootlink; ln -s ../../../../../.. uplink; ln -s /etc/shadow shadowlink
        ln -s {canary} canarylink; ln -s {canary.parent} dirlink
        ln -s dirlink looplink2; ln -s looplink2 dirlink2
        ln -s rootlink/proc/1/root magic
        ln -s ../../../../.. /data/escape; ln -s /tmp/canarylink /data/canary.txt
        mkdir -p {canary.parent}
        """,
    )
    assert setup.exit_code == 0, setup.stderr
    yield "fuzz"
    driver.sandbox_stop("fuzz")
    driver.volume_destroy("fuzz-volume")


def _fingerprint(paths: list[Path]) -> dict[str, tuple[str, int]]:
    found = {}
    for path in paths:
        if path.is_file():
            found[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return found


def _tree(root: Path, skip: Path) -> set[str]:
    """Every name under ``root`` but inside the sandbox's own state dir and mounted volumes."""
    names: set[str] = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder, d) != skip and d != "mnt"]
        names.update(os.path.join(folder, name) for name in dirs + files)
    return names


PIECES = st.sampled_from(
    [
        "..",
        ".",
        "",
        "etc",
        "shadow",
        "passwd",
        "tmp",
        "rootlink",
        "uplink",
        "shadowlink",
        "canarylink",
        "dirlink",
        "dirlink2",
        "magic",
        "data",
        "escape",
        "proc",
        "self",
        "1",
        "root",
        "kcore",
        "sys",
        "canary.txt",
        "pytest-of-root",
        "x" * 300,
        "é",
        "\U0001f642",
        "\x00",
        "\udcff",
    ]
)
PATHS = st.tuples(st.booleans(), st.lists(PIECES | st.text(max_size=12), max_size=8)).map(
    lambda parts: ("/" if parts[0] else "") + "/".join(parts[1])
)
# Writes only ever aim at our canary's name or a fresh one: if the code under test were
# broken, a fuzzer free to name /etc/passwd would wreck the machine running it.
WRITE_NAMES = st.sampled_from(["canary.txt", "fuzz-made"])


def test_hostile_paths_never_reach_the_host(driver: LocalDriver, fuzz_box: str, canary: Path) -> None:
    watched = [canary, *map(Path, WATCHED_HOST_FILES)]
    host_files = _fingerprint(watched)
    secrets = {Path(p).read_bytes() for p in host_files if Path(p).stat().st_size}
    base = Path(driver.data_root).parent
    tree_before = _tree(base, Path(driver.data_root, "sandboxes", fuzz_box))

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        operation=st.sampled_from(["read", "write", "list", "volume-read", "volume-list"]),
        path=PATHS,
        name=WRITE_NAMES,
    )
    def attempt(operation: str, path: str, name: str) -> None:
        try:
            if operation == "read":
                assert driver.sandbox_read_file(fuzz_box, path, limit=4096) not in secrets
            elif operation == "volume-read":
                assert driver.volume_read_file("fuzz-volume", path, limit=4096) not in secrets
            elif operation == "write":
                driver.sandbox_write_file(fuzz_box, f"{path}/{name}", b"fuzz")
            elif operation == "list":
                driver.sandbox_list_dir(fuzz_box, path)
            else:
                driver.volume_list_dir("fuzz-volume", path)
        except ProvisioningError:
            pass  # refused or not found: both fine
        assert _fingerprint(watched) == host_files

    attempt()

    assert _tree(base, Path(driver.data_root, "sandboxes", fuzz_box)) == tree_before
    assert canary.read_bytes() == CANARY
    assert driver.sandbox_alive(fuzz_box)


@pytest.mark.parametrize(
    "path",
    [
        "/tmp/canarylink",
        "/tmp/dirlink/canary.txt",
        "/tmp/uplink/etc/shadow",
        "../../../../etc/shadow",
        "/tmp/rootlink/../../etc/shadow",
        "/tmp/shadowlink",
        "/data/escape/etc/shadow",
    ],
)
def test_symlinks_and_dot_dots_resolve_inside_the_sandbox(
    driver: LocalDriver, fuzz_box: str, path: str
) -> None:
    with pytest.raises(ProvisioningError):
        driver.sandbox_read_file(fuzz_box, path)


def test_writing_through_a_symlink_to_a_host_path_stays_inside(
    driver: LocalDriver, fuzz_box: str, canary: Path
) -> None:
    driver.sandbox_write_file(fuzz_box, f"/tmp/dirlink/{canary.name}", b"inside")
    assert canary.read_bytes() == CANARY
    assert driver.sandbox_read_file(fuzz_box, str(canary)) == b"inside"
    assert driver.sandbox_exec(fuzz_box, f"cat {canary}").stdout == b"inside"


@pytest.mark.parametrize(
    "path",
    ["/proc/kcore", "/proc/1/environ", "/tmp/magic/etc/passwd", "/dev/null", "/proc/sys/kernel/hostname"],
)
def test_kernel_files_and_magic_links_are_refused(driver: LocalDriver, fuzz_box: str, path: str) -> None:
    with pytest.raises(ProvisioningError):
        driver.sandbox_read_file(fuzz_box, path)
    with pytest.raises(ProvisioningError):
        driver.sandbox_write_file(fuzz_box, path, b"0")


@pytest.mark.parametrize("path", ["a\x00b", "/" + "x" * 5000, "/" + "y" * 300, "\udcff\ud800"])
def test_malformed_paths_are_refused(driver: LocalDriver, fuzz_box: str, path: str) -> None:
    from provisioning.base import PathRefused

    for call in (
        lambda: driver.sandbox_read_file(fuzz_box, path),
        lambda: driver.sandbox_write_file(fuzz_box, path, b""),
        lambda: driver.sandbox_list_dir(fuzz_box, path),
    ):
        with pytest.raises(PathRefused):
            call()
