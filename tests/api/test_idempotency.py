"""Idempotency-Key on the creates, beyond what tests/volumes/test_api.py covers.

Covered there: a retry replays the first answer; the same key with another body is a 422
``idempotency_key_reused``; 10 concurrent volume creates with one key make one volume and give
one answer. Here: the same promise for sandboxes, and for volumes over real HTTP (the live
server, real sockets, one thread per request), which is how clients retry.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client

from dashboard.models import Organization, Role
from sandboxes.models import Sandbox
from tests.dataplane import wait_until
from tests.sandboxes import conftest as sandbox_fixtures
from volumes.models import Volume

pytestmark = pytest.mark.django_db(transaction=True)
data_plane = sandbox_fixtures.data_plane


def together(n: int, send: Callable[[], tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Call ``send`` from ``n`` threads released at once; every answer, or the first failure."""
    start = threading.Barrier(n)
    answers: list[tuple[int, bytes]] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            answers.append(send())
        except BaseException as error:  # surfaced below; a thread's exception is otherwise lost
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    return answers


def test_ten_parallel_volume_creates_over_http_with_one_key_make_one_volume(
    live_server: Any, org: Organization, regions: list[Any], token_for: Callable[[Organization, str], str]
) -> None:
    headers = {"Authorization": f"Bearer {token_for(org, Role.MEMBER)}", "Idempotency-Key": str(uuid.uuid4())}
    url = f"{live_server.url}/api/v2/volumes"

    def send() -> tuple[int, bytes]:
        response = httpx.post(url, json={"slug": "data", "region": "ord"}, headers=headers, timeout=60)
        return response.status_code, response.content

    answers = together(10, send)
    assert [status for status, _ in answers] == [201] * 10
    assert len({body for _, body in answers}) == 1
    assert Volume.objects.filter(organization=org).count() == 1

    other = httpx.post(url, json={"slug": "other", "region": "ord"}, headers=headers, timeout=60)
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert Volume.objects.filter(organization=org).count() == 1


def test_ten_parallel_sandbox_creates_with_one_key_start_one_sandbox(
    org: Organization,
    data_plane: None,
    celery_worker: subprocess.Popen[bytes],
    api_as: Callable[[Organization, str], Client],
) -> None:
    api = api_as(org, Role.MEMBER)
    key = str(uuid.uuid4())
    body = {"region": "ord", "volumes": {"/workspace": "my_project"}}

    def send() -> tuple[int, bytes]:
        response = api.post(
            "/api/v2/sandboxes", body, content_type="application/json", headers={"Idempotency-Key": key}
        )
        return response.status_code, response.content

    answers = together(10, send)
    assert [status for status, _ in answers] == [201] * 10
    assert len({content for _, content in answers}) == 1
    assert Sandbox.objects.filter(organization=org).count() == 1
    assert Volume.objects.filter(organization=org).count() == 1

    changed = {**body, "labels": {"try": "2"}}
    refused = api.post(
        "/api/v2/sandboxes", changed, content_type="application/json", headers={"Idempotency-Key": key}
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "idempotency_key_reused")

    sandbox_id = json.loads(answers[0][1])["id"]
    wait_until(lambda: api.get(f"/api/v2/sandboxes/{sandbox_id}").json()["status"] == "running", what="start")
    api.delete(f"/api/v2/sandboxes/{sandbox_id}")
    wait_until(lambda: api.get(f"/api/v2/sandboxes/{sandbox_id}").json()["status"] == "stopped", what="kill")


def test_a_mount_may_name_its_volume_by_id(
    api_as: Callable[[Organization, str], Client], org: Organization, regions: list[Any]
) -> None:
    """Found by Schemathesis: a strict UUID field refused every id string, so this was a 400."""
    missing = str(uuid.uuid4())
    response = api_as(org, Role.MEMBER).post(
        "/api/v2/sandboxes",
        {"region": "ord", "volumes": {"/w": {"id": missing}}},
        content_type="application/json",
    )
    assert response.status_code in (404, 422), response.content
    assert response.json()["error"]["code"] != "malformed"
