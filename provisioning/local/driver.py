"""The ``local`` driver: volumes and sandboxes on the node's own disk and kernel (as root)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime

from provisioning.base import (
    BackgroundProcess,
    ExecResult,
    FileEntry,
    Inventory,
    ProvisioningError,
    SandboxNotFound,
    SandboxSpec,
    VolumeBusy,
    VolumeUsage,
)
from provisioning.local import execs, paths
from provisioning.local._system import check_name, node_lock
from provisioning.local.sandboxes import Sandboxes
from provisioning.local.volumes import Volumes, check_capacity

DEFAULT_READ_LIMIT = 1024 * 1024


class LocalDriver:
    """One node's data plane on its own disk and kernel.

    Everything lives under ``data_root``::

        volumes/<id>.img  mnt/<id>/  peek/<id>/     volumes (see ``volumes``)
        images/<name>/                               imported root filesystems
        sandboxes/<id>/state.json, logs/, layers     running sandboxes (see ``sandboxes``)
        .lock                                        the node lock

    The state on disk is the only state: any number of instances, in any number of
    worker processes, may drive the same data root.
    """

    def __init__(self, data_root: str) -> None:
        root = os.path.abspath(data_root)
        # The root ends up in overlayfs options and shell-parsed mount tables.
        if any(char in root for char in ",:\\\n\t "):
            raise ProvisioningError(
                f"The data root {root!r} may not contain spaces, commas, colons or backslashes"
            )
        os.makedirs(root, mode=0o700, exist_ok=True)
        self.data_root = root
        self.volumes = Volumes(root)
        self.sandboxes = Sandboxes(root, self.volumes)
        self._lock_path = os.path.join(root, ".lock")

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return node_lock(self._lock_path)

    # --- volumes ----------------------------------------------------------------------

    def volume_create(self, volume_id: str, capacity: int) -> None:
        """Create an empty ext4 volume of exactly ``capacity`` bytes; repeating it is a no-op."""
        check_name(volume_id, "Volume id")
        self.volumes.create(volume_id, check_capacity(capacity))

    def volume_destroy(self, volume_id: str) -> None:
        """Delete a volume and its data; refused while a running sandbox mounts it."""
        check_name(volume_id, "Volume id")
        with self._locked():
            self._refuse_if_used(volume_id)
            self.volumes.unmount(volume_id)
            self.volumes.remove(volume_id)

    def volume_extend(self, volume_id: str, capacity: int) -> None:
        """Grow a volume that no running sandbox mounts; it can never shrink."""
        check_name(volume_id, "Volume id")
        check_capacity(capacity)
        with self._locked():
            self.volumes.require(volume_id)
            self._refuse_if_used(volume_id)
            self.volumes.unmount(volume_id)  # a mount left over by a crash, used by nobody
            self.volumes.extend(volume_id, capacity)

    def _refuse_if_used(self, volume_id: str) -> None:
        users = self.sandboxes.users_of(volume_id)
        if users:
            raise VolumeBusy(f"Volume {volume_id} is mounted by sandbox {users[0]}; stop it first")

    def volume_usage(self, volume_id: str) -> VolumeUsage:
        """Used bytes according to ext4's own statistics (what ``df`` calls Used)."""
        check_name(volume_id, "Volume id")
        with self._locked():
            capacity = self.volumes.require(volume_id)
            used = self.volumes.used(volume_id)
        return VolumeUsage(used=used, capacity=capacity, measured_at=datetime.now(UTC))

    def volume_exists(self, volume_id: str) -> bool:
        return self.volumes.capacity(check_name(volume_id, "Volume id")) is not None

    def volume_list_dir(self, volume_id: str, path: str) -> list[FileEntry]:
        with self._volume_root(volume_id) as root_fd:
            return paths.list_dir(root_fd, path)

    def volume_read_file(self, volume_id: str, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        with self._volume_root(volume_id) as root_fd:
            return paths.read_file(root_fd, path, limit)

    @contextlib.contextmanager
    def _volume_root(self, volume_id: str) -> Iterator[int]:
        """The volume's root directory, held under the lock so it cannot be unmounted or
        resized meanwhile. Paths resolve inside it exactly as in a sandbox."""
        check_name(volume_id, "Volume id")
        with self._locked(), self.volumes.peek(volume_id) as point:
            fd = os.open(point, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                yield fd
            finally:
                os.close(fd)

    # --- sandboxes --------------------------------------------------------------------

    def sandbox_start(self, spec: SandboxSpec) -> None:
        """Start a sandbox that outlives this process; a running one is left as it is."""
        check_name(spec.id, "Sandbox id")
        with self._locked():
            self.sandboxes.start(spec)

    def sandbox_exec(
        self,
        sandbox_id: str,
        cmd: str | list[str],
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
        output_limit: int = 1024 * 1024,
    ) -> ExecResult:
        """Run a command in the sandbox and wait for it.

        ``cmd`` is a shell string (run by the sandbox's ``/bin/sh -c``) or an argv list.
        ``env`` adds to the sandbox's environment; ``cwd`` defaults to the sandbox's.
        At most ``output_limit`` bytes of stdout and of stderr are kept (the rest is read
        and dropped, and the result says truncated).

        A foreground command owns every process it starts: when it exits, anything it left
        running is killed (start servers with ``sandbox_exec_background``). At the deadline
        the whole tree is killed and the result has ``timed_out=True`` and ``exit_code=None``;
        CommandTimeout is not raised, so the caller can record what was printed. A command
        killed by a signal reports 128 + the signal number, like a shell.
        """
        state = self.sandboxes.live_state(sandbox_id)
        return execs.run(state, cmd, cwd=cwd, env=env, timeout=timeout, output_limit=output_limit)

    def sandbox_exec_background(
        self,
        sandbox_id: str,
        cmd: str | list[str],
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
    ) -> BackgroundProcess:
        """Start a command that keeps running until it ends or the sandbox stops; its stdout
        and stderr go to a log read with ``sandbox_read_log``."""
        state = self.sandboxes.live_state(sandbox_id)
        folder = self.sandboxes.folder(sandbox_id)
        return BackgroundProcess(pid=execs.start_background(state, folder, cmd, cwd=cwd, env=env))

    def sandbox_read_log(self, sandbox_id: str, pid: int, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        """The last ``limit`` bytes a background command printed (stdout and stderr)."""
        if self.sandboxes.state(sandbox_id) is None:
            raise SandboxNotFound(f"Sandbox {sandbox_id} is not running on this node")
        return execs.read_log(self.sandboxes.folder(sandbox_id), sandbox_id, pid, limit)

    def sandbox_read_file(self, sandbox_id: str, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        """The first ``limit`` bytes of a regular file, by its path inside the sandbox."""
        with self.sandboxes.root_fd(sandbox_id) as root_fd:
            return paths.read_file(root_fd, path, limit)

    def sandbox_write_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        """Create or overwrite a file inside the sandbox, creating missing parent
        directories (like ``mkdir -p``); the file is owned by the sandbox's root."""
        with self.sandboxes.root_fd(sandbox_id) as root_fd:
            paths.write_file(root_fd, path, bytes(data))

    def sandbox_list_dir(self, sandbox_id: str, path: str) -> list[FileEntry]:
        with self.sandboxes.root_fd(sandbox_id) as root_fd:
            return paths.list_dir(root_fd, path)

    def sandbox_alive(self, sandbox_id: str) -> bool:
        state = self.sandboxes.state(sandbox_id)
        return state is not None and state.alive()

    def sandbox_stop(self, sandbox_id: str) -> None:
        """End every process of the sandbox and remove its writable layer; volumes nothing
        else uses are unmounted. Stopping a stopped (or unknown) sandbox is a no-op."""
        check_name(sandbox_id, "Sandbox id")
        with self._locked():
            self.sandboxes.teardown(sandbox_id)

    # --- images -----------------------------------------------------------------------

    def image_import(self, name: str, tarball: str) -> None:
        """Unpack a root filesystem tarball as image ``name``; an existing image is kept.

        Members that would land outside the image (absolute paths, ``..``, links leading
        out) are refused by tarfile's ``tar`` filter; device nodes and FIFOs are skipped.
        """
        check_name(name, "Image name")
        if name == "host":
            raise ProvisioningError("'host' is the node's own image and cannot be imported")
        target = os.path.join(self.sandboxes.images, name)
        if os.path.isdir(target):
            return
        if not os.path.isfile(tarball):
            raise ProvisioningError(f"There is no tarball at {tarball}")
        temp = os.path.join(self.sandboxes.images, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            _unpack(tarball, temp, name)
            with contextlib.suppress(OSError):  # another worker imported it meanwhile
                os.rename(temp, target)
        finally:
            shutil.rmtree(temp, ignore_errors=True)

    def image_exists(self, name: str) -> bool:
        if name == "host":
            return True
        return os.path.isdir(os.path.join(self.sandboxes.images, check_name(name, "Image name")))

    def inventory(self) -> Inventory:
        sandboxes = {}
        for sandbox_id in self.sandboxes.ids():
            state = self.sandboxes.state(sandbox_id)
            sandboxes[sandbox_id] = state is not None and state.alive()
        return Inventory(volumes=self.volumes.all(), sandboxes=sandboxes)


def _unpack(tarball: str, destination: str, name: str) -> None:
    os.makedirs(destination, mode=0o755)
    try:
        with tarfile.open(tarball) as archive:
            archive.extractall(destination, filter=_image_member)
    except (tarfile.TarError, OSError) as exc:
        raise ProvisioningError(f"Cannot unpack image {name}: {exc}") from exc
    os.chmod(destination, 0o755)
    fd = os.open(destination, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if not paths.exists(fd, "/bin/sh"):
            raise ProvisioningError(f"Image {name} has no /bin/sh, which every sandbox needs")
    finally:
        os.close(fd)


def _image_member(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
    checked = tarfile.tar_filter(member, destination)
    if checked.isdev() or checked.isfifo():
        return None
    return checked
