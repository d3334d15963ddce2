"""Tiny helpers that read settings from the environment and fail loudly on a bad value.

Each raises ``ImproperlyConfigured`` naming the variable, so a typo stops start-up with a
message that says which variable to fix instead of surfacing later as a strange error.
"""

from __future__ import annotations

import os
from datetime import timedelta
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {value}")
    return value


def env_duration(name: str, default: timedelta) -> timedelta:
    """A duration such as ``90s``, ``30m``, ``24h`` or ``2d`` (a bare number means seconds)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    text = raw.strip().lower()
    unit = text[-1:] if text[-1:] in _DURATION_UNITS else "s"
    number = text[:-1] if text[-1:] in _DURATION_UNITS else text
    try:
        seconds = float(number) * _DURATION_UNITS[unit]
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be a duration such as 90s, 30m, 24h or 2d; got {raw!r}"
        ) from None
    if seconds <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive duration; got {raw!r}")
    return timedelta(seconds=seconds)


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_database(name: str, default_sqlite_path: str) -> dict[str, object]:
    """A database from a URL (``postgres://`` or ``sqlite:///``), else SQLite at the default path."""
    import dj_database_url

    raw = os.environ.get(name)
    if not raw:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": default_sqlite_path}
    scheme = urlsplit(raw).scheme
    if scheme not in {"postgres", "postgresql", "sqlite"}:
        raise ImproperlyConfigured(
            f"{name} must be a postgres:// or sqlite:/// URL; got scheme {scheme or 'none'!r}"
        )
    try:
        config = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj-database-url raises several types for bad URLs
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None
    if scheme != "sqlite" and not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} must name a database, e.g. postgres://host:5432/berth")
    return dict(config)


def env_redis(name: str, default_socket: str) -> str:
    """A Redis URL (``redis://``, ``rediss://`` or ``unix://``); default: the private socket."""
    raw = os.environ.get(name)
    if not raw:
        return f"unix://{default_socket}"
    parts = urlsplit(raw)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"{name} must be a redis://, rediss:// or unix:// URL; got {raw!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ImproperlyConfigured(f"{name} has a port that is not a number: {raw!r}") from None
    if parts.scheme == "unix" and not parts.path:
        raise ImproperlyConfigured(f"{name} must give the socket path, e.g. unix:///run/redis.sock")
    return raw


def celery_url(redis_url: str) -> str:
    """Celery (kombu) spells a unix-socket Redis URL as ``redis+socket://``."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url
