"""Sandboxes: namespaces with an ephemeral root, volumes mounted in, nothing of the host."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provisioning.base import FileNotFound, ImageNotFound, PathRefused, SandboxNotFound, SandboxSpec
from provisioning.local import LocalDriver
from tests.provisioning.conftest import RUNNING_IN_CI, host_processes_matching, mount

PROBE = textwrap.dedent(
    """
    import socket, sys
    for target in sys.argv[1:]:
        host, port = target.rsplit(":", 1)
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((host, int(port)))
            print("open", target)
        except OSError as exc:
            print("closed", target, exc)
    """
)


def test_a_file_on_a_volume_survives_into_the_next_sandbox_byte_for_byte(
    driver: LocalDriver, volume: Callable[..., str], sandbox: Callable[..., str]
) -> None:
    volume_id = volume()
    first = sandbox(mounts=mount(volume_id, "/work"))
    written = driver.sandbox_exec(
        first, "head -c 3000000 /dev/urandom > /work/blob && sha256sum < /work/blob"
    )
    assert written.exit_code == 0, written.stderr
    driver.sandbox_stop(first)
    assert not driver.sandbox_alive(first)

    second = sandbox(mounts=mount(volume_id, "/elsewhere/deeper"))
    read = driver.sandbox_exec(second, "sha256sum < /elsewhere/deeper/blob")

    assert read.stdout == written.stdout
    assert len(driver.sandbox_read_file(second, "/elsewhere/deeper/blob", limit=10**7)) == 3000000


def test_a_read_only_mount_refuses_writes_and_two_sandboxes_share_it(
    driver: LocalDriver, volume: Callable[..., str], sandbox: Callable[..., str]
) -> None:
    volume_id = volume()
    writer = sandbox(mounts=mount(volume_id))
    driver.sandbox_exec(writer, "echo shared > /data/note")
    driver.sandbox_stop(writer)

    readers = [sandbox(mounts=mount(volume_id, read_only=True)) for _ in range(2)]

    for reader in readers:
        assert driver.sandbox_exec(reader, "cat /data/note").stdout == b"shared\n"
        refused = driver.sandbox_exec(reader, "echo more >> /data/note")
        assert refused.exit_code != 0 and b"Read-only file system" in refused.stderr
        # root inside the sandbox cannot lift the lock, nor peel the mount off
        remount = driver.sandbox_exec(reader, "mount -o remount,rw,bind /data || umount /data; touch /data/x")
        assert remount.exit_code != 0
        with pytest.raises(PathRefused, match="read-only"):
            driver.sandbox_write_file(reader, "/data/note", b"overwritten")
    assert driver.volume_read_file(volume_id, "note") == b"shared\n"


def test_the_sandbox_sees_no_host_process(driver: LocalDriver, sandbox: Callable[..., str]) -> None:
    box = sandbox()
    listing = driver.sandbox_exec(box, "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done")
    commands = [line for line in listing.stdout.decode().splitlines() if line.strip()]
    assert len(commands) <= 4, commands  # bubblewrap's reaper, the init, this shell, tr
    ours = Path(f"/proc/{os.getpid()}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    assert not any(command.strip() == ours or "postgres" in command for command in commands)
    assert driver.sandbox_exec(box, "kill -0 1; echo $?").stdout.strip() == b"0"


def test_a_sandbox_sees_no_other_sandboxs_files(
    driver: LocalDriver, volume: Callable[..., str], sandbox: Callable[..., str]
) -> None:
    mine, theirs = volume(), volume()
    first = sandbox(mounts=mount(mine))
    second = sandbox(mounts=mount(theirs))
    driver.sandbox_exec(first, "echo secret > /tmp/first-secret && echo secret > /data/first-volume-secret")

    search = driver.sandbox_exec(
        second, "find / -xdev -name '*first*secret*' 2>/dev/null; find /data /tmp -name '*secret*'"
    )

    assert search.stdout == b""
    with pytest.raises(FileNotFound):
        driver.sandbox_read_file(second, "/tmp/first-secret")


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A service on the host's loopback: the control that proves the probe would see one."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.mark.parametrize("allow_net", [False, True], ids=["without-network", "with-network"])
def test_the_hosts_loopback_services_cannot_be_reached(
    driver: LocalDriver, sandbox: Callable[..., str], host_listener: int, allow_net: bool
) -> None:
    targets = [f"127.0.0.1:{port}" for port in (5432, 6379, host_listener)]
    targets += [f"10.0.2.2:{port}" for port in (5432, 6379, host_listener)]  # slirp's alias of the host
    with socket.create_connection(("127.0.0.1", host_listener), timeout=2):
        pass  # reachable from the host itself
    box = sandbox(allow_net=allow_net)

    probe = driver.sandbox_exec(box, ["python3", "-c", PROBE, *targets], timeout=30)

    assert probe.exit_code == 0, probe.stderr
    lines = probe.stdout.decode().splitlines()
    assert len(lines) == len(targets)
    assert all(line.startswith("closed") for line in lines), lines
    interfaces = driver.sandbox_exec(box, "cat /proc/net/dev").stdout.decode()
    assert ("tap0" in interfaces) is allow_net


def test_the_hosts_shadow_file_cannot_be_read(driver: LocalDriver, sandbox: Callable[..., str]) -> None:
    box = sandbox()
    attempt = driver.sandbox_exec(box, "cat /etc/shadow; ls /etc")
    assert b"root:" not in attempt.stdout
    assert b"shadow" not in attempt.stdout
    with pytest.raises(FileNotFound):
        driver.sandbox_read_file(box, "/etc/shadow")
    with pytest.raises(FileNotFound):
        driver.sandbox_read_file(box, "../../../etc/shadow")


def test_a_file_written_outside_the_volumes_is_gone_in_the_next_sandbox(
    driver: LocalDriver, sandbox: Callable[..., str]
) -> None:
    first = sandbox("same-name")
    driver.sandbox_exec(first, "echo left > /tmp/left && echo left > /root/left && echo left > /usr/left")
    driver.sandbox_write_file(first, "/etc/left", b"left")
    driver.sandbox_stop(first)
    assert not Path("/usr/left").exists()

    second = sandbox("same-name")

    check = driver.sandbox_exec(second, "ls /tmp/left /root/left /usr/left /etc/left")
    assert check.exit_code != 0
    assert check.stdout == b""


def test_a_background_process_survives_between_execs_and_dies_with_the_sandbox(
    driver: LocalDriver, sandbox: Callable[..., str]
) -> None:
    box = sandbox()
    driver.sandbox_write_file(box, "/srv/www/index.html", b"hello from the sandbox")
    server = driver.sandbox_exec_background(
        box, "exec python3 -m http.server 8080 --bind 127.0.0.1", cwd="/srv/www"
    )
    fetch = (
        "import time, urllib.request\n"
        "for _ in range(100):\n"
        "    try:\n"
        "        print(urllib.request.urlopen('http://127.0.0.1:8080/index.html').read().decode()); break\n"
        "    except OSError: time.sleep(0.05)\n"
    )

    answer = driver.sandbox_exec(box, ["python3", "-c", fetch], timeout=20)

    assert answer.stdout.strip() == b"hello from the sandbox", answer.stderr
    assert driver.sandbox_exec(box, ["python3", "-c", fetch], timeout=20).exit_code == 0  # still there
    assert b"GET /index.html" in driver.sandbox_read_log(box, server.pid)
    assert host_processes_matching(b"http.server\x008080")
    driver.sandbox_stop(box)
    assert host_processes_matching(b"http.server\x008080") == []
    with pytest.raises(SandboxNotFound):
        driver.sandbox_exec(box, "true")


def test_a_command_past_its_timeout_is_killed_with_its_children(
    driver: LocalDriver, sandbox: Callable[..., str]
) -> None:
    box = sandbox()
    started = time.monotonic()

    result = driver.sandbox_exec(box, "echo started; sleep 3001 & setsid sleep 3002 & sleep 3003", timeout=1)

    assert result.timed_out and result.exit_code is None
    assert result.stdout == b"started\n"
    assert time.monotonic() - started < 5
    for needle in (b"sleep\x003001", b"sleep\x003002", b"sleep\x003003"):
        assert host_processes_matching(needle) == []
    assert driver.sandbox_exec(box, "echo still usable").stdout == b"still usable\n"


def test_an_exec_reports_exit_code_streams_environment_and_cwd(
    driver: LocalDriver, sandbox: Callable[..., str]
) -> None:
    box = sandbox(env={"GREETING": "hi there", "SHARED": "spec"}, cwd="/tmp")

    result = driver.sandbox_exec(
        box,
        'echo "$GREETING $SHARED $EXTRA"; pwd; echo oops >&2; exit 3',
        env={"EXTRA": "it's $me", "SHARED": "exec"},
    )
    in_root = driver.sandbox_exec(box, ["pwd"], cwd="/")

    assert result.exit_code == 3
    assert result.stdout == b"hi there exec it's $me\n/tmp\n"
    assert result.stderr == b"oops\n"
    assert in_root.stdout == b"/\n"
    assert driver.sandbox_exec(box, "printenv LD_PRELOAD", env={"LD_PRELOAD": "/nowhere.so"}).exit_code == 0


def test_output_beyond_the_limit_is_dropped_and_flagged(
    driver: LocalDriver, sandbox: Callable[..., str]
) -> None:
    box = sandbox()
    result = driver.sandbox_exec(box, "head -c 100000 /dev/zero; head -c 10 /dev/zero >&2", output_limit=1000)
    assert len(result.stdout) == 1000 and result.stdout_truncated
    assert len(result.stderr) == 10 and not result.stderr_truncated
    assert result.exit_code == 0


def test_a_restarted_worker_can_exec_read_and_stop_a_running_sandbox(driver: LocalDriver) -> None:
    worker = textwrap.dedent(
        f"""
        from provisioning.base import SandboxSpec
        from provisioning.local import LocalDriver
        driver = LocalDriver({driver.data_root!r})
        driver.sandbox_start(SandboxSpec(id="restarted"))
        driver.sandbox_exec("restarted", "echo from the first worker > /root/note")
        driver.sandbox_exec_background("restarted", "exec sleep 3004")
        """
    )
    subprocess.run([sys.executable, "-c", worker], check=True, cwd=Path(__file__).parents[2], timeout=60)

    fresh = LocalDriver(driver.data_root)  # the first worker's process is gone

    assert fresh.sandbox_alive("restarted")
    assert fresh.sandbox_read_file("restarted", "/root/note") == b"from the first worker\n"
    assert fresh.sandbox_exec("restarted", "cat /root/note").stdout == b"from the first worker\n"
    assert host_processes_matching(b"sleep\x003004")
    fresh.sandbox_stop("restarted")
    assert not fresh.sandbox_alive("restarted")
    assert host_processes_matching(b"sleep\x003004") == []


def test_stop_is_idempotent_and_unknown_sandboxes_are_not_found(
    driver: LocalDriver, sandbox: Callable[..., str]
) -> None:
    box = sandbox()
    driver.sandbox_stop(box)
    driver.sandbox_stop(box)
    driver.sandbox_stop("never-started")
    assert not driver.sandbox_alive(box)
    for call in (
        lambda: driver.sandbox_exec(box, "true"),
        lambda: driver.sandbox_read_file(box, "/etc/hosts"),
        lambda: driver.sandbox_list_dir(box, "/"),
    ):
        with pytest.raises(SandboxNotFound):
            call()


def test_starting_a_running_sandbox_again_changes_nothing(
    driver: LocalDriver, sandbox: Callable[..., str]
) -> None:
    box = sandbox()
    driver.sandbox_exec(box, "echo still here > /tmp/mark")
    driver.sandbox_start(SandboxSpec(id=box))
    assert driver.sandbox_read_file(box, "/tmp/mark") == b"still here\n"


def _cgroup_controller_writable(name: str) -> bool:
    return os.access(f"/sys/fs/cgroup/{name}", os.W_OK) or os.path.exists("/sys/fs/cgroup/cgroup.controllers")


@pytest.mark.skipif(not _cgroup_controller_writable("pids"), reason="the host offers no pids cgroup")
def test_the_process_limit_is_enforced(driver: LocalDriver, sandbox: Callable[..., str]) -> None:
    box = sandbox(pids_limit=20, memory_limit=256 * 1024 * 1024)
    state = driver.sandboxes.state(box)
    assert state is not None and state.cgroups.applied == {"memory": True, "pids": True}

    burst = driver.sandbox_exec(box, "for i in $(seq 40); do sleep 30 & done; wait", timeout=10)

    assert b"fork" in burst.stderr or b"Resource temporarily unavailable" in burst.stderr


@pytest.mark.skipif(not _cgroup_controller_writable("memory"), reason="the host offers no memory cgroup")
def test_the_memory_limit_is_enforced(driver: LocalDriver, sandbox: Callable[..., str]) -> None:
    box = sandbox(memory_limit=64 * 1024 * 1024)
    hog = driver.sandbox_exec(
        box, ["python3", "-c", "x = bytearray(256 * 1024 * 1024); print('survived')"], timeout=30
    )
    assert hog.stdout == b""
    assert hog.exit_code != 0


@pytest.fixture(scope="module")
def busybox_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny root filesystem: static busybox and its applet links (Debian's busybox-static)."""
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        if RUNNING_IN_CI:
            pytest.fail("CI needs the busybox-static package for the image test", pytrace=False)
        pytest.skip("busybox-static is not installed")
    tarball = tmp_path_factory.mktemp("image") / "busybox.tar"
    with tarfile.open(tarball, "w") as archive:
        for folder in ("bin", "etc", "tmp", "root"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        archive.add(busybox, "bin/busybox")
        for applet in ("sh", "ls", "cat", "echo", "sleep", "uname", "id"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            archive.addfile(link)
        device = tarfile.TarInfo("bin/sneaky-device")
        device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 1  # /dev/mem: skipped
        archive.addfile(device)
    return tarball


def test_a_sandbox_runs_a_command_from_an_imported_image(
    driver: LocalDriver, sandbox: Callable[..., str], busybox_tarball: Path, volume: Callable[..., str]
) -> None:
    with pytest.raises(ImageNotFound):
        driver.sandbox_start(SandboxSpec(id="no-image", image="tiny"))
    driver.image_import("tiny", str(busybox_tarball))
    driver.image_import("tiny", str(busybox_tarball))  # again: kept as it is
    assert driver.image_exists("tiny") and driver.image_exists("host")
    assert not (Path(driver.data_root) / "images/tiny/bin/sneaky-device").exists()

    box = sandbox(image="tiny", mounts=mount(volume()))
    result = driver.sandbox_exec(
        box, "echo hello from busybox; ls /; ls /usr/bin/python3 2>&1; echo x > /data/x"
    )

    assert result.stdout.startswith(b"hello from busybox\n")
    assert b"bin" in result.stdout and b"data" in result.stdout
    assert b"No such file" in result.stdout  # nothing of the host's /usr
    assert driver.sandbox_read_file(box, "/data/x") == b"x\n"


def test_an_image_without_a_shell_is_refused(driver: LocalDriver, tmp_path: Path) -> None:
    tarball = tmp_path / "empty.tar"
    with tarfile.open(tarball, "w") as archive:
        info = tarfile.TarInfo("etc")
        info.type = tarfile.DIRTYPE
        archive.addfile(info)
    with pytest.raises(Exception, match="no /bin/sh"):
        driver.image_import("shell-less", str(tarball))
    assert not driver.image_exists("shell-less")
