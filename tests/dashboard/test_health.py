from __future__ import annotations

import subprocess

import pytest
from django.test import Client


@pytest.mark.django_db(transaction=True)
def test_healthz_reports_the_database_redis_and_a_live_worker(celery_worker: subprocess.Popen[bytes]) -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    report = response.json()
    assert report["database"] == {"ok": True, "vendor": "postgresql", "ms": report["database"]["ms"]}
    assert report["redis"]["ok"] is True
    assert report["worker"]["ok"] is True
    assert any(name.startswith("test-") for name in report["worker"]["workers"])


@pytest.mark.django_db
def test_healthz_says_503_when_redis_is_down(settings: object) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # type: ignore[attr-defined]
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"]["ok"] is False
