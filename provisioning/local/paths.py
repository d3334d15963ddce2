"""File access inside a sandbox's (or a volume's) view, never outside it.

Every path is resolved by the kernel with openat2(2) and RESOLVE_IN_ROOT against a
directory fd standing for the view's root (``/proc/<init pid>/root`` for a sandbox, the
mount point for a volume): ``..`` stops at that root and every symlink, absolute or
relative, is resolved as if the root were ``/``. Magic links (``/proc/*/root`` and kin)
are refused outright. The driver runs as host root with every capability, so it also
refuses to read or write anything on a kernel pseudo filesystem (``/proc/kcore`` of the
sandbox's procfs would be the host kernel's memory) and anything but regular files.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Literal

from provisioning.base import CapacityError, FileEntry, FileNotFound, PathRefused, ProvisioningError

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
MAX_LIST_ENTRIES = 10_000

_SYS_OPENAT2 = 437  # the same number on every architecture (added after the table merge)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_RESOLVE = _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS

# statfs f_type of pseudo filesystems whose files stand for kernel state, not data.
_PSEUDO_FS = {
    0x9FA0,  # proc
    0x62656572,  # sysfs
    0x1CD1,  # devpts
    0x64626720,  # debugfs
    0x74726163,  # tracefs
    0x73636673,  # securityfs
    0x27E0EB,  # cgroup
    0x63677270,  # cgroup2
    0xCAFE4A11,  # bpf
    0x62656570,  # configfs
    0xDE5E81E4,  # efivarfs
    0x6165676C,  # pstore
}


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _openat2(root_fd: int, path: bytes, flags: int, mode: int = 0) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode, _RESOLVE)
    while True:
        fd = _libc.syscall(
            _SYS_OPENAT2, root_fd, ctypes.c_char_p(path), ctypes.byref(how), ctypes.sizeof(how)
        )
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        # EAGAIN: a rename raced the lookup; the kernel asks us to retry.
        if err not in (errno.EAGAIN, errno.EINTR):
            raise OSError(err, os.strerror(err), path.decode(errors="replace"))


def _fs_type(fd: int) -> int:
    buffer = ctypes.create_string_buffer(256)  # struct statfs; f_type is its first long
    if _libc.fstatfs(fd, buffer) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ctypes.c_long.from_buffer(buffer).value)


def encode(path: str) -> bytes:
    """A path as bytes for the kernel; PathRefused for anything malformed."""
    if not isinstance(path, str):
        raise PathRefused("A path must be text")
    if "\x00" in path:
        raise PathRefused("A path may not contain NUL bytes")
    try:
        raw = os.fsencode(path)
    except UnicodeError as exc:
        raise PathRefused(f"The path {path[:80]!r} cannot be encoded") from exc
    if len(raw) > MAX_PATH_BYTES:
        raise PathRefused(f"The path is longer than {MAX_PATH_BYTES} bytes")
    if any(len(part) > MAX_NAME_BYTES for part in raw.split(b"/")):
        raise PathRefused(f"A name in the path is longer than {MAX_NAME_BYTES} bytes")
    return raw or b"/"


@contextmanager
def _translated(path: str) -> Iterator[None]:
    """Turn OS errors into the driver's typed errors, with the caller's path in the message."""
    shown = path[:200]
    try:
        yield
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise FileNotFound(f"No such file or directory: {shown}") from exc
    except IsADirectoryError as exc:
        raise PathRefused(f"{shown} is a directory") from exc
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EXDEV, errno.ENAMETOOLONG, errno.EACCES, errno.EPERM):
            raise PathRefused(f"The path {shown} is refused ({os.strerror(exc.errno)})") from exc
        if exc.errno == errno.EROFS:
            raise PathRefused(f"{shown} is on a read-only mount") from exc
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CapacityError(f"No space left to write {shown}") from exc
        raise ProvisioningError(f"Cannot access {shown}: {exc.strerror}") from exc


def _check_data_fd(fd: int, path: str) -> os.stat_result:
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise PathRefused(f"{path[:200]} is a directory")
    if not stat.S_ISREG(info.st_mode) or _fs_type(fd) in _PSEUDO_FS:
        raise PathRefused(f"{path[:200]} is not a regular file")
    return info


def _reopen(fd: int, flags: int) -> int:
    """Open an O_PATH fd for real I/O without resolving its path a second time."""
    return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC)


def read_file(root_fd: int, path: str, limit: int) -> bytes:
    """The first ``limit`` bytes of a regular file."""
    raw = encode(path)
    with _translated(path):
        handle = _openat2(root_fd, raw, os.O_PATH)
        try:
            _check_data_fd(handle, path)
            data_fd = _reopen(handle, os.O_RDONLY | os.O_NONBLOCK)
        finally:
            os.close(handle)
        try:
            return _read_up_to(data_fd, max(0, limit))
        finally:
            os.close(data_fd)


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks, left = [], limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_file(root_fd: int, path: str, data: bytes) -> None:
    """Create or replace a regular file's content; missing parent directories are created."""
    raw = encode(path)
    parent, _, name = raw.rstrip(b"/").rpartition(b"/")
    if name in (b"", b".", b".."):
        raise PathRefused(f"{path[:200]} does not name a file")
    with _translated(path):
        fd = _open_existing_for_write(root_fd, raw, path)
        if fd is None:
            fd = _create(root_fd, parent, name, path)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def _open_existing_for_write(root_fd: int, raw: bytes, path: str) -> int | None:
    try:
        handle = _openat2(root_fd, raw, os.O_PATH)
    except FileNotFoundError:
        return None
    try:
        _check_data_fd(handle, path)
        return _reopen(handle, os.O_WRONLY | os.O_TRUNC | os.O_NONBLOCK)
    finally:
        os.close(handle)


