"""The sandbox pages, as each role, with and without htmx."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from dashboard.models import Organization
from sandboxes.models import Command, Sandbox, SandboxState
from tests.dataplane import wait_until
from volumes.models import GB, Attachment, Node, Volume, VolumeState

HTMX = {"HX-Request": "true"}
ROLES = ["admin", "member", "viewer"]


def node_of(regions: list[Node], code: str = "ord") -> Node:
    return next(node for node in regions if node.region.code == code)


def make_sandbox(org: Organization, node: Node, state: str = "running", **fields: Any) -> Sandbox:
    return Sandbox.objects.create(organization=org, region=node.region, node=node, state=state, **fields)


def make_volume(org: Organization, node: Node, slug: str) -> Volume:
    return Volume.objects.create(
        organization=org, slug=slug, region=node.region, node=node, capacity=GB, state=VolumeState.AVAILABLE
    )


def mount(sandbox: Sandbox, volume: Volume, path: str = "/workspace", read_only: bool = False) -> Attachment:
    return Attachment.objects.create(volume=volume, sandbox=sandbox, mount_path=path, read_only=read_only)


def url(org: Organization, rest: str = "") -> str:
    return f"/o/{org.slug}/sandboxes/{rest}"


def create_data(
    region: str = "ord", mounts: list[tuple[str, str]] | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The create form's POST: ``mounts`` are (path, new volume name) rows; ``extra`` overrides fields."""
    rows = mounts or []
    data = {
        "image": "host", "region": region, "lifetime": "30m", "memory_limit": "",
        "mounts-TOTAL_FORMS": str(len(rows)), "mounts-INITIAL_FORMS": "0",
        "env-TOTAL_FORMS": "1", "env-INITIAL_FORMS": "0", "env-0-key": "", "env-0-value": "",
        "labels-TOTAL_FORMS": "1", "labels-INITIAL_FORMS": "0", "labels-0-key": "", "labels-0-value": "",
    }  # fmt: skip
    for index, (path, slug) in enumerate(rows):
        data[f"mounts-{index}-path"] = path
        data[f"mounts-{index}-new_slug"] = slug
    return {**data, **(extra or {})}


@pytest.fixture
def node(regions: list[Node]) -> Node:
    return node_of(regions)


@pytest.fixture
def sandbox(org: Organization, node: Node) -> Sandbox:
    box = make_sandbox(org, node, labels={"team": "data"}, env={"MODE": "test"})
    mount(box, make_volume(org, node, "notebooks"))
    return box


# --- the list -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_list_and_htmx_gets_only_the_table(
    role: str,
    request: pytest.FixtureRequest,
    org: Organization,
    sandbox: Sandbox,
    client_as: Callable[..., Client],
) -> None:
    client = client_as(request.getfixturevalue(role))
    body = client.get(url(org)).content.decode()
    assert "<html" in body and 'id="sandbox-table"' in body and sandbox.name in body
    assert "notebooks</a>" in body and "<code>/workspace</code>" in body and ">rw<" in body
    assert "team:data" in body and "state-running" in body
    assert ("+ New sandbox" in body) is (role != "viewer")
    fragment = client.get(url(org), headers=HTMX).content.decode()
    assert "<html" not in fragment and fragment.lstrip().startswith(
        '<section class="panel" id="sandbox-table"'
    )


@pytest.mark.django_db
def test_the_list_filters_by_status_and_label_newest_first(
    org: Organization, node: Node, admin: Any, client_as: Callable[..., Client]
) -> None:
    old = make_sandbox(org, node, "stopped", labels={"team": "ml"})
    new = make_sandbox(org, node, "running", labels={"team": "data"})
    client = client_as(admin)
    body = client.get(url(org)).content.decode()
    assert body.index(new.name) < body.index(old.name)
    running = client.get(url(org), {"status": "running"}).content.decode()
    assert new.name in running and old.name not in running
    ml = client.get(url(org), {"label": "team:ml"}, headers=HTMX).content.decode()
    assert old.name in ml and new.name not in ml
    bad = client.get(url(org), {"label": "nocolon"}).content.decode()
    assert "label must be key:value" in bad and new.name in bad


