"""The sandbox endpoints end to end: real worker, real data plane."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from dashboard.models import Organization, Role
from tests.dataplane import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def create(client: Client, body: dict[str, Any], **extra: Any) -> Any:
    return client.post("/api/v2/sandboxes?wait=true", body, content_type="application/json", **extra)


def test_the_workspace_workflow_over_the_api(
    org: Organization,
    other_org: Organization,
    data_plane: None,
    celery_worker: subprocess.Popen[bytes],
    api_as: Callable[[Organization, str], Client],
) -> None:
    api, viewer, stranger = api_as(org, Role.MEMBER), api_as(org, Role.VIEWER), api_as(other_org, Role.ADMIN)
    first = create(api, {"region": "ord", "volumes": {"/workspace": "my_project"}, "labels": {"team": "web"}})
    assert first.status_code == 201, first.content
    sandbox = first.json()
    assert sandbox["status"] == "running"
    assert sandbox["mounts"][0] == {**sandbox["mounts"][0], "volume": "my_project", "path": "/workspace"}
    sid = sandbox["id"]

    put = api.put(f"/api/v2/sandboxes/{sid}/files?path=/workspace/notes/a.txt", b"hello\n",
                  content_type="application/octet-stream")  # fmt: skip
    assert put.json() == {"path": "/workspace/notes/a.txt", "size": 6}
    argv = ["sh", "-c", "cat /workspace/notes/a.txt; exit 3"]
    ran = api.post(f"/api/v2/sandboxes/{sid}/exec", {"cmd": argv}, content_type="application/json")
    assert ran.json() | {"duration": None} == {
        "id": ran.json()["id"], "cmd": argv, "exit_code": 3,
        "stdout": "hello\n", "stderr": "", "truncated": False, "timed_out": False, "duration": None,
        "background": False, "pid": None,
    }  # fmt: skip
    assert viewer.get(f"/api/v2/sandboxes/{sid}/files?path=/workspace/notes/a.txt").content == b"hello\n"
    listing = viewer.get(f"/api/v2/sandboxes/{sid}/files?path=/workspace/notes&list=true").json()
    assert [e["name"] for e in listing["items"]] == ["a.txt"]
    assert (
        viewer.post(
            f"/api/v2/sandboxes/{sid}/exec", {"cmd": "true"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert stranger.get(f"/api/v2/sandboxes/{sid}").status_code == 404
    assert [s["id"] for s in api.get("/api/v2/sandboxes?label=team:web").json()["items"]] == [sid]
    assert api.get("/api/v2/sandboxes?label=team:db").json()["items"] == []

    busy = create(api, {"region": "ord", "volumes": {"/workspace": "my_project"}})
    assert busy.status_code == 409
    assert busy.json()["error"]["message"].startswith(
        'Volume "my_project" is already attached to sandbox sb-'
    )
    elsewhere = create(api, {"region": "iad", "volumes": {"/workspace": "my_project"}})
    assert (elsewhere.status_code, elsewhere.json()["error"]["message"]) == (
        422,
        'Volume "my_project" is in region ord',
    )

    assert api.delete(f"/api/v2/sandboxes/{sid}").status_code == 200
    wait_until(lambda: api.get(f"/api/v2/sandboxes/{sid}").json()["status"] == "stopped", what="the kill")
    second = create(api, {"region": "ord", "volumes": {"/workspace": "my_project"}}).json()
    again = api.post(f"/api/v2/sandboxes/{second['id']}/exec", {"cmd": "cat /workspace/notes/a.txt"},
                     content_type="application/json")  # fmt: skip
    assert again.json()["stdout"] == "hello\n"
    api.delete(f"/api/v2/sandboxes/{second['id']}")
    wait_until(
        lambda: api.get(f"/api/v2/sandboxes/{second['id']}").json()["status"] == "stopped", what="kill"
    )


@pytest.mark.parametrize(
    ("volumes", "status", "words"),
    [
        ({"/": "a"}, 422, "cannot be mounted at /"),
        ({"/proc": "a"}, 422, "system path /proc"),
        ({"/workspace/../etc": "a"}, 422, "must be normalized"),
        ({"workspace": "a"}, 422, "must be absolute"),
        ({f"/v{i}": f"v{i}" for i in range(5)}, 422, "At most 4 volumes can be mounted per sandbox"),
        ({"/w": {"slug": "a", "read_only": "yes"}}, 400, "volumes./w"),
    ],
)
def test_a_bad_mount_is_refused_and_nothing_is_made(
    org: Organization, regions: list[Any], api_as: Callable[[Organization, str], Client],
    volumes: dict[str, Any], status: int, words: str,
) -> None:  # fmt: skip
    from sandboxes.models import Sandbox
    from volumes.models import Volume

    response = create(api_as(org, Role.MEMBER), {"region": "ord", "volumes": volumes})
    assert response.status_code == status
    assert words in response.json()["error"]["message"]
    assert not Sandbox.objects.exists() and not Volume.objects.exists()
