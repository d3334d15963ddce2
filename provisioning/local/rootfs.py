"""The ephemeral root filesystem of a sandbox and the script that assembles it.

The root is an overlay whose lower layer is the image (for ``host``: a small skeleton of
merged-/usr symlinks, with the node's own /usr as the lower layer of a second overlay) and
whose upper layer lives in the sandbox's state directory, so every write outside the
volumes disappears with the sandbox.

The overlays and the volume bind mounts are made by ``setup.sh`` inside a private mount
namespace (``unshare -m``) just before it execs bubblewrap; they live and die with that
namespace and never show up in the host's mount table. Read-only binds are made there,
by host root, so that when bubblewrap moves them into the sandbox's user namespace the
kernel locks them read-only: not even root inside the sandbox can remount them writable.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import shlex
import shutil
import stat
from collections.abc import Sequence

from provisioning.base import Mount, PathRefused
from provisioning.local._system import tool

SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOLD = "/.berth/hold"
# pid 2 of the sandbox (pid 1 is bubblewrap's reaper): says it is up, then waits forever on
# a FIFO it holds open for both reading and writing, so it never sees end-of-file. It
# needs nothing but /bin/sh, which any usable image has.
INIT_SCRIPT = (
    f"echo ready; exec </dev/null >/dev/null 2>&1 3>&- 4>&-; exec 9<>{HOLD}; while :; do read _ <&9; done"
)
_MERGED_USR = ("bin", "sbin", "lib", "lib64", "lib32", "libx32")
_SKELETON_DIRS = (
    "usr",
    "etc",
    "root",
    "home",
    "tmp",
    "var",
    "var/tmp",
    "run",
    "mnt",
    "opt",
    "srv",
    "proc",
    "dev",
)
# Harmless parts of the host's /etc that programs under /usr expect (Debian alternatives,
# the linker cache, CA certificates). Nothing secret (shadow, ssh keys) is ever copied.
_HOST_ETC = ("alternatives", "ld.so.cache", "localtime", "ssl/certs", "mime.types")


def host_skeleton(data_root: str) -> str:
    """The lower layer of the ``host`` image, made once per data root."""
    path = os.path.join(data_root, "images", ".host-skeleton")
    if os.path.isdir(path):
        return path
    temp = f"{path}.tmp-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    os.makedirs(temp)
    for name in _SKELETON_DIRS:
        os.makedirs(os.path.join(temp, name), exist_ok=True)
    os.chmod(os.path.join(temp, "tmp"), 0o1777)
    os.chmod(os.path.join(temp, "var/tmp"), 0o1777)
    os.chmod(os.path.join(temp, "root"), 0o700)
    for name in _MERGED_USR:
        if os.path.isdir(f"/usr/{name}"):
            os.symlink(f"usr/{name}", os.path.join(temp, name))
    _copy_host_etc(os.path.join(temp, "etc"))
    try:
        os.rename(temp, path)
    except OSError:  # another worker made it first
        shutil.rmtree(temp, ignore_errors=True)
    return path


def normalize_mount_path(path: str) -> str:
    """An absolute, normalised mount path, or PathRefused."""
    if not isinstance(path, str) or "\x00" in path or not path.startswith("/") or len(path) > 1024:
        raise PathRefused(f"Mount path {path[:100]!r} must be an absolute path")
    if any(char in path for char in "\n\t ,:\\") or ".." in path.split("/"):
        raise PathRefused(f"Mount path {path!r} contains characters or parts that are not allowed")
    clean = posixpath.normpath(path)
    top = clean.split("/")[1]
    if clean == "/" or top in ("proc", "dev", ".berth"):
        raise PathRefused(f"Volumes cannot be mounted at {clean}")
    return clean


def check_mount_layout(mounts: Sequence[Mount], lowers: dict[str, str]) -> None:
    """Refuse duplicate or nested mount paths and paths through a symlink of the image.

    ``lowers`` maps a path prefix in the sandbox ("/", "/usr") to the host directory that
    is its lower layer. A mount point below, say, the image's /bin symlink would turn
    /bin into a real directory in the upper layer and hide everything behind the link.
    """
    paths = sorted(mount.path for mount in mounts)
    for first, second in itertools.pairwise(paths):
        if second == first or second.startswith(first + "/"):
            raise PathRefused(f"Mount paths {first} and {second} overlap")
    for path in paths:
        prefix, lower = _lower_for(path, lowers)
        current = lower
        for part in path[len(prefix) :].strip("/").split("/"):
            current = os.path.join(current, part)
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                break
            if not stat.S_ISDIR(mode):
                raise PathRefused(f"Mount path {path} goes through a symlink or file of the image")


def _lower_for(path: str, lowers: dict[str, str]) -> tuple[str, str]:
    best = max(
        (prefix for prefix in lowers if path == prefix or path.startswith(prefix.rstrip("/") + "/")), key=len
    )
    return best, lowers[best]


def populate_upper(upper: str, image_lower: str, *, host: bool, hostname: str, allow_net: bool) -> None:
    """Seed the writable layer: /etc basics, the init FIFO, /tmp.

    Files go into the fresh upper directory, never through the merged view, so a symlink
    in an imported image (say /etc -> /somewhere/on/the/host) cannot redirect them.
    """
    etc = os.path.join(upper, "etc")
    os.makedirs(etc, exist_ok=True)
    os.makedirs(os.path.join(upper, ".berth"), mode=0o700, exist_ok=True)
    os.mkfifo(os.path.join(upper, HOLD.lstrip("/")), 0o600)
    files = {
        "hosts": f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost\n",
        # slirp4netns answers DNS on 10.0.2.3; without network there is nothing to ask.
        "resolv.conf": "nameserver 10.0.2.3\n" if allow_net else "",
        "hostname": f"{hostname}\n",
    }
    defaults = {
        "passwd": (
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        "group": "root:x:0:\nnogroup:x:65534:\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    }
    for name, content in defaults.items():
        if host or not os.path.isfile(os.path.join(image_lower, "etc", name)):
            files[name] = content
    for name, content in files.items():
        with open(os.path.join(etc, name), "w") as handle:
            handle.write(content)
    tmp = os.path.join(upper, "tmp")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o1777)


def _copy_host_etc(etc: str) -> None:
    for name in _HOST_ETC:
        source, target = os.path.join("/etc", name), os.path.join(etc, name)
        if not os.path.lexists(source):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.isdir(source) and not os.path.islink(source):
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target, follow_symlinks=False)


def make_mount_points(uppers: dict[str, str], mounts: Sequence[Mount]) -> None:
    """Create each mount point in the upper layer that the merged view will take it from."""
    for mount in mounts:
        prefix, upper = _lower_for(mount.path, uppers)
        relative = mount.path[len(prefix) :].strip("/")
        os.makedirs(os.path.join(upper, relative), exist_ok=True)


def setup_script(
    *,
    root: str,
    overlays: Sequence[tuple[str, str, str, str]],
    binds: Sequence[tuple[str, str, bool]],
    bwrap_args: Sequence[str],
) -> str:
    """The shell script run in the private mount namespace; it ends by exec'ing bubblewrap.

    ``overlays`` are (lower, upper, work, target) and ``binds`` (source, target, read_only),
    targets relative to ``root``. Before bubblewrap starts, every other loop-backed mount
    copied from the host is detached from this namespace: a copy would pin another
    volume's filesystem (and its loop device) for as long as this sandbox runs.
    """
    q = shlex.quote
    lines = ["set -e"]
    for lower, upper, work, target in overlays:
        options = f"lowerdir={lower},upperdir={upper},workdir={work}"
        lines.append(
            f"{q(tool('mount'))} -t overlay -o nosuid,nodev,{q(options)} berth {q(_under(root, target))}"
        )
    for source, target, read_only in binds:
        where = q(_under(root, target))
        lines.append(f"{q(tool('mount'))} --bind {q(source)} {where}")
        flags = "remount,bind,nosuid,nodev" + (",ro" if read_only else "")
        lines.append(f"{q(tool('mount'))} -o {flags} {where}")
    lines.append(
        f"{q(tool('findmnt'))} -rn -o TARGET,SOURCE | while read -r target source; do"
        f' case "$source" in /dev/loop*) case "$target" in {q(root)}|{q(root)}/*) ;;'
        f' *) {q(tool("umount"))} -l "$target" 2>/dev/null || true;; esac;; esac; done'
    )
    lines.append("exec " + " ".join(q(arg) for arg in bwrap_args))
    return "\n".join(lines) + "\n"


def _under(root: str, target: str) -> str:
    return os.path.join(root, target.lstrip("/"))


def bwrap_args(*, root: str, hostname: str, info_fd: int) -> list[str]:
    return [
        tool("bwrap"),
        "--unshare-user",
        "--uid",
        "0",
        "--gid",
        "0",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--hostname",
        hostname,
        "--cap-drop",
        "ALL",
        "--bind",
        root,
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--chdir",
        "/",
        "--clearenv",
        "--setenv",
        "PATH",
        SANDBOX_PATH,
        "--setenv",
        "HOME",
        "/root",
        "--info-fd",
        str(info_fd),
        "/bin/sh",
        "-c",
        INIT_SCRIPT,
    ]
