"""What the API answers with, as plain dataclasses (no behaviour but reading)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Region:
    """A region, with the capacity limits (bytes) of the volumes created in it."""

    code: str
    name: str
    min_capacity: int
    max_capacity: int
    nodes: int

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Region:
        return cls(
            code=data["code"],
            name=data["name"],
            min_capacity=data["min_capacity"],
            max_capacity=data["max_capacity"],
            nodes=data.get("nodes", 0),
        )


@dataclass(frozen=True)
class Attachment:
    """A sandbox that has a volume mounted now."""

    sandbox_id: str
    mount_path: str
    read_only: bool


@dataclass(frozen=True)
class Volume:
    """A persistent volume. ``capacity`` and ``used`` are bytes; ``used`` is an estimate as of ``used_at``."""

    id: str
    slug: str
    region: str
    capacity: int
    status: str
    labels: dict[str, str]
    description: str
    created_at: datetime | None
    used: int | None = None
    used_at: datetime | None = None
    resizing_to: int | None = None
    attached_to: list[Attachment] = field(default_factory=list)
    error: str = ""

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Volume:
        return cls(
            id=str(data["id"]),
            slug=data["slug"],
            region=data["region"],
            capacity=data["capacity"],
            status=data["status"],
            labels=dict(data.get("labels") or {}),
            description=data.get("description") or "",
            created_at=_time(data.get("created_at")),
            used=data.get("used"),
            used_at=_time(data.get("used_at")),
            resizing_to=data.get("resizing_to"),
            attached_to=[
                Attachment(
                    sandbox_id=str(a["sandbox_id"]), mount_path=a["mount_path"], read_only=a["read_only"]
                )
                for a in data.get("attached_to") or []
            ],
            error=data.get("error") or "",
        )


@dataclass(frozen=True)
class DeletedVolume:
    """The answer to a delete: the volume is restorable (by support, or an org admin from Trash)
    until ``purge_after``."""

    id: str
    status: str
    purge_after: datetime | None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> DeletedVolume:
        return cls(id=str(data["id"]), status=data["status"], purge_after=_time(data.get("purge_after")))


@dataclass(frozen=True)
class Mount:
    """A volume mounted in a sandbox; ``detached_at`` is set once the sandbox released it."""

    volume_id: str
    volume: str
    path: str
    read_only: bool
    detached_at: datetime | None = None


@dataclass(frozen=True)
class ExecResult:
    """The outcome of ``Sandbox.exec``.

    ``stdout`` and ``stderr`` are each capped by the server; ``truncated`` says whether they
    were cut. A background command has ``exit_code`` ``None`` and a ``pid``.
    """

    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool
    duration: float | None
    pid: int | None
    id: int | None = None
    background: bool = False

    @property
    def ok(self) -> bool:
        """True when the command ran to completion with exit code 0."""
        return self.exit_code == 0 and not self.timed_out

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ExecResult:
        return cls(
            exit_code=data.get("exit_code"),
            stdout=data.get("stdout") or "",
            stderr=data.get("stderr") or "",
            truncated=bool(data.get("truncated")),
            timed_out=bool(data.get("timed_out")),
            duration=data.get("duration"),
            pid=data.get("pid"),
            id=data.get("id"),
            background=bool(data.get("background")),
        )


@dataclass(frozen=True)
class FileEntry:
    """One entry of a directory listing: ``kind`` is ``file``, ``dir`` or ``link``."""

    name: str
    kind: str
    size: int
    modified_at: datetime | None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> FileEntry:
        return cls(
            name=data["name"],
            kind=data["kind"],
            size=data["size"],
            modified_at=_time(data.get("modified_at")),
        )
