"""The Python client against a live server: the workflows its README promises, end to end."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from berth import Client, Conflict, IdempotencyKeyReused, Invalid, NotFound, Unauthorized

from tests.client.conftest import Server

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_workspace_outlives_the_sandbox_that_wrote_it(berth: Client) -> None:
    with berth.sandboxes.create(
        region="ord", volumes={"/workspace": "my_project"}, env={"GREETING": "hello"}, labels={"day": "1"}
    ) as first:
        assert first.status == "running"
        assert [(m.volume, m.path, m.read_only) for m in first.mounts] == [
            ("my_project", "/workspace", False)
        ]
        assert first.files.write("/workspace/src/main.c", "int main(void) { return 0; }\n") == 29
        first.files.write("/workspace/data.bin", bytes(range(256)))
        build = first.exec(
            "mkdir -p build && cp src/main.c build/main.o && echo $GREETING > build/log && echo built",
            cwd="/workspace",
        )
        assert (build.exit_code, build.stdout, build.stderr) == (0, "built\n", "")
        assert not build.truncated and not build.timed_out and build.duration is not None
        assert [(e.name, e.kind) for e in first.files.list("/workspace") if e.name != "lost+found"] == [
            ("build", "dir"),
            ("src", "dir"),
            ("data.bin", "file"),
        ]
        assert berth.volumes.get("my_project").attached_to[0].sandbox_id == first.id
    assert first.status == "stopped"  # the context manager killed it and waited

    with berth.sandboxes.create(region="ord", volumes={"/workspace": "my_project"}) as second:
        assert second.id != first.id
        assert second.files.read("/workspace/build/log") == b"hello\n"
        assert second.files.read("/workspace/data.bin") == bytes(range(256))
        assert second.exec(["cat", "/workspace/build/main.o"]).stdout == "int main(void) { return 0; }\n"
        failed = second.exec("echo oops >&2; exit 3")
        assert (failed.exit_code, failed.stderr, failed.ok) == (3, "oops\n", False)
    assert berth.volumes.get("my_project").attached_to == []


def test_a_volume_in_use_refuses_a_second_writer_but_shares_read_only(berth: Client) -> None:
    berth.volumes.create(slug="shared", region="ord", capacity="500MB")
    with berth.sandboxes.create(region="ord", volumes={"/data": "shared"}) as writer:
        writer.files.write("/data/dataset.csv", "a,b\n1,2\n")
        with pytest.raises(Conflict) as refused:
            berth.sandboxes.create(region="ord", volumes={"/data": "shared"})
        assert refused.value.status == 409
        assert refused.value.message.startswith('Volume "shared" is already attached')
    ro = {"/data": {"slug": "shared", "read_only": True}}
    with (
        berth.sandboxes.create(region="ord", volumes=ro) as one,
        berth.sandboxes.create(region="ord", volumes=ro) as two,
    ):
        assert (
            one.exec("cat /data/dataset.csv").stdout
            == two.exec("cat /data/dataset.csv").stdout
            == "a,b\n1,2\n"
        )
        assert two.exec("echo x > /data/new").exit_code != 0
        assert sorted(a.read_only for a in berth.volumes.get("shared").attached_to) == [True, True]


def test_the_list_iterator_pages_through_every_volume(berth: Client, server: Server) -> None:
    for n in range(7):
        berth.volumes.create(slug=f"vol-{n}", region="ord", labels={"n": str(n)})
    pages: list[str] = []
    with Client(token=server.token, base_url=server.url) as counted:
        counted.http.client.event_hooks["request"].append(lambda request: pages.append(str(request.url)))
        slugs = [v.slug for v in counted.volumes.list(page_size=3)]
    assert slugs == [f"vol-{n}" for n in reversed(range(7))]  # newest first, each exactly once
    assert len(pages) == 3 and all("limit=3" in url for url in pages)
    assert [v.slug for v in berth.volumes.list(search="vol-3")] == ["vol-3"]
    assert list(berth.volumes.list(region="ams")) == []


def test_delete_answers_with_the_purge_time_and_then_the_volume_is_not_found(berth: Client) -> None:
    volume = berth.volumes.create(slug="scratch", region="ord", capacity=400_000_000, description="tmp")
    assert (volume.capacity, volume.description, volume.region) == (400_000_000, "tmp", "ord")
    changed = berth.volumes.update("scratch", labels={"keep": "no"}, description="to delete")
    assert (changed.labels, changed.description) == ({"keep": "no"}, "to delete")
    deleted = berth.volumes.delete(volume.id)
    assert deleted.status == "deleted" and deleted.purge_after is not None
    with pytest.raises(NotFound) as missing:
        berth.volumes.get("scratch")
    assert (missing.value.code, missing.value.status) == ("not_found", 404)
    with pytest.raises(NotFound):
        berth.volumes.delete(volume.id)
    assert berth.volumes.create(slug="scratch", region="ord").id != volume.id  # the slug is free again


def test_errors_carry_the_apis_code_and_message(berth: Client, server: Server) -> None:
    with pytest.raises(Invalid) as invalid:
        berth.volumes.create(slug="Not A Slug", region="ord")
    assert (invalid.value.code, invalid.value.status) == ("invalid", 422)
    assert "slug" in invalid.value.message.lower()
    berth.volumes.create(slug="taken", region="ord")
    with pytest.raises(Conflict):
        berth.volumes.create(slug="taken", region="ord")
    with pytest.raises(Unauthorized), Client(token="berth_nope", base_url=server.url) as stranger:
        stranger.regions()


def test_a_create_with_the_same_key_is_made_once(berth: Client) -> None:
    key = str(uuid.uuid4())
    first = berth.volumes.create(slug="once", region="ord", idempotency_key=key)
    again = berth.volumes.create(slug="once", region="ord", idempotency_key=key)
    assert again == first
    with pytest.raises(IdempotencyKeyReused):
        berth.volumes.create(slug="twice", region="ord", idempotency_key=key)
    assert [v.slug for v in berth.volumes.list()] == ["once"]


def test_sandboxes_are_listed_by_label_and_status(berth: Client) -> None:
    with berth.sandboxes.create(region="ord", labels={"team": "web"}) as web:
        assert [s.id for s in berth.sandboxes.list(label="team:web")] == [web.id]
        assert [s.id for s in berth.sandboxes.list(label="team=web", status="running")] == [web.id]
        assert list(berth.sandboxes.list(label="team:db")) == []
        assert berth.sandboxes.get(web.id).labels == {"team": "web"}
        started = web.exec("sleep 0.2; echo later", background=True)
        assert started.background and started.pid is not None and started.exit_code is None
    assert berth.sandboxes.get(web.id).refresh().status == "stopped"
    assert [s.id for s in berth.sandboxes.list(status="stopped")] == [web.id]


def test_regions_list_the_seeded_regions(berth: Client) -> None:
    found = {r.code: r for r in berth.regions()}
    assert {"ord", "ams", "iad", "lax"} <= set(found)
    assert found["ord"].min_capacity == 300_000_000 and found["ord"].nodes >= 1
    assert "host" in berth.images()


def test_retries_of_a_live_create_reuse_the_key(server: Server, monkeypatch: Any) -> None:
    """Drops the first answer on the client side after the server has created the volume."""
    real = httpx.HTTPTransport()
    seen: list[str] = []

    class DropFirstAnswer(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = real.handle_request(request)
            if request.method == "POST":
                seen.append(request.headers["Idempotency-Key"])
                if len(seen) == 1:
                    response.read()
                    raise httpx.ReadError("connection dropped", request=request)
            return response

    with Client(token=server.token, base_url=server.url, transport=DropFirstAnswer(), backoff=0) as client:
        volume = client.volumes.create(slug="exactly-one", region="ord")
        assert [v.id for v in client.volumes.list()] == [volume.id]
    assert len(seen) == 2 and seen[0] == seen[1]
