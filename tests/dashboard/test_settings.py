from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dashboard import env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/berth"),
        ("DATABASE_URL", "postgres://"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("REDIS_URL", "redis://127.0.0.1:notaport/0"),
        ("DEBUG", "maybe"),
        ("VOLUME_PURGE_GRACE", "a day"),
        ("MAX_MOUNTS_PER_SANDBOX", "four"),
    ],
)
def test_a_malformed_variable_stops_start_up_naming_it(name: str, value: str) -> None:
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    environ[name] = value
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


def test_with_nothing_set_it_runs_embedded(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    environ["BERTH_VAR_DIR"] = str(tmp_path)
    code = "from django.conf import settings as s; print(s.DATABASES['default']['NAME']); print(s.REDIS_URL)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    database, redis_url = result.stdout.split()[-2:]
    assert database == str(tmp_path / "berth.sqlite3")
    assert redis_url == f"unix://{tmp_path}/redis.sock"


def test_durations_read_with_their_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRACE", "90m")
    assert env.env_duration("GRACE", timedelta(hours=1)) == timedelta(minutes=90)
    monkeypatch.setenv("GRACE", "-5s")
    with pytest.raises(ImproperlyConfigured, match="GRACE must be a positive duration"):
        env.env_duration("GRACE", timedelta(hours=1))


def test_a_unix_socket_redis_url_becomes_celerys_spelling() -> None:
    assert env.celery_url("unix:///tmp/r.sock") == "redis+socket:///tmp/r.sock"
    assert env.celery_url("redis://h:6379/1") == "redis://h:6379/1"