@pytest.mark.django_db
def test_the_list_query_count_does_not_grow_with_rows(
    org: Organization, node: Node, admin: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(admin)

    def queries_for(count: int) -> int:
        Sandbox.objects.all().delete()
        Volume.objects.all().delete()
        for index in range(count):
            box = make_sandbox(org, node, labels={"n": str(index)})
            mount(box, make_volume(org, node, f"v{index}"))
            mount(box, make_volume(org, node, f"r{index}"), "/data", read_only=True)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url(org)).status_code == 200
        return len(queries)

    assert queries_for(3) == queries_for(20)


@pytest.mark.django_db
def test_in_flight_rows_poll_and_a_settled_row_answers_286(
    org: Organization, node: Node, viewer: Any, client_as: Callable[..., Client]
) -> None:
    pending = make_sandbox(org, node, "pending")
    client = client_as(viewer)
    assert f'?row={pending.id}" hx-trigger="every 2s"' in client.get(url(org)).content.decode()
    row = client.get(url(org), {"row": str(pending.id)}, headers=HTMX)
    assert row.status_code == 200 and row.content.decode().lstrip().startswith("<tr")
    Sandbox.objects.filter(id=pending.id).update(state="running")
    settled = client.get(url(org), {"row": str(pending.id)}, headers=HTMX)
    assert settled.status_code == 286 and "hx-trigger" not in settled.content.decode()


# --- detail -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_detail_page(
    role: str,
    request: pytest.FixtureRequest,
    org: Organization,
    sandbox: Sandbox,
    client_as: Callable[..., Client],
) -> None:
    Command.objects.create(sandbox=sandbox, cmd="echo hi", exit_code=0, stdout="hi\n", duration=0.01)
    client = client_as(request.getfixturevalue(role))
    body = client.get(url(org, f"{sandbox.id}/")).content.decode()
    volume = Volume.objects.get(slug="notebooks")
    assert f'href="/o/{org.slug}/volumes/{volume.id}/"' in body and "MODE" in body and "team:data" in body
    assert "$ echo hi" in body and "exit 0" in body and 'id="sandbox-files"' in body
    assert ('id="exec-form"' in body) is (role != "viewer")
    assert ("Kill</button>" in body) is (role != "viewer")
    assert ('id="upload-form"' in body) is (role != "viewer")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("pending", 200),
        ("starting", 200),
        ("stopping", 200),
        ("running", 286),
        ("stopped", 286),
        ("failed", 286),
    ],
)
def test_the_status_fragment_polls_until_the_sandbox_settles(
    state: str, status: int, org: Organization, node: Node, viewer: Any, client_as: Callable[..., Client]
) -> None:
    box = make_sandbox(org, node, state, error="boom" if state == "failed" else "")
    response = client_as(viewer).get(url(org, f"{box.id}/"), headers=HTMX)
    body = response.content.decode()
    assert response.status_code == status and "<html" not in body
    assert body.lstrip().startswith('<div id="sandbox-live"')
    assert ('hx-trigger="every 1s"' in body) is (status == 200)
    if state == "failed":
        assert "boom" in body


@pytest.mark.django_db
def test_a_sandbox_that_is_not_running_says_so_instead_of_exec_and_files(
    org: Organization, node: Node, member: Any, client_as: Callable[..., Client]
) -> None:
    box = make_sandbox(org, node, "stopped")
    client = client_as(member)
    body = client.get(url(org, f"{box.id}/")).content.decode()
    assert "available while the sandbox runs" in body and 'id="exec-form"' not in body
    ran = client.post(url(org, f"{box.id}/exec/"), {"cmd": "ls"}, headers=HTMX)
    assert ran.status_code == 422 and "is stopped, not running" in ran.content.decode()
    assert ran["HX-Retarget"] == "#exec-form"
    files = client.get(url(org, f"{box.id}/files/"), {"path": "/"}, headers=HTMX)
    assert files.status_code == 200 and "is stopped, not running" in files.content.decode()
    wrote = client.post(url(org, f"{box.id}/files/upload/"), {"path": "/a.txt", "content": "x"})
    assert wrote.status_code == 422 and "is stopped, not running" in wrote.content.decode()
    assert not Command.objects.exists()


