"""Running commands inside a running sandbox.

A command enters the sandbox's namespaces with nsenter (user, mount, pid, ipc, uts, net,
and its root), after joining the sandbox's cgroups. Only ``/bin/sh`` inside the sandbox
sees the caller's environment; host tools get a fixed one, so a variable like LD_PRELOAD
can never load a library into a host process running as root.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import selectors
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass

from provisioning.base import ExecResult, FileNotFound, ProvisioningError
from provisioning.local import cgroups
from provisioning.local._system import HOST_ENV, JOIN_AND_EXEC, spawn_detached, tool
from provisioning.local.rootfs import SANDBOX_PATH
from provisioning.local.sandboxes import SandboxState

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_READ_CHUNK = 65536


def command_argv(cmd: str | list[str]) -> list[str]:
    argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    if not argv or not all(isinstance(arg, str) for arg in argv):
        raise ProvisioningError("A command must be a shell string or a non-empty list of strings")
    if any("\x00" in arg for arg in argv):
        raise ProvisioningError("A command may not contain NUL bytes")
    return argv


def enter_argv(
    state: SandboxState, argv: list[str], cwd: str | None, env: dict[str, str] | None
) -> list[str]:
    """nsenter into the sandbox, then a tiny in-sandbox shell sets env and cwd and execs."""
    assert state.init is not None
    variables = {"PATH": SANDBOX_PATH, "HOME": "/root", **state.env, **(env or {})}
    for name, value in variables.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name) or "\x00" in str(value):
            raise ProvisioningError(f"Environment variable {name!r} is not allowed")
    directory = cwd or state.cwd
    if not directory.startswith("/") or "\x00" in directory:
        raise ProvisioningError(f"The working directory {directory!r} must be an absolute path")
    exports = " ".join(f"{name}={shlex.quote(str(value))}" for name, value in variables.items())
    # nsenter's own --wd=DIR would open DIR on the host; the cd happens inside instead.
    inner = f'export {exports}; cd -- "$1" || exit 126; shift; exec "$@"'
    return [
        tool("nsenter"),
        "-t",
        str(state.init.pid),
        "-U",
        "-m",
        "-p",
        "-i",
        "-u",
        "-n",
        "-r",
        "-w",
        "--",
        "/bin/sh",
        "-c",
        inner,
        "sh",
        directory,
        *argv,
    ]


@dataclass
class _Capture:
    limit: int
    data: bytearray
    truncated: bool = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        self.data += chunk[: max(room, 0)]


def run(
    state: SandboxState,
    cmd: str | list[str],
    *,
    cwd: str | None,
    env: dict[str, str] | None,
    timeout: float,
    output_limit: int,
) -> ExecResult:
    """Run a command to completion. See ``LocalDriver.sandbox_exec`` for the rules."""
    argv = enter_argv(state, command_argv(cmd), cwd, env)
    group = state.cgroups.exec_group()
    join = state.cgroups.join_files(exec_group=group)
    started = time.monotonic()
    process = subprocess.Popen(
        ["/bin/sh", "-c", JOIN_AND_EXEC, "sh", *join, "--", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=HOST_ENV,
        start_new_session=True,  # its own process group, to kill it with its children
    )
    try:
        out, err, timed_out = _collect(process, group, started + max(timeout, 0.0), max(output_limit, 0))
    finally:
        _kill_tree(process.pid, group)
        process.wait()
        if group is not None:
            cgroups.remove_group(group)
    code = process.returncode
    return ExecResult(
        exit_code=None if timed_out else (code if code >= 0 else 128 - code),
        stdout=bytes(out.data),
        stderr=bytes(err.data),
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
        duration=time.monotonic() - started,
        timed_out=timed_out,
    )


def _collect(
    process: subprocess.Popen[bytes], group: str | None, deadline: float, limit: int
) -> tuple[_Capture, _Capture, bool]:
    """Read both pipes until they close, keeping ``limit`` bytes of each.

    When the command itself exits, whatever it left running is killed (a foreground exec
    owns its children; use a background exec for servers) so the pipes close at once.
    At the deadline everything is killed and the result says timed out.
    """
    assert process.stdout is not None and process.stderr is not None
    captures = {
        process.stdout.fileno(): _Capture(limit, bytearray()),
        process.stderr.fileno(): _Capture(limit, bytearray()),
    }
    pidfd = os.pidfd_open(process.pid)
    selector = selectors.DefaultSelector()
    for fd in captures:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    selector.register(pidfd, selectors.EVENT_READ)
    open_pipes, timed_out = set(captures), False
    try:
        while open_pipes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in selector.select(remaining):
                if key.fd == pidfd:
                    selector.unregister(pidfd)
                    _kill_tree(process.pid, group)
                    continue
                chunk = _read(key.fd)
                if chunk:
                    captures[key.fd].add(chunk)
                elif chunk is not None:
                    selector.unregister(key.fd)
                    open_pipes.discard(key.fd)
    finally:
        selector.close()
        os.close(pidfd)
    return captures[process.stdout.fileno()], captures[process.stderr.fileno()], timed_out


def _read(fd: int) -> bytes | None:
    """A chunk, b"" at end of file, or None when there is nothing after all."""
    try:
        return os.read(fd, _READ_CHUNK)
    except BlockingIOError:
        return None


def _kill_tree(pgid: int, group: str | None) -> None:
    """SIGKILL the exec's process group and, since a child may have left the group with
    setsid, everything in its own cgroup too."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    if group is not None:
        cgroups.kill_group(group)


def start_background(
    state: SandboxState, folder: str, cmd: str | list[str], *, cwd: str | None, env: dict[str, str] | None
) -> int:
    """Start a command that keeps running after the call; its output goes to a log.

    The pid returned is the host pid of its nsenter; the log is ``logs/<pid>.log``.
    """
    argv = enter_argv(state, command_argv(cmd), cwd, env)
    logs = os.path.join(folder, "logs")
    pending = os.path.join(logs, f".starting-{secrets.token_hex(4)}.log")
    pid = spawn_detached(argv, log=pending, join=state.cgroups.join_files())
    os.replace(pending, log_path(folder, pid))
    return pid


def log_path(folder: str, pid: int) -> str:
    return os.path.join(folder, "logs", f"{int(pid)}.log")


def read_log(folder: str, sandbox_id: str, pid: int, limit: int) -> bytes:
    """The last ``limit`` bytes of a background command's output (the freshest part)."""
    try:
        with open(log_path(folder, pid), "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - max(limit, 0)))
            return handle.read(max(limit, 0))
    except FileNotFoundError as exc:
        raise FileNotFound(f"Sandbox {sandbox_id} has no background process {pid}") from exc
