"""The volume pages, as each role, with and without htmx."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.errors import Conflict
from dashboard.models import AuditEvent, Organization, Via
from dashboard.services import Actor
from sandboxes.models import Sandbox
from volumes import services
from volumes.models import GB, Attachment, Node, Volume, VolumeState

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def make_volume(
    org: Organization, slug: str, *, region: str = "ord", state: str = "available", **fields: Any
) -> Volume:
    volume = services.volume_create(
        org=org, slug=slug, region=region, capacity=fields.pop("capacity", "1GB"), actor=Actor(via=Via.CLI)
    )
    Volume.objects.filter(id=volume.id).update(state=state, **fields)
    volume.refresh_from_db()
    return volume


def attach(volume: Volume, path: str = "/workspace", *, read_only: bool = False) -> Attachment:
    sandbox = Sandbox.objects.create(
        organization=volume.organization, region=volume.region, node=volume.node, state="running"
    )
    return Attachment.objects.create(volume=volume, sandbox=sandbox, mount_path=path, read_only=read_only)


def url(org: Organization, rest: str = "") -> str:
    return f"/o/{org.slug}/{rest}"


@pytest.fixture
def vol(org: Organization, regions: list[Node]) -> Volume:
    return make_volume(org, "data", used=250_000_000, used_at=timezone.now(), labels={"team": "ml"})


# --- the list -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_every_role_sees_the_list_and_htmx_gets_only_the_table(
    role: str,
    request: pytest.FixtureRequest,
    org: Organization,
    vol: Volume,
    client_as: Callable[..., Client],
) -> None:
    client = client_as(request.getfixturevalue(role))
    page = client.get(url(org, "volumes/"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "<html" in body and 'id="volume-table"' in body and ">data<" in body
    assert "250 MB of 1 GB · 25.0%" in body and "as of" in body
    assert ("+ New volume" in body) is (role != "viewer")
    fragment = client.get(url(org, "volumes/"), headers=HTMX).content.decode()
    assert "<html" not in fragment and fragment.lstrip().startswith(
        '<section class="panel" id="volume-table"'
    )


def test_a_stranger_gets_404_on_every_volume_page(
    org: Organization, vol: Volume, stranger: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(stranger)
    for headers in ({}, HTMX):
        for path in ("volumes/", "volumes/new/", f"volumes/{vol.id}/", "volumes/data/", "trash/"):
            assert client.get(url(org, path), headers=headers).status_code == 404, path
    # And their own organization's pages do not show our volume, even by its id.
    other = stranger.memberships.get().organization
    assert client.get(url(other, f"volumes/{vol.id}/")).status_code == 404
    assert b"data" not in client.get(url(other, "volumes/")).content.split(b"<main")[1]


def test_the_list_searches_filters_sorts_and_pages(
    org: Organization, regions: list[Node], admin: Any, client_as: Callable[..., Client]
) -> None:
    make_volume(org, "alpha", capacity="3GB", used=10)
    make_volume(org, "beta", region="ams", capacity="1GB")
    make_volume(org, "gamma", capacity="2GB", state="creating", description="alpha stuff")
    client = client_as(admin)

    def slugs(query: str) -> list[str]:
        body = client.get(url(org, "volumes/" + query), headers=HTMX).content.decode()
        return re.findall(r'<a class="strong" href="[^"]+">([^<]+)</a>', body)

    assert slugs("") == ["gamma", "beta", "alpha"]
    assert slugs("?search=alph") == ["gamma", "alpha"]  # slug or description
    assert slugs("?region=ams") == ["beta"]
    assert slugs("?state=creating") == ["gamma"]
    assert slugs("?sort=slug") == ["alpha", "beta", "gamma"]
    assert slugs("?sort=-slug") == ["gamma", "beta", "alpha"]
    assert slugs("?sort=-capacity") == ["alpha", "gamma", "beta"]
    assert slugs("?sort=capacity") == ["beta", "gamma", "alpha"]
    assert slugs("?sort=-used")[0] == "alpha"
    assert slugs("?sort=nonsense") == ["gamma", "beta", "alpha"]


def test_the_list_pages_with_a_cursor(
    org: Organization, regions: list[Node], admin: Any, client_as: Callable[..., Client], monkeypatch: Any
) -> None:
    monkeypatch.setattr("volumes.views.PAGE_SIZE", 2)
    for n in range(5):
        make_volume(org, f"v{n}")
    client = client_as(admin)
    seen: list[str] = []
    query = "?sort=slug"
    while True:
        body = client.get(url(org, "volumes/" + query)).content.decode()
        seen += re.findall(r'<a class="strong" href="[^"]+">([^<]+)</a>', body)
        match = re.search(r'href="(\?[^"]*cursor=[^"]+)"[^>]*>Next page', body)
        if not match:
            break
        query = match.group(1).replace("&amp;", "&")
        assert "sort=slug" in query
    assert seen == ["v0", "v1", "v2", "v3", "v4"]
    bad = client.get(url(org, "volumes/?cursor=garbage"))
    assert bad.status_code == 200 and b"start again" in bad.content


def test_the_list_shows_which_sandbox_uses_a_volume(
    org: Organization, vol: Volume, viewer: Any, client_as: Callable[..., Client]
) -> None:
    attachment = attach(vol, "/workspace")
    body = client_as(viewer).get(url(org, "volumes/")).content.decode()
    assert attachment.sandbox.name in body and "<code>/workspace</code>" in body


def test_the_list_query_count_does_not_grow_with_the_rows(
    org: Organization, regions: list[Node], admin: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(admin)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url(org, "volumes/")).status_code == 200
        return len(queries)

    for n in range(3):
        attach(make_volume(org, f"few-{n}"), f"/m{n}")
    few = count_queries()
    for n in range(27):
        volume = make_volume(org, f"many-{n}")
        if n % 3 == 0:
            attach(volume, f"/m{n}")
    assert count_queries() == few


def test_the_table_polls_while_a_row_is_creating_and_the_server_ends_it(
    org: Organization, vol: Volume, admin: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(admin)
    Volume.objects.filter(id=vol.id).update(state=VolumeState.CREATING)
    poll = {**HTMX, "HX-Trigger": "volume-table"}
    response = client.get(url(org, "volumes/"), headers=poll)
    assert response.status_code == 200 and b'hx-trigger="every 2s"' in response.content
    Volume.objects.filter(id=vol.id).update(state=VolumeState.AVAILABLE)
    response = client.get(url(org, "volumes/"), headers=poll)
    assert response.status_code == 286 and b"every 2s" not in response.content


# --- create -------------------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True])
def test_a_member_creates_a_volume_and_lands_on_its_page(
    org: Organization, regions: list[Node], member: Any, client_as: Callable[..., Client], htmx: bool
) -> None:
    client = client_as(member)
    assert client.get(url(org, "volumes/new/")).status_code == 200
    response = client.post(
        url(org, "volumes/new/"),
        {
            "slug": "scratch",
            "region": "ams",
            "capacity": "2GB",
            "description": "tmp",
            "labels": "team=ml\nenv = dev",
        },
        headers=HTMX if htmx else {},
    )
    volume = Volume.objects.get(organization=org, slug="scratch")
    target = url(org, f"volumes/{volume.id}/")
    if htmx:
        assert response.status_code == 200 and response["HX-Redirect"] == target
    else:
        assert response.status_code == 302 and response["Location"] == target
    assert (volume.region.code, volume.capacity, volume.labels) == (
        "ams",
        2 * GB,
        {"team": "ml", "env": "dev"},
    )
    assert volume.description == "tmp" and volume.state == VolumeState.CREATING
    assert AuditEvent.objects.get(action="volume.create").user == member


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"slug": "My-Project"}, "may contain only lowercase letters, digits, _ and -"),
        ({"capacity": "500GB"}, "Capacity 500 GB is above the largest volume in ord (100 GB)"),
        ({"capacity": "100MB"}, "Capacity 100 MB is below the smallest volume in ord (300 MB)"),
        ({"capacity": "two gigs"}, "is not a size"),
        ({"region": "xyz"}, "There is no region &quot;xyz&quot;"),
        ({"labels": "just-a-word"}, "write labels as key=value"),
        ({"slug": ""}, "This field is required"),
    ],
)
def test_the_create_form_shows_each_broken_rule_and_creates_nothing(
    org: Organization,
    regions: list[Node],
    admin: Any,
    client_as: Callable[..., Client],
    fields: dict[str, str],
    message: str,
    htmx: bool,
) -> None:
    data = {"slug": "ok", "region": "ord", "capacity": "", "labels": "", **fields}
    response = client_as(admin).post(url(org, "volumes/new/"), data, headers=HTMX if htmx else {})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert (b"<html" in response.content) is not htmx
    assert not Volume.objects.exists()


def test_creating_a_taken_slug_is_refused_on_the_form(
    org: Organization, vol: Volume, admin: Any, client_as: Callable[..., Client]
) -> None:
    response = client_as(admin).post(
        url(org, "volumes/new/"), {"slug": "data", "region": "ord"}, headers=HTMX
    )
    assert response.status_code == 422
    assert b"A volume named &quot;data&quot; already exists" in response.content
    assert Volume.objects.count() == 1


def test_live_validation_shows_the_parsed_size_and_each_message(
    org: Organization, regions: list[Node], member: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(member)

    def validate(**data: str) -> str:
        response = client.post(url(org, "volumes/new/validate/"), {"region": "ord", **data}, headers=HTMX)
        assert response.status_code == 200
        body = response.content.decode()
        assert "<html" not in body and 'id="volume-form"' in body
        return body

    assert "= 2,000,000,000 bytes (2 GB)" in validate(slug="x", capacity="2GB")
    assert "= 1,073,741,824 bytes (1.07 GB)" in validate(capacity="1GiB")
    assert "= 1,000,000,000 bytes (1 GB), the default" in validate()
    body = validate(slug="My-Project", capacity="500GB")
    assert "(slugs are lowercase)" in body and "above the largest volume in ord" in body
    assert "= 500,000,000,000 bytes (500 GB)" in body
    assert "This field is required" not in validate(slug="")  # not scolded before typing
    assert "There is no region" in validate(region="mars")
    assert not Volume.objects.exists()


def test_a_viewer_cannot_create_or_validate(
    org: Organization, regions: list[Node], viewer: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(viewer)
    assert client.get(url(org, "volumes/new/")).status_code == 403
    assert client.post(url(org, "volumes/new/"), {"slug": "x", "region": "ord"}).status_code == 403
    assert client.post(url(org, "volumes/new/validate/"), {"slug": "x"}).status_code == 403
    assert not Volume.objects.exists()


# --- detail -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_every_role_reads_the_detail_page_by_id_or_slug(
    role: str,
    request: pytest.FixtureRequest,
    org: Organization,
    vol: Volume,
    client_as: Callable[..., Client],
) -> None:
    client = client_as(request.getfixturevalue(role))
    for ref in (vol.id, vol.slug):
        body = client.get(url(org, f"volumes/{ref}/")).content.decode()
        assert "<h1>data</h1>" in body and "team=ml" in body and "250 MB of 1 GB" in body
        assert ("Delete volume" in body) is (role != "viewer")
        assert ('name="capacity"' in body) is (role != "viewer")
    assert client.get(url(org, "volumes/nope/")).status_code == 404


def test_the_status_part_polls_while_creating_and_answers_286_once_available(
    org: Organization, vol: Volume, viewer: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(viewer)
    Volume.objects.filter(id=vol.id).update(state=VolumeState.CREATING)
    page = client.get(url(org, f"volumes/{vol.id}/")).content.decode()
    assert 'hx-trigger="every 1s"' in page and 'hx-trigger="load' in page
    response = client.get(url(org, f"volumes/{vol.id}/"), headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="panel" id="volume-status"') and "every 1s" in body
    Volume.objects.filter(id=vol.id).update(state=VolumeState.AVAILABLE)
    response = client.get(url(org, f"volumes/{vol.id}/"), headers=HTMX)
    assert response.status_code == 286
    assert "every 1s" not in response.content.decode() and "available" in response.content.decode()
    assert response["HX-Trigger"] == '{"volume-settled": {}}'
    Volume.objects.filter(id=vol.id).update(resizing_to=2 * GB)  # a grow is in flight too
    assert client.get(url(org, f"volumes/{vol.id}/"), headers=HTMX).status_code == 200


def test_the_detail_page_shows_an_error_with_a_retry_that_works(
    org: Organization, vol: Volume, member: Any, client_as: Callable[..., Client]
) -> None:
    Volume.objects.filter(id=vol.id).update(state=VolumeState.ERROR, error="mkfs.ext4 failed: disk full")
    client = client_as(member)
    body = client.get(url(org, f"volumes/{vol.id}/")).content.decode()
    assert "mkfs.ext4 failed: disk full" in body and ">Retry</button>" in body
    response = client.post(url(org, f"volumes/{vol.id}/retry/"), headers=HTMX)
    assert response["HX-Redirect"] == url(org, f"volumes/{vol.id}/")
    vol.refresh_from_db()
    assert (vol.state, vol.error) == (VolumeState.CREATING, "")
    again = client.post(url(org, f"volumes/{vol.id}/retry/"), follow=True).content.decode()
    assert "only a volume in error can be retried" in again


def test_the_detail_shows_the_attachment_history(
    org: Organization, vol: Volume, viewer: Any, client_as: Callable[..., Client]
) -> None:
    old = attach(vol, "/old", read_only=True)
    Attachment.objects.filter(id=old.id).update(detached_at=timezone.now())
    attach(vol, "/workspace")
    body = client_as(viewer).get(url(org, f"volumes/{vol.id}/")).content.decode()
    assert "<code>/old</code>" in body and "<code>/workspace</code>" in body and "attached now" in body


@pytest.mark.parametrize("htmx", [False, True])
def test_a_member_edits_labels_and_description(
    org: Organization, vol: Volume, member: Any, client_as: Callable[..., Client], htmx: bool
) -> None:
    client = client_as(member)
    headers = HTMX if htmx else {}
    response = client.post(
        url(org, f"volumes/{vol.id}/edit/"),
        {"description": "models", "labels": "team=ml\nstage=prod"},
        headers=headers,
    )
    assert response.status_code == 200 if htmx else 302
    vol.refresh_from_db()
    assert (vol.description, vol.labels) == ("models", {"team": "ml", "stage": "prod"})
    bad = client.post(url(org, f"volumes/{vol.id}/edit/"), {"labels": "=x"}, headers=headers)
    assert bad.status_code == 422 and b"keys are 1" in bad.content
    assert (b"<html" in bad.content) is not htmx


@pytest.mark.parametrize("htmx", [False, True])
def test_a_member_extends_a_volume_and_shrinking_is_refused(
    org: Organization, vol: Volume, member: Any, client_as: Callable[..., Client], htmx: bool
) -> None:
    client = client_as(member)
    headers = HTMX if htmx else {}
    small = client.post(url(org, f"volumes/{vol.id}/extend/"), {"capacity": "500MB"}, headers=headers)
    assert small.status_code == 422 and b"A volume can only grow" in small.content
    assert (b"<html" in small.content) is not htmx
    response = client.post(url(org, f"volumes/{vol.id}/extend/"), {"capacity": "5GB"}, headers=headers)
    assert response.status_code == 200 if htmx else 302
    vol.refresh_from_db()
    assert vol.resizing_to == 5 * GB and vol.in_flight


@pytest.mark.parametrize("htmx", [False, True])
def test_delete_needs_the_slug_typed(
    org: Organization, vol: Volume, member: Any, client_as: Callable[..., Client], htmx: bool
) -> None:
    client = client_as(member)
    headers = HTMX if htmx else {}
    for typed in ("", "dat", "DATA"):
        response = client.post(url(org, f"volumes/{vol.id}/delete/"), {"confirm": typed}, headers=headers)
        assert response.status_code == 422
        assert b"Type &quot;data&quot; to confirm" in response.content
        assert (b"<html" in response.content) is not htmx
    assert Volume.objects.get(id=vol.id).state == VolumeState.AVAILABLE
    response = client.post(url(org, f"volumes/{vol.id}/delete/"), {"confirm": "data"}, headers=headers)
    listing = url(org, "volumes/")
    assert (response["HX-Redirect"] if htmx else response["Location"]) == listing
    assert Volume.objects.get(id=vol.id).state == VolumeState.DELETED
    page = client.get(listing).content.decode()
    assert "Deleted volume &quot;data&quot;. It stays in Trash for 24 h" in page


def test_delete_is_refused_while_attached(
    org: Organization, vol: Volume, member: Any, client_as: Callable[..., Client]
) -> None:
    attachment = attach(vol)
    response = client_as(member).post(
        url(org, f"volumes/{vol.id}/delete/"), {"confirm": "data"}, headers=HTMX
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert f"is attached to sandbox {attachment.sandbox.name}" in body and "kill the sandbox" in body
    assert Volume.objects.get(id=vol.id).state == VolumeState.AVAILABLE


def test_a_viewer_can_change_nothing_on_a_volume(
    org: Organization, vol: Volume, viewer: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(viewer)
    for action, data in [
        ("edit", {"description": "x"}),
        ("extend", {"capacity": "5GB"}),
        ("delete", {"confirm": "data"}),
        ("retry", {}),
    ]:
        for headers in ({}, HTMX):
            assert (
                client.post(url(org, f"volumes/{vol.id}/{action}/"), data, headers=headers).status_code == 403
            )
    vol.refresh_from_db()
    assert (vol.state, vol.description, vol.resizing_to) == (VolumeState.AVAILABLE, "", None)


def test_a_deleted_volume_has_no_detail_page(
    org: Organization, vol: Volume, admin: Any, client_as: Callable[..., Client]
) -> None:
    services.volume_delete(org=org, id_or_slug="data", actor=Actor(via=Via.CLI))
    client = client_as(admin)
    assert client.get(url(org, f"volumes/{vol.id}/")).status_code == 404
    assert client.get(url(org, "volumes/data/")).status_code == 404


# --- files --------------------------------------------------------------------------------


def test_the_file_browser_lists_a_directory_and_shows_a_file(
    org: Organization, vol: Volume, viewer: Any, client_as: Callable[..., Client], monkeypatch: Any
) -> None:
    calls: list[tuple[str, str]] = []

    def browse(*, org: Organization, id_or_slug: str, path: str, kind: str) -> dict[str, Any]:
        calls.append((path, kind))
        if kind == "dir":
            entries = [
                {"name": "src", "kind": "dir", "size": 4096, "modified_at": "2025-01-01T10:00:00+00:00"},
                {"name": "notes.txt", "kind": "file", "size": 12, "modified_at": "2025-01-01T10:00:00+00:00"},
            ]
            return {"kind": "dir", "path": path, "entries": entries}
        return {"kind": "file", "path": path, "text": "hello <world>", "size": 13, "truncated": False}

    monkeypatch.setattr(services, "volume_browse", browse)
    client = client_as(viewer)
    fragment = client.get(url(org, f"volumes/{vol.id}/files/?path=/"), headers=HTMX).content.decode()
    assert "<html" not in fragment
    assert "?path=/src" in fragment and "?file=/notes.txt" in fragment
    page = client.get(url(org, f"volumes/{vol.id}/files/?file=/notes.txt"))
    assert page.status_code == 200 and b"<html" in page.content and b"hello &lt;world&gt;" in page.content
    assert calls == [("/", "dir"), ("/notes.txt", "file")]


def test_the_file_browser_says_why_it_cannot_look(
    org: Organization, vol: Volume, viewer: Any, client_as: Callable[..., Client], monkeypatch: Any
) -> None:
    def browse(**kwargs: Any) -> dict[str, Any]:
        raise Conflict(
            'Volume "data" is attached read-write to sandbox sb-1; browse its files from the sandbox'
        )

    monkeypatch.setattr(services, "volume_browse", browse)
    response = client_as(viewer).get(url(org, f"volumes/{vol.id}/files/"), headers=HTMX)
    assert response.status_code == 200 and b"browse its files from the sandbox" in response.content


def test_the_file_browser_refuses_a_volume_still_creating_without_asking_a_node(
    org: Organization, vol: Volume, viewer: Any, client_as: Callable[..., Client]
) -> None:
    Volume.objects.filter(id=vol.id).update(state=VolumeState.CREATING)
    response = client_as(viewer).get(url(org, f"volumes/{vol.id}/files/"))
    assert response.status_code == 200 and b"can be browsed once" in response.content


# --- trash --------------------------------------------------------------------------------


@pytest.fixture
def trashed(org: Organization, vol: Volume) -> Volume:
    return services.volume_delete(org=org, id_or_slug="data", actor=Actor(via=Via.CLI))


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_trash_shows_the_time_left_and_restore_only_to_admins(
    role: str,
    request: pytest.FixtureRequest,
    org: Organization,
    trashed: Volume,
    client_as: Callable[..., Client],
) -> None:
    client = client_as(request.getfixturevalue(role))
    body = client.get(url(org, "trash/")).content.decode()
    assert ">data<" in body and "23 h 59 min left" in body
    assert (">Restore</button>" in body) is (role == "admin")
    fragment = client.get(url(org, "trash/"), headers=HTMX).content.decode()
    assert "<html" not in fragment and 'id="trash-table"' in fragment


@pytest.mark.parametrize("htmx", [False, True])
def test_an_admin_restores_a_volume_from_trash(
    org: Organization, trashed: Volume, admin: Any, client_as: Callable[..., Client], htmx: bool
) -> None:
    response = client_as(admin).post(url(org, f"trash/{trashed.id}/restore/"), headers=HTMX if htmx else {})
    target = url(org, f"volumes/{trashed.id}/")
    assert (response["HX-Redirect"] if htmx else response["Location"]) == target
    trashed.refresh_from_db()
    assert trashed.state == VolumeState.AVAILABLE and trashed.slug == "data"


def test_a_member_cannot_restore(
    org: Organization, trashed: Volume, member: Any, client_as: Callable[..., Client]
) -> None:
    assert client_as(member).post(url(org, f"trash/{trashed.id}/restore/")).status_code == 403
    assert Volume.objects.get(id=trashed.id).state == VolumeState.DELETED


def test_restore_asks_for_a_new_slug_when_the_old_one_is_taken(
    org: Organization, trashed: Volume, admin: Any, client_as: Callable[..., Client]
) -> None:
    make_volume(org, "data")
    client = client_as(admin)
    response = client.post(url(org, f"trash/{trashed.id}/restore/"), headers=HTMX)
    assert response.status_code == 422
    body = response.content.decode()
    assert "choose a new slug" in body and 'name="new_slug"' in body
    bad = client.post(url(org, f"trash/{trashed.id}/restore/"), {"new_slug": "Bad!"}, headers=HTMX)
    assert bad.status_code == 422 and b"slugs are lowercase" in bad.content
    assert Volume.objects.get(id=trashed.id).state == VolumeState.DELETED
    response = client.post(url(org, f"trash/{trashed.id}/restore/"), {"new_slug": "data-2"})
    assert response.status_code == 302
    assert Volume.objects.get(id=trashed.id).slug == "data-2"


def test_restoring_another_teams_volume_is_a_404(
    org: Organization, trashed: Volume, stranger: Any, client_as: Callable[..., Client]
) -> None:
    other = stranger.memberships.get().organization
    assert client_as(stranger).post(url(other, f"trash/{trashed.id}/restore/")).status_code == 404
    assert Volume.objects.get(id=trashed.id).state == VolumeState.DELETED


def test_trash_counts_down_from_purge_after(
    org: Organization, trashed: Volume, viewer: Any, client_as: Callable[..., Client]
) -> None:
    Volume.objects.filter(id=trashed.id).update(purge_after=timezone.now() + timedelta(minutes=5, seconds=30))
    assert "5 min left" in client_as(viewer).get(url(org, "trash/")).content.decode()