# --- access -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True])
def test_a_stranger_gets_404_on_every_sandbox_page(
    htmx: bool, org: Organization, sandbox: Sandbox, stranger: Any, client_as: Callable[..., Client]
) -> None:
    command = Command.objects.create(sandbox=sandbox, cmd="sleep 100", background=True, pid=7)
    client = client_as(stranger)
    headers = HTMX if htmx else {}
    gets = ["", "new/", f"{sandbox.id}/", f"{sandbox.id}/files/", f"{sandbox.id}/commands/{command.id}/log/"]
    for rest in gets:
        assert client.get(url(org, rest), headers=headers).status_code == 404, rest
    for rest in ["new/", f"{sandbox.id}/exec/", f"{sandbox.id}/files/upload/", f"{sandbox.id}/kill/"]:
        assert client.post(url(org, rest), {"cmd": "ls"}, headers=headers).status_code == 404, rest
    # and a sandbox of their own organization's URL with our sandbox's id is a 404 too
    own = f"/o/globex/sandboxes/{sandbox.id}/"
    assert client.get(own, headers=headers).status_code == 404
    assert client.post(own + "kill/", headers=headers).status_code == 404
    assert Sandbox.objects.get(id=sandbox.id).state == SandboxState.RUNNING


@pytest.mark.django_db
def test_a_viewer_cannot_create_exec_write_or_kill(
    org: Organization, sandbox: Sandbox, viewer: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(viewer)
    assert client.get(url(org, "new/")).status_code == 403
    assert client.post(url(org, "new/"), create_data()).status_code == 403
    assert client.post(url(org, f"{sandbox.id}/exec/"), {"cmd": "ls"}).status_code == 403
    assert (
        client.post(url(org, f"{sandbox.id}/files/upload/"), {"path": "/a", "content": "x"}).status_code
        == 403
    )
    assert client.post(url(org, f"{sandbox.id}/kill/"), headers=HTMX).status_code == 403
    assert Sandbox.objects.get(id=sandbox.id).state == SandboxState.RUNNING
    assert not Command.objects.exists()


@pytest.mark.django_db
def test_a_malformed_id_is_a_404(
    org: Organization, regions: Any, admin: Any, client_as: Callable[..., Client]
) -> None:
    assert client_as(admin).get(url(org, "not-a-uuid/")).status_code == 404


# --- kill ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True])
def test_a_member_kills_a_sandbox(
    htmx: bool, org: Organization, sandbox: Sandbox, member: Any, client_as: Callable[..., Client]
) -> None:
    response = client_as(member).post(url(org, f"{sandbox.id}/kill/"), headers=HTMX if htmx else {})
    detail = url(org, f"{sandbox.id}/")
    if htmx:
        assert response.status_code == 200 and response["HX-Redirect"] == detail
    else:
        assert response.status_code == 302 and response["Location"] == detail
    assert Sandbox.objects.get(id=sandbox.id).state == SandboxState.STOPPING


# --- create -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["admin", "member"])
def test_the_create_form_offers_images_regions_and_the_regions_volumes(
    role: str,
    request: pytest.FixtureRequest,
    org: Organization,
    regions: list[Node],
    client_as: Callable[..., Client],
) -> None:
    make_volume(org, node_of(regions, "ord"), "chicago-data")
    make_volume(org, node_of(regions, "ams"), "amsterdam-data")
    client = client_as(request.getfixturevalue(role))
    body = client.get(url(org, "new/")).content.decode()
    assert "<html" in body and 'value="host"' in body and 'value="ams"' in body
    assert "amsterdam-data ·" in body and "chicago-data" not in body  # ams comes first
    assert 'value="30m" selected' in body and 'name="allow_net"' in body
    rows = client.get(
        url(org, "new/"),
        {"region": "ord", "mounts-TOTAL_FORMS": "1", "mounts-INITIAL_FORMS": "0", "mounts-0-path": "/data"},
        headers={**HTMX, "HX-Target": "mount-rows"},
    ).content.decode()
    assert rows.lstrip().startswith('<div id="mount-rows"')
    assert "chicago-data ·" in rows and "amsterdam-data" not in rows and 'value="/data"' in rows


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True])
def test_adding_a_row_keeps_what_was_typed_and_creates_nothing(
    htmx: bool, org: Organization, regions: Any, member: Any, client_as: Callable[..., Client]
) -> None:
    data = create_data(mounts=[("/workspace", "proj")], extra={"add_row": "mounts"})
    response = client_as(member).post(url(org, "new/"), data, headers=HTMX if htmx else {})
    body = response.content.decode()
    assert response.status_code == 200 and body.count('aria-label="Mount path"') == 2
    assert 'value="proj"' in body and 'name="mounts-TOTAL_FORMS" value="2"' in body
    assert ("<html" in body) is not htmx
    assert not Sandbox.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/", "cannot be mounted at /"),
        ("/proc", "inside the system path /proc"),
        ("/workspace/../etc", "must be normalized"),
        ("relative", "must be absolute"),
        ("/etc/app", "inside the system path /etc"),
    ],
)
def test_hostile_mount_paths_are_refused_and_nothing_is_created(
    path: str, message: str, org: Organization, regions: Any, member: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(member)
    for headers in ({}, HTMX):
        response = client.post(url(org, "new/"), create_data(mounts=[(path, "proj")]), headers=headers)
        assert response.status_code == 422
        assert message in response.content.decode()
    assert not Sandbox.objects.exists() and not Volume.objects.exists()


@pytest.mark.django_db
def test_a_fifth_volume_is_refused(
    org: Organization, regions: Any, member: Any, client_as: Callable[..., Client]
) -> None:
    mounts = [(f"/v{index}", f"vol{index}") for index in range(5)]
    response = client_as(member).post(url(org, "new/"), create_data(mounts=mounts))
    assert response.status_code == 422
    assert "At most 4 volumes can be mounted per sandbox" in response.content.decode()
    assert not Sandbox.objects.exists() and not Volume.objects.exists()


@pytest.mark.django_db
def test_a_volume_of_another_region_is_refused(
    org: Organization, regions: list[Node], member: Any, client_as: Callable[..., Client]
) -> None:
    make_volume(org, node_of(regions, "ord"), "my_vol")
    data = create_data(
        region="ams", extra={"mounts-TOTAL_FORMS": "1", "mounts-0-path": "/data", "mounts-0-volume": "my_vol"}
    )
    response = client_as(member).post(url(org, "new/"), data, headers=HTMX)
    assert (
        response.status_code == 422
        and "Volume &quot;my_vol&quot; is in region ord" in response.content.decode()
    )
    assert not Sandbox.objects.exists()


@pytest.mark.django_db
def test_a_volume_attached_elsewhere_is_refused_naming_the_sandbox(
    org: Organization, sandbox: Sandbox, member: Any, client_as: Callable[..., Client]
) -> None:
    data = create_data(
        extra={"mounts-TOTAL_FORMS": "1", "mounts-0-path": "/w", "mounts-0-volume": "notebooks"}
    )
    response = client_as(member).post(url(org, "new/"), data)
    body = response.content.decode()
    assert response.status_code == 422
    assert f"Volume &quot;notebooks&quot; is already attached to sandbox {sandbox.name}" in body
    assert Sandbox.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"env-0-key": "1BAD", "env-0-value": "x"}, "Environment variable name"),
        ({"env-0-value": "x"}, "Give this value a name"),
        ({"memory_limit": "1MiB"}, "at least 16 MiB"),
        ({"lifetime": "99h"}, "Select a valid choice"),
        ({"image": "nope"}, "Select a valid choice"),
        ({"mounts-TOTAL_FORMS": "1", "mounts-0-path": "/w"}, "Choose a volume for /w"),
        ({"mounts-TOTAL_FORMS": "1", "mounts-0-new_slug": "x"}, "Where should"),
        ({"mounts-TOTAL_FORMS": "1", "mounts-0-path": "/w", "mounts-0-new_slug": "Bad Slug!"}, "slug"),
    ],
)
def test_other_form_errors_answer_422(
    extra: dict[str, str],
    message: str,
    org: Organization,
    regions: Any,
    member: Any,
    client_as: Callable[..., Client],
) -> None:
    response = client_as(member).post(url(org, "new/"), create_data(extra=extra))
    assert response.status_code == 422 and message in response.content.decode()
    assert not Sandbox.objects.exists() and not Volume.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True])
