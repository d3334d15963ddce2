"""What the file browsers of volumes and sandboxes share: paths, crumbs, entries."""

from __future__ import annotations

import posixpath
from datetime import datetime
from typing import Any


def parent_path(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[0] or "/"


def path_crumbs(path: str) -> list[tuple[str, str]]:
    """``/a/b`` as [("/", "/"), ("a", "/a"), ("b", "/a/b")]: each part and the path it opens."""
    crumbs = [("/", "/")]
    parts = [part for part in path.split("/") if part]
    for index, part in enumerate(parts):
        crumbs.append((part, "/" + "/".join(parts[: index + 1])))
    return crumbs


def entries_in(path: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The node's entries of ``path``, each with its full path and its time as a datetime."""
    for entry in entries:
        entry["path"] = posixpath.join(path, entry["name"])
        entry["modified_at"] = datetime.fromisoformat(entry["modified_at"])
    return entries
