"""Sandbox rules: mount paths, lifetimes, environment, limits. Each failure names its rule."""

from __future__ import annotations

import itertools
import posixpath
import re
from datetime import timedelta
from typing import Any

from dashboard.errors import RuleBroken
from sandboxes.models import DEFAULT_LIFETIME, MAX_LIFETIME
from volumes.rules import parse_capacity

SYSTEM_PATHS = ("/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/tmp")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MIN_LIFETIME = timedelta(minutes=1)
MAX_ENV = 64


def validate_mount_path(path: Any) -> str:
    """An absolute, normalized path that is not ``/`` nor a system path or inside one."""
    if not isinstance(path, str) or not path:
        raise RuleBroken("A mount path must be an absolute path such as /workspace", field="volumes")
    if not path.startswith("/"):
        raise RuleBroken(f'Mount path "{path}" must be absolute, such as /workspace', field="volumes")
    if "\0" in path or len(path) > 200:
        raise RuleBroken("A mount path must be at most 200 characters, without NUL bytes", field="volumes")
    normal = posixpath.normpath(path)
    if normal == "/":
        raise RuleBroken("A volume cannot be mounted at /", field="volumes")
    if normal != path.rstrip("/") or "//" in path:
        raise RuleBroken(f'Mount path "{path}" must be normalized (it means {normal})', field="volumes")
    for system in SYSTEM_PATHS:
        if normal == system or normal.startswith(system + "/"):
            raise RuleBroken(f'Mount path "{path}" is inside the system path {system}', field="volumes")
    return normal


def check_mount_paths(paths: list[str]) -> None:
    """Unique and not nested in each other."""
    ordered = sorted(paths)
    for first, second in itertools.pairwise(ordered):
        if first == second:
            raise RuleBroken(f'Mount path "{first}" is used twice', field="volumes")
        if second.startswith(first + "/"):
            raise RuleBroken(f'Mount path "{second}" is nested inside "{first}"', field="volumes")


def parse_lifetime(value: Any) -> timedelta:
    """Seconds (a number) or a duration string such as ``90s``, ``30m``, ``2h``; 1 min to 24 h."""
    if value is None or value == "":
        return DEFAULT_LIFETIME
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            seconds = float(value)
        else:
            text = str(value).strip().lower()
            unit = text[-1] if text[-1:] in units else "s"
            seconds = float(text.rstrip("smh")) * units[unit]
    except (ValueError, IndexError):
        raise RuleBroken(
            f'Lifetime "{value}" is not a duration: give seconds, or a number with s, m or h',
            field="lifetime",
        ) from None
    lifetime = timedelta(seconds=seconds)
    if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
        raise RuleBroken("A sandbox's lifetime must be between 1 minute and 24 hours", field="lifetime")
    return lifetime


def validate_env(env: Any) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise RuleBroken("env must be an object of names to string values", field="env")
    if len(env) > MAX_ENV:
        raise RuleBroken(f"At most {MAX_ENV} environment variables", field="env")
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise RuleBroken(
                f'Environment variable name "{name}" must be letters, digits and _, not starting with one '
                "of the digits",
                field="env",
            )
        if "\0" in value or len(value) > 4096:
            raise RuleBroken(f"Environment variable {name} is too long or has a NUL byte", field="env")
    return dict(env)


def parse_memory_limit(value: Any) -> int | None:
    if value is None or value == "":
        return None
    limit = parse_capacity(value)
    if limit < 16 * 1024 * 1024:
        raise RuleBroken("The memory limit must be at least 16 MiB", field="memory_limit")
    return limit
