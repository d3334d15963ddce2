"""Sandbox lifecycle: state on disk, start, liveness, stop.

Everything needed to find and end a sandbox lives in ``sandboxes/<id>/state.json`` (host
pids with their start times, namespace inodes, cgroup directories), so a restarted worker,
or any other worker on the node, can exec into it and stop it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from provisioning.base import ImageNotFound, Mount, ProvisioningError, SandboxNotFound, SandboxSpec
from provisioning.local import cgroups, rootfs
from provisioning.local._system import (
    ProcessRef,
    check_name,
    kill_pids,
    pids_in_mount_namespace,
    ref,
    spawn_detached,
    tool,
    write_atomic,
)
from provisioning.local.volumes import Volumes

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
HOSTNAME = "sandbox"


@dataclass
class SandboxState:
    id: str
    image: str
    mounts: list[Mount]
    env: dict[str, str]
    cwd: str
    allow_net: bool
    started_at: str
    init: ProcessRef | None = None  # pid 1 of the sandbox's pid namespace
    launcher: ProcessRef | None = None  # bubblewrap's outer process, in the private mount ns
    slirp: ProcessRef | None = None
    mount_namespaces: list[int] = field(default_factory=list)
    cgroups: cgroups.Cgroups = field(default_factory=cgroups.Cgroups)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SandboxState:
        data = json.loads(raw)
        return cls(
            **{
                **data,
                "mounts": [Mount(**mount) for mount in data["mounts"]],
                "init": _process(data["init"]),
                "launcher": _process(data["launcher"]),
                "slirp": _process(data["slirp"]),
                "cgroups": cgroups.Cgroups(**data["cgroups"]),
            }
        )

    def alive(self) -> bool:
        return self.init is not None and self.init.alive()


class Sandboxes:
    def __init__(self, data_root: str, volumes: Volumes) -> None:
        self.data_root = data_root
        self.root = os.path.join(data_root, "sandboxes")
        self.images = os.path.join(data_root, "images")
        self.volumes = volumes
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.makedirs(self.images, mode=0o700, exist_ok=True)

    def folder(self, sandbox_id: str) -> str:
        return os.path.join(self.root, check_name(sandbox_id, "Sandbox id"))

    def state(self, sandbox_id: str) -> SandboxState | None:
        try:
            with open(os.path.join(self.folder(sandbox_id), "state.json"), "rb") as handle:
                return SandboxState.from_json(handle.read())
        except FileNotFoundError:
            return None

    def live_state(self, sandbox_id: str) -> SandboxState:
        state = self.state(sandbox_id)
        if state is None or not state.alive():
            raise SandboxNotFound(f"Sandbox {sandbox_id} is not running on this node")
        return state

    def ids(self) -> list[str]:
        return sorted(name for name in os.listdir(self.root) if not name.startswith("."))

    def users_of(self, volume_id: str, *, besides: str | None = None) -> list[str]:
        """Running sandboxes that mount a volume."""
        users = []
        for sandbox_id in self.ids():
            state = self.state(sandbox_id) if sandbox_id != besides else None
            if state and state.alive() and any(m.volume_id == volume_id for m in state.mounts):
                users.append(sandbox_id)
        return users

    @contextlib.contextmanager
    def root_fd(self, sandbox_id: str) -> Iterator[int]:
        """An O_PATH fd of the sandbox's root directory as its processes see it."""
        state = self.live_state(sandbox_id)
        assert state.init is not None
        try:
            fd = os.open(f"/proc/{state.init.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise SandboxNotFound(f"Sandbox {sandbox_id} is not running on this node") from exc
        try:
            # Checked after opening: had the pid been reused, this fd would be someone else's.
            if not state.init.alive():
                raise SandboxNotFound(f"Sandbox {sandbox_id} is not running on this node")
            yield fd
        finally:
            os.close(fd)

    # --- start ------------------------------------------------------------------------

    def start(self, spec: SandboxSpec) -> None:
        """Start a sandbox; the caller holds the node lock. Already running: nothing to do."""
        folder = self.folder(spec.id)
        mounts = [Mount(m.volume_id, rootfs.normalize_mount_path(m.path), m.read_only) for m in spec.mounts]
        lower = self._image_lower(spec.image)
        host = spec.image == "host"
        lowers = {"/": lower, "/usr": "/usr"} if host else {"/": lower}
        rootfs.check_mount_layout(mounts, lowers)
        for mount in mounts:
            self.volumes.require(mount.volume_id)
        _check_limits(spec)
        existing = self.state(spec.id)
        if existing is not None and existing.alive():
            return
        if existing is not None or os.path.exists(folder):
            self.teardown(spec.id)
        state = SandboxState(
            id=spec.id,
            image=spec.image,
            mounts=mounts,
            env=dict(spec.env),
            cwd=spec.cwd,
            allow_net=spec.allow_net,
            started_at=datetime.now(UTC).isoformat(),
        )
        try:
            self._launch(state, folder, lower, host, spec)
        except BaseException:
            self.teardown(spec.id)
            raise

    def _image_lower(self, image: str) -> str:
        if image == "host":
            return rootfs.host_skeleton(self.data_root)
        path = os.path.join(self.images, check_name(image, "Image name"))
        if not os.path.isdir(path):
            raise ImageNotFound(f"Image {image!r} has not been imported on this node")
        return path

    def _launch(self, state: SandboxState, folder: str, lower: str, host: bool, spec: SandboxSpec) -> None:
        layers = {"/": _layer(folder, "root-layer")}
        if host:
            layers["/usr"] = _layer(folder, "usr-layer")
        root = os.path.join(folder, "root")
        os.makedirs(root)
        os.makedirs(os.path.join(folder, "logs"))
        rootfs.populate_upper(layers["/"][0], lower, host=host, hostname=HOSTNAME, allow_net=spec.allow_net)
        rootfs.make_mount_points({prefix: upper for prefix, (upper, _) in layers.items()}, state.mounts)
        for volume_id in {mount.volume_id for mount in state.mounts}:
            self.volumes.mount(volume_id)
        state.cgroups = cgroups.create(state.id, spec.memory_limit, spec.pids_limit)
        self._save(state)  # from here on a crash leaves enough on disk for stop to clean up
        self._run_bubblewrap(state, folder, root, lower, layers)
        if spec.allow_net:
            self._attach_network(state, folder)
        self._save(state)

    def _run_bubblewrap(
        self, state: SandboxState, folder: str, root: str, lower: str, layers: dict[str, tuple[str, str]]
    ) -> None:
        info_path = os.path.join(folder, "bwrap-info.json")
        log = os.path.join(folder, "bwrap.log")
        info_fd = os.open(info_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        lowers = {"/": lower, "/usr": "/usr"}
        script = rootfs.setup_script(
            root=root,
            overlays=[(lowers[prefix], upper, work, prefix) for prefix, (upper, work) in layers.items()],
            binds=[(self.volumes.mount_point(m.volume_id), m.path, m.read_only) for m in state.mounts],
            bwrap_args=rootfs.bwrap_args(root=root, hostname=HOSTNAME, info_fd=info_fd),
        )
        setup = os.path.join(folder, "setup.sh")
        write_atomic(setup, script.encode(), 0o700)
        unshare = [tool("unshare"), "-m", "--propagation", "private", "/bin/sh", setup]
        try:
            launcher = spawn_detached(unshare, log=log, join=state.cgroups.join_files(), pass_fds=[info_fd])
        finally:
            os.close(info_fd)
        state.launcher = ProcessRef(launcher, 0)
        with contextlib.suppress(ProvisioningError):
            state.launcher = ref(launcher)
        self._await_ready(state, log, info_path)

    def _await_ready(self, state: SandboxState, log: str, info_path: str) -> None:
        """Wait for the init to say "ready" in the log; fail early if bubblewrap died."""
        deadline = time.monotonic() + START_TIMEOUT
        while not _log_says_ready(log):
            if time.monotonic() > deadline or not (state.launcher and state.launcher.alive()):
                time.sleep(0.05)  # let bubblewrap finish writing its complaint
                raise ProvisioningError(f"Sandbox {state.id} did not start: {_tail(log)}")
            time.sleep(0.002)
        assert state.launcher is not None
        with open(info_path) as handle:
            info = json.load(handle)
        state.init = ref(int(info["child-pid"]))
        state.mount_namespaces = [
            os.stat(f"/proc/{state.launcher.pid}/ns/mnt").st_ino,
            int(info["mnt-namespace"]),
        ]

    def _attach_network(self, state: SandboxState, folder: str) -> None:
        """Give the sandbox's network namespace a user-mode uplink that cannot reach the
        host's loopback (--disable-host-loopback blocks 127.0.0.1 and 10.0.2.2 alike)."""
        assert state.init is not None
        ready_path = os.path.join(folder, "slirp-ready")
        ready_fd = os.open(ready_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        argv = [
            tool("slirp4netns"),
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            "--enable-sandbox",
            "--enable-seccomp",
            f"--userns-path=/proc/{state.init.pid}/ns/user",
            f"--ready-fd={ready_fd}",
            str(state.init.pid),
            "tap0",
        ]
        try:
            pid = spawn_detached(argv, log=os.path.join(folder, "slirp.log"), pass_fds=[ready_fd])
        finally:
            os.close(ready_fd)
        state.slirp = ref(pid)
        deadline = time.monotonic() + START_TIMEOUT
        while os.path.getsize(ready_path) == 0:
            if time.monotonic() > deadline or not state.slirp.alive():
                raise ProvisioningError(
                    f"Sandbox {state.id} has no network: {_tail(os.path.join(folder, 'slirp.log'))}"
                )
            time.sleep(0.002)

    def _save(self, state: SandboxState) -> None:
        write_atomic(os.path.join(self.folder(state.id), "state.json"), state.to_json(), 0o600)

    # --- stop -------------------------------------------------------------------------

    def teardown(self, sandbox_id: str) -> None:
        """End every process of the sandbox and remove all it left behind; the caller holds
        the node lock. Volumes no other running sandbox uses are unmounted."""
        folder = self.folder(sandbox_id)
        state = self.state(sandbox_id)
        if state is not None:
            self._kill(state)
            for volume_id in {mount.volume_id for mount in state.mounts}:
                if not self.users_of(volume_id, besides=sandbox_id):
                    self.volumes.unmount(volume_id)
            state.cgroups.remove()
        shutil.rmtree(folder, ignore_errors=True)

    def _kill(self, state: SandboxState) -> None:
        """SIGKILL pid 1 of the sandbox (the kernel then kills the rest of its pid namespace),
        then whatever is still in its cgroups or mount namespaces (nsenter helpers, say),
        until nothing is left: only then do its mounts, and the loop devices, go away."""
        for process in (state.init, state.slirp, state.launcher):
            if process is not None:
                process.kill()
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            left = state.cgroups.members()
            for inode in state.mount_namespaces:
                left.update(pids_in_mount_namespace(inode))
            if state.init is not None and state.init.alive():
                left.add(state.init.pid)
            if not left:
                return
            if time.monotonic() > deadline:
                raise ProvisioningError(
                    f"Sandbox {state.id} still has processes {sorted(left)} after {STOP_TIMEOUT:g} s"
                )
            kill_pids(left)
            time.sleep(0.005)


def _process(value: dict[str, int] | None) -> ProcessRef | None:
    return ProcessRef(**value) if value else None


def _layer(folder: str, name: str) -> tuple[str, str]:
    upper, work = os.path.join(folder, name, "upper"), os.path.join(folder, name, "work")
    os.makedirs(upper)
    os.makedirs(work)
    return upper, work


def _check_limits(spec: SandboxSpec) -> None:
    for name, value in (("memory_limit", spec.memory_limit), ("pids_limit", spec.pids_limit)):
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ProvisioningError(f"{name} must be a positive whole number, not {value!r}")
    if not isinstance(spec.cwd, str) or not spec.cwd.startswith("/") or "\x00" in spec.cwd:
        raise ProvisioningError(f"The working directory {spec.cwd!r} must be an absolute path")


def _log_says_ready(log: str) -> bool:
    try:
        with open(log, "rb") as handle:
            return b"ready\n" in handle.read(65536)
    except FileNotFoundError:
        return False


def _tail(log: str) -> str:
    try:
        with open(log, "rb") as handle:
            lines = handle.read().decode(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "no output"
    return lines[-1] if lines else "no output"
