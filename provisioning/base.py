"""The data-plane driver interface.

Plain Python: nothing here (or anywhere in ``provisioning``) imports Django, so the data
plane can be tested and reasoned about on its own. The control plane calls a driver from
Celery tasks running on the node that owns the storage; every call is synchronous and may
be slow, so callers keep it outside database transactions.

Every operation is idempotent where the control plane may repeat it after a crash:
``volume_create`` of an existing volume with the same capacity, ``volume_destroy`` of a
missing one and ``sandbox_stop`` of a stopped one all succeed quietly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

# --- errors ---------------------------------------------------------------------------


class ProvisioningError(Exception):
    """Base of every error the data plane raises; ``code`` is stable, the message human."""

    code = "provisioning_error"


class CapacityError(ProvisioningError):
    code = "capacity_out_of_range"


class VolumeNotFound(ProvisioningError):
    code = "volume_not_found"


class VolumeBusy(ProvisioningError):
    """The volume is mounted by a sandbox, so it cannot be extended or destroyed now."""

    code = "volume_busy"


class SandboxNotFound(ProvisioningError):
    """The sandbox is gone: never started here, stopped, or every process in it ended."""

    code = "sandbox_gone"


class ImageNotFound(ProvisioningError):
    code = "image_not_found"


class CommandTimeout(ProvisioningError):
    code = "command_timeout"


class PathRefused(ProvisioningError):
    """A file path that is malformed or would leave the sandbox's (or volume's) view."""

    code = "path_refused"


class FileNotFound(ProvisioningError):
    code = "file_not_found"


# --- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeUsage:
    used: int
    capacity: int
    measured_at: datetime


@dataclass(frozen=True)
class Mount:
    volume_id: str
    path: str
    read_only: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    id: str
    image: str = "host"
    mounts: tuple[Mount, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    allow_net: bool = False
    memory_limit: int | None = None  # bytes
    pids_limit: int | None = None
    cwd: str = "/"


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None  # None when killed at the deadline
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    duration: float  # seconds
    timed_out: bool = False


@dataclass(frozen=True)
class BackgroundProcess:
    pid: int  # as seen inside the sandbox's pid namespace or on the host; opaque to callers


@dataclass(frozen=True)
class FileEntry:
    name: str
    kind: Literal["file", "dir", "symlink", "other"]
    size: int
    modified_at: datetime


@dataclass(frozen=True)
class Inventory:
    """What storage and sandboxes exist on the node, for reconciliation."""

    volumes: dict[str, int]  # volume id -> capacity in bytes
    sandboxes: dict[str, bool]  # sandbox id -> any process still alive


# --- the interface --------------------------------------------------------------------


class Driver(Protocol):
    """One node's data plane."""

    # volumes
    def volume_create(self, volume_id: str, capacity: int) -> None: ...
    def volume_destroy(self, volume_id: str) -> None: ...
    def volume_extend(self, volume_id: str, capacity: int) -> None: ...
    def volume_usage(self, volume_id: str) -> VolumeUsage: ...
    def volume_exists(self, volume_id: str) -> bool: ...
    def volume_list_dir(self, volume_id: str, path: str) -> list[FileEntry]: ...
    def volume_read_file(self, volume_id: str, path: str, limit: int = ...) -> bytes: ...

    # sandboxes
    def sandbox_start(self, spec: SandboxSpec) -> None: ...
    def sandbox_exec(
        self,
        sandbox_id: str,
        cmd: str | list[str],
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
        output_limit: int = 1024 * 1024,
    ) -> ExecResult: ...
    def sandbox_exec_background(
        self,
        sandbox_id: str,
        cmd: str | list[str],
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
    ) -> BackgroundProcess: ...
    def sandbox_read_log(self, sandbox_id: str, pid: int, limit: int = ...) -> bytes: ...
    def sandbox_read_file(self, sandbox_id: str, path: str, limit: int = ...) -> bytes: ...
    def sandbox_write_file(self, sandbox_id: str, path: str, data: bytes) -> None: ...
    def sandbox_list_dir(self, sandbox_id: str, path: str) -> list[FileEntry]: ...
    def sandbox_alive(self, sandbox_id: str) -> bool: ...
    def sandbox_stop(self, sandbox_id: str) -> None: ...

    # images
    def image_import(self, name: str, tarball: str) -> None: ...
    def image_exists(self, name: str) -> bool: ...

    def inventory(self) -> Inventory: ...
