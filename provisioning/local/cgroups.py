"""Memory and process-count limits through the kernel's cgroups, where the host offers them.

Cgroup v1 (one hierarchy per controller, as on this project's CI hosts) and a pure cgroup
v2 host are both handled. On v1 the sandbox groups are nested under the worker's own group
(``<controller>/<worker's group>/berth/<sandbox id>``): creating them there needs no write
access to the hierarchy's root, and the sandboxes stay inside whatever limit the host puts
on the worker. Anything that is not writable is skipped and recorded as not applied.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass, field

from provisioning.local._system import kill_pids

ROOT = "/sys/fs/cgroup"


@dataclass
class Cgroups:
    """The cgroup directories of one sandbox, as stored in its state file."""

    dirs: dict[str, str] = field(default_factory=dict)  # controller -> directory
    applied: dict[str, bool] = field(default_factory=dict)  # limit -> written

    def join_files(self, exec_group: str | None = None) -> list[str]:
        """Files a process writes its pid to in order to join every group; with
        ``exec_group`` that group takes the place of its parent."""
        paths = set(self.dirs.values())
        if exec_group is not None:
            paths = {path for path in paths if path != os.path.dirname(exec_group)} | {exec_group}
        return [os.path.join(path, "cgroup.procs") for path in sorted(paths)]

    def exec_group(self) -> str | None:
        """A fresh child group for one exec, so it can be killed with every descendant."""
        parent = self.dirs.get("pids") or self.dirs.get("unified")
        if parent is None:
            return None
        path = os.path.join(parent, f"exec-{secrets.token_hex(4)}")
        try:
            os.mkdir(path)
        except OSError:
            return None
        return path

    def members(self) -> set[int]:
        found: set[int] = set()
        for path in set(self.dirs.values()):
            found |= _members(path)
        return found

    def remove(self) -> None:
        for path in set(self.dirs.values()):
            remove_group(path)


def create(sandbox_id: str, memory_limit: int | None, pids_limit: int | None) -> Cgroups:
    groups = Cgroups()
    if os.path.exists(os.path.join(ROOT, "cgroup.controllers")):
        _create_v2(groups, sandbox_id, memory_limit, pids_limit)
    else:
        _create_v1(groups, "memory", sandbox_id, "memory.limit_in_bytes", memory_limit)
        _create_v1(groups, "pids", sandbox_id, "pids.max", pids_limit)
    return groups


def _create_v1(groups: Cgroups, controller: str, sandbox_id: str, limit_file: str, limit: int | None) -> None:
    own = _own_v1_group(controller)
    if own is None:
        groups.applied[controller] = False
        return
    path = os.path.join(ROOT, controller, own.lstrip("/"), "berth", sandbox_id)
    try:
        os.makedirs(path, exist_ok=True)
        if limit is not None:
            _write(path, limit_file, str(limit))
            if controller == "memory":
                # Without this the sandbox could spill past its limit into swap.
                with contextlib.suppress(OSError):
                    _write(path, "memory.memsw.limit_in_bytes", str(limit))
    except OSError:
        groups.applied[controller] = False
        remove_group(path)
        return
    groups.dirs[controller] = path
    groups.applied[controller] = limit is not None


def _own_v1_group(controller: str) -> str | None:
    if not os.access(os.path.join(ROOT, controller), os.W_OK):
        return None
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, names, path = line.rstrip("\n").split(":", 2)
            if controller in names.split(","):
                return path
    return None


def _create_v2(groups: Cgroups, sandbox_id: str, memory_limit: int | None, pids_limit: int | None) -> None:
    # The "no internal processes" rule forbids nesting under the worker's own group here.
    base = os.path.join(ROOT, "berth")
    path = os.path.join(base, sandbox_id)
    try:
        os.makedirs(path, exist_ok=True)
        for parent in (ROOT, base):
            with contextlib.suppress(OSError):
                _write(parent, "cgroup.subtree_control", "+memory +pids")
    except OSError:
        groups.applied.update(memory=False, pids=False)
        return
    groups.dirs["unified"] = path
    for name, limit_file, limit in (("memory", "memory.max", memory_limit), ("pids", "pids.max", pids_limit)):
        try:
            if limit is not None:
                _write(path, limit_file, str(limit))
            groups.applied[name] = limit is not None
        except OSError:
            groups.applied[name] = False


def _write(path: str, name: str, value: str) -> None:
    with open(os.path.join(path, name), "w") as handle:
        handle.write(value)


def _members(path: str) -> set[int]:
    found: set[int] = set()
    for folder, _, _ in os.walk(path):
        with contextlib.suppress(OSError), open(os.path.join(folder, "cgroup.procs")) as handle:
            found.update(int(line) for line in handle if line.strip())
    return found


def kill_group(path: str, timeout: float = 5.0) -> None:
    """SIGKILL every process in a group and its children until none is left (or timeout)."""
    deadline = time.monotonic() + timeout
    while (members := _members(path)) and time.monotonic() < deadline:
        kill_pids(members)
        time.sleep(0.005)


def remove_group(path: str) -> None:
    """rmdir a group and its children, deepest first; a group still holding a zombie is retried."""
    if not os.path.isdir(path):
        return
    for folder, _, _ in sorted(os.walk(path), key=lambda item: -len(item[0])):
        for _ in range(200):
            try:
                os.rmdir(folder)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)