def test_creating_a_sandbox_goes_to_its_page(
    htmx: bool, org: Organization, regions: Any, member: Any, client_as: Callable[..., Client]
) -> None:
    data = create_data(
        mounts=[("/workspace", "proj")],
        extra={
            "mounts-0-size_gb": "2", "mounts-TOTAL_FORMS": "2", "mounts-1-path": "/ref",
            "mounts-1-new_slug": "refdata", "mounts-1-read_only": "on",
            "env-0-key": "MODE", "env-0-value": "dev", "labels-0-key": "team", "labels-0-value": "data",
            "lifetime": "1h", "allow_net": "on", "memory_limit": "512MiB",
        },
    )  # fmt: skip
    response = client_as(member).post(url(org, "new/"), data, headers=HTMX if htmx else {})
    box = Sandbox.objects.get()
    detail = url(org, f"{box.id}/")
    assert response["HX-Redirect" if htmx else "Location"] == detail
    assert box.env == {"MODE": "dev"} and box.labels == {"team": "data"} and box.allow_net
    assert box.lifetime.total_seconds() == 3600 and box.memory_limit == 512 * 1024 * 1024
    mounts = {a.mount_path: a for a in Attachment.objects.select_related("volume")}
    assert mounts["/workspace"].volume.capacity == 2 * GB and not mounts["/workspace"].read_only
    assert mounts["/ref"].read_only and mounts["/ref"].volume.slug == "refdata"


