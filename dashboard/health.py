"""What ``/healthz`` reports: the database, Redis, and whether any worker answers."""

from __future__ import annotations

import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from dashboard.celery import app


def _timed(check: Any) -> dict[str, Any]:
    started = time.monotonic()
    try:
        detail = check()
    except Exception as exc:  # a health check reports every failure, whatever its type
        return {"ok": False, "error": str(exc), "ms": round((time.monotonic() - started) * 1000)}
    return {"ok": True, **(detail or {}), "ms": round((time.monotonic() - started) * 1000)}


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"vendor": connection.vendor}


def _redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()


def _workers() -> dict[str, Any]:
    replies = app.control.ping(timeout=1.0) or []
    names = sorted(name for reply in replies for name in reply)
    if not names:
        raise RuntimeError("No worker answered within 1 s")
    return {"workers": names}


def check() -> dict[str, Any]:
    report = {"database": _timed(_database), "redis": _timed(_redis)}
    report["worker"] = _timed(_workers) if report["redis"]["ok"] else {"ok": False, "error": "Redis is down"}
    return report
