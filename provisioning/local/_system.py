"""Small host helpers: running tools, identifying processes, the node lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from provisioning.base import ProvisioningError

# Ids and image names become file names under the data root, so they are kept to a
# conservative alphabet; starting with an alphanumeric rules out "." and "..".
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ProvisioningError(f"{what} {value!r} is not a valid name (letters, digits, _ . -)")
    return value


def tool(name: str) -> str:
    """The absolute path of a host tool, so a sandbox's PATH never picks it."""
    for folder in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise ProvisioningError(f"The host tool {name!r} is not installed")
    return found


def run(argv: Sequence[str], *, ok: Iterable[int] = (0,), timeout: float = 300.0) -> str:
    """Run a host tool to completion; a failure becomes a ProvisioningError with its stderr."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise ProvisioningError(f"{os.path.basename(argv[0])} timed out after {timeout:g} s") from exc
    if done.returncode not in tuple(ok):
        detail = (done.stderr or done.stdout).strip().splitlines()
        message = detail[-1] if detail else f"exit status {done.returncode}"
        raise ProvisioningError(f"{os.path.basename(argv[0])} failed: {message}")
    return done.stdout


# --- processes ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessRef:
    """A host pid plus its start time: a pid alone may be reused after the process ends."""

    pid: int
    start_time: int

    def alive(self) -> bool:
        return start_time(self.pid) == self.start_time

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), or None if there is no such pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":
        return None  # a zombie has ended; it only waits for its parent to notice
    return int(fields[19])


def ref(pid: int) -> ProcessRef:
    started = start_time(pid)
    if started is None:
        raise ProvisioningError(f"Process {pid} ended before it could be recorded")
    return ProcessRef(pid, started)


def host_pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def pids_in_mount_namespace(ns_inode: int) -> list[int]:
    """Host processes inside one mount namespace (a sandbox's, by its inode number)."""
    found = []
    for pid in host_pids():
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}/ns/mnt").st_ino == ns_inode:
                found.append(pid)
    return found


def kill_pids(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition()`` until it is true; a ProvisioningError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not condition():
        if time.monotonic() > deadline:
            raise ProvisioningError(f"Timed out after {timeout:g} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


# --- files ----------------------------------------------------------------------------


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write a small file so that readers see the old content or the new, never half."""
    temp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def node_lock(path: str) -> Iterator[None]:
    """One exclusive lock per data root, shared by every worker process on the node.

    It serialises the decisions that look at mounts and running sandboxes and then act
    (mount, unmount, extend, destroy, start, stop), so two workers never race on a volume.
    flock works between threads of one process too, since each call opens its own file.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                break
            except OSError as exc:  # pragma: no cover - only on a signal
                if exc.errno != errno.EINTR:
                    raise
        yield
    finally:
        os.close(fd)


# --- launching processes that outlive the worker -------------------------------------

# Joins the cgroups named before "--", then starts the rest in the background with its
# output appended to a log, and prints its pid. The shell exits at once, so the started
# process is re-parented away from the worker: it survives a worker restart and never
# lingers as the worker's zombie.
_DETACH = (
    'log=$1; shift; while [ "$1" != -- ]; do echo $$ >"$1" || exit 125; shift; done; shift; '
    '"$@" </dev/null >>"$log" 2>&1 & echo $!'
)
# The same joining, then exec in the foreground (for execs the worker waits on).
JOIN_AND_EXEC = 'while [ "$1" != -- ]; do echo $$ >"$1" || exit 125; shift; done; shift; exec "$@"'
# Host tools never see a sandbox's environment (think LD_PRELOAD): they get this one.
HOST_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def spawn_detached(
    argv: Sequence[str], *, log: str, join: Sequence[str] = (), pass_fds: Sequence[int] = ()
) -> int:
    """Start ``argv`` in a new session, detached, output to ``log``; its host pid."""
    done = subprocess.run(
        ["/bin/sh", "-c", _DETACH, "sh", log, *join, "--", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=HOST_ENV,
        pass_fds=tuple(pass_fds),
        start_new_session=True,
        timeout=30,
    )
    line = done.stdout.strip()
    if done.returncode != 0 or not line.isdigit():
        raise ProvisioningError(
            f"Could not start {os.path.basename(argv[0])}: {done.stderr.decode(errors='replace').strip()}"
        )
    return int(line)