# --- on the real data plane ---------------------------------------------------------------


def running(box: Sandbox) -> Sandbox:
    return wait_until(
        lambda: Sandbox.objects.filter(id=box.id, state=SandboxState.RUNNING).first(), what=f"{box} to run"
    )


@pytest.mark.django_db(transaction=True)
def test_exec_files_and_logs_through_the_pages(
    org: Organization,
    member: Any,
    viewer: Any,
    data_plane: None,
    celery_worker: subprocess.Popen[bytes],
    client_as: Callable[..., Client],
) -> None:
    client = client_as(member)
    response = client.post(url(org, "new/"), create_data(mounts=[("/workspace", "pages_vol")]))
    assert response.status_code == 302, response.content.decode()
    box = running(Sandbox.objects.get())
    status = client.get(url(org, f"{box.id}/"), headers=HTMX)
    assert status.status_code == 286 and 'id="exec-form"' in status.content.decode()

    ran = client.post(url(org, f"{box.id}/exec/"), {"cmd": "echo out; echo err >&2; exit 3"}, headers=HTMX)
    body = ran.content.decode()
    assert ran.status_code == 200 and body.lstrip().startswith('<li class="command"')
    assert "exit 3" in body and "out\n" in body and "err\n" in body
    plain = client.post(url(org, f"{box.id}/exec/"), {"cmd": "pwd", "cwd": "/workspace"})
    assert plain.status_code == 302 and plain["Location"].endswith("#history")
    assert Command.objects.get(cmd="pwd").stdout == "/workspace\n"
    slow = client.post(url(org, f"{box.id}/exec/"), {"cmd": "sleep 5", "timeout": "0.5"}, headers=HTMX)
    assert "timed out" in slow.content.decode()

    wrote = client.post(
        url(org, f"{box.id}/files/upload/"),
        {"path": "/workspace/note.txt", "content": "hi there"},
        headers=HTMX,
    )
    assert wrote.status_code == 200 and wrote["HX-Retarget"] == "#sandbox-files"
    assert "Wrote /workspace/note.txt" in wrote.content.decode() and "note.txt" in wrote.content.decode()
    reader = client_as(viewer)
    listing = reader.get(url(org, f"{box.id}/files/"), {"path": "/workspace"}, headers=HTMX).content.decode()
    assert "note.txt" in listing and "<html" not in listing
    shown = reader.get(url(org, f"{box.id}/files/"), {"file": "/workspace/note.txt"}).content.decode()
    assert "<html" in shown and "hi there" in shown
    missing = reader.get(url(org, f"{box.id}/files/"), {"file": "/workspace/nope"}, headers=HTMX)
    assert missing.status_code == 200 and 'class="files-note"' in missing.content.decode()

    bg = client.post(
        url(org, f"{box.id}/exec/"), {"cmd": "echo from-bg; sleep 30", "background": "on"}, headers=HTMX
    )
    command = Command.objects.get(background=True)
    assert "View log" in bg.content.decode() and command.pid
    log_url = url(org, f"{box.id}/commands/{command.id}/log/")
    wait_until(lambda: "from-bg" in reader.get(log_url, headers=HTMX).content.decode(), what="the log")
    assert "from-bg" in reader.get(log_url).content.decode()

    assert client.post(url(org, f"{box.id}/kill/"), headers=HTMX)["HX-Redirect"] == url(org, f"{box.id}/")
    wait_until(lambda: Sandbox.objects.filter(id=box.id, state="stopped").exists(), what="the stop")
    assert "is stopped, not running" in reader.get(log_url, headers=HTMX).content.decode()