def _create(root_fd: int, parent: bytes, name: bytes, path: str) -> int:
    dir_fd = _make_dirs(root_fd, parent)
    try:
        if _fs_type(dir_fd) in _PSEUDO_FS:
            raise PathRefused(f"{path[:200]} is on a kernel pseudo filesystem")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return os.open(name, flags, 0o644, dir_fd=dir_fd)
        except FileExistsError as exc:
            # It did not resolve a moment ago: a symlink to nowhere (or a racing writer).
            raise PathRefused(f"{path[:200]} is a symlink to a missing file") from exc
    finally:
        os.close(dir_fd)


def _make_dirs(root_fd: int, parent: bytes) -> int:
    """An O_PATH fd of ``parent`` inside the root, creating what is missing (like mkdir -p).

    Every step is resolved again from the root, so a directory swapped for a symlink
    between two steps still cannot lead outside the root; mkdirat only ever gets a
    single name relative to a directory resolved that way.
    """
    parts = [part for part in parent.split(b"/") if part]
    for index in range(len(parts)):
        try:
            os.close(_openat2(root_fd, b"/".join(parts[: index + 1]), os.O_PATH | os.O_DIRECTORY))
            continue
        except FileNotFoundError:
            pass
        above = _openat2(root_fd, b"/".join(parts[:index]) or b"/", os.O_PATH | os.O_DIRECTORY)
        try:
            with suppress(FileExistsError):  # a racing mkdir; the final lookup decides
                os.mkdir(parts[index], 0o755, dir_fd=above)
        finally:
            os.close(above)
    return _openat2(root_fd, b"/".join(parts) or b"/", os.O_PATH | os.O_DIRECTORY)


def list_dir(root_fd: int, path: str) -> list[FileEntry]:
    """Entries of a directory sorted by name, at most MAX_LIST_ENTRIES of them."""
    raw = encode(path)
    with _translated(path):
        fd = _openat2(root_fd, raw, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return _entries(fd)
        finally:
            os.close(fd)


def _entries(fd: int) -> list[FileEntry]:
    entries = []
    with os.scandir(fd) as scan:
        for item in scan:
            try:
                info = os.stat(item.name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we listed
            entries.append(_entry(item.name, info))
            if len(entries) >= MAX_LIST_ENTRIES:
                break
    return sorted(entries, key=lambda entry: entry.name)


def _entry(name: str, info: os.stat_result) -> FileEntry:
    modified = datetime.fromtimestamp(info.st_mtime, tz=UTC)
    return FileEntry(name=name, kind=_kind(info.st_mode), size=info.st_size, modified_at=modified)


def _kind(mode: int) -> Literal["file", "dir", "symlink", "other"]:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def exists(root_fd: int, path: str) -> bool:
    """Whether ``path`` resolves (inside the root) to something."""
    try:
        fd = _openat2(root_fd, encode(path), os.O_PATH)
    except OSError:
        return False
    os.close(fd)
    return True
