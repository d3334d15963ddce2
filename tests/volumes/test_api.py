"""The volume endpoints of the REST API: happy paths, every error code, and Idempotency-Key."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from dashboard.errors import RuleBroken
from dashboard.models import AuditEvent, Organization, Role
from sandboxes.models import Sandbox
from volumes.models import Attachment, Node, Volume, VolumeState
from volumes.rules import check_capacity_in_region, parse_capacity, region_by_code, validate_slug

pytestmark = pytest.mark.django_db

URL = "/api/v2/volumes"
ApiAs = Callable[[Organization, str], Client]


@pytest.fixture
def api(org: Organization, regions: list[Node], api_as: ApiAs) -> Client:
    return api_as(org, Role.MEMBER)


def post(client: Client, body: Any, **headers: str) -> Any:
    return client.post(URL, body, content_type="application/json", headers=headers)


def patch(client: Client, id_or_slug: str, body: Any) -> Any:
    return client.patch(f"{URL}/{id_or_slug}", body, content_type="application/json")


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def rule_message(check: Callable[[], object]) -> str:
    with pytest.raises(RuleBroken) as broken:
        check()
    return broken.value.message


def make(client: Client, slug: str, **fields: Any) -> dict[str, Any]:
    response = post(client, {"slug": slug, "region": "ord", **fields})
    assert response.status_code == 201, response.content
    return response.json()


# --- create ---------------------------------------------------------------------------------


def test_it_creates_a_volume_and_answers_201_with_it(api: Client, org: Organization) -> None:
    response = post(api, {"slug": "data", "region": "ord", "labels": {"team": "ml"}, "description": "d"})
    assert response.status_code == 201
    body = response.json()
    volume = Volume.objects.get(organization=org, slug="data")
    assert body == {
        "id": str(volume.id),
        "slug": "data",
        "region": "ord",
        "capacity": 1_000_000_000,
        "resizing_to": None,
        "used": None,
        "used_at": None,
        "status": "creating",
        "labels": {"team": "ml"},
        "description": "d",
        "created_at": body["created_at"],
        "attached_to": [],
        "error": "",
    }
    assert AuditEvent.objects.filter(action="volume.create", target_id=str(volume.id), via="api").exists()


@pytest.mark.parametrize(
    ("capacity", "expected"),
    [("2GB", 2_000_000_000), ("1GiB", 1_073_741_824), (500_000_000, 500_000_000), ("300MB", 300_000_000)],
)
def test_it_reads_capacity_as_bytes_or_a_size_with_a_unit(api: Client, capacity: Any, expected: int) -> None:
    assert make(api, "data", capacity=capacity)["capacity"] == expected


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"slug": "My-Project"}, lambda: validate_slug("My-Project")),
        ({"slug": "cache@v2"}, lambda: validate_slug("cache@v2")),
        ({"slug": "a" * 31}, lambda: validate_slug("a" * 31)),
        ({"slug": "-data"}, lambda: validate_slug("-data")),
        (
            {"capacity": "500GB"},
            lambda: check_capacity_in_region(parse_capacity("500GB"), region_by_code("ord")),
        ),
        (
            {"capacity": "100MB"},
            lambda: check_capacity_in_region(parse_capacity("100MB"), region_by_code("ord")),
        ),
        ({"capacity": "lots"}, lambda: parse_capacity("lots")),
        ({"region": "mars"}, lambda: region_by_code("mars")),
        ({"labels": {"": "x"}}, None),
    ],
)
def test_a_broken_rule_is_a_422_with_the_rules_own_message(
    api: Client, fields: dict[str, Any], rule: Callable[[], object] | None
) -> None:
    response = post(api, {"slug": "data", "region": "ord", **fields})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid"
    if rule is not None:
        assert error["message"] == rule_message(rule)
    assert not Volume.objects.exists()


def test_the_rule_messages_say_what_is_wrong(api: Client) -> None:
    too_long = error_of(post(api, {"slug": "a" * 31, "region": "ord"}))["message"]
    assert "31 characters" in too_long and "30" in too_long
    assert "lowercase" in error_of(post(api, {"slug": "My-Project", "region": "ord"}))["message"]
    assert '"@"' in error_of(post(api, {"slug": "cache@v2", "region": "ord"}))["message"]
    assert "above" in error_of(post(api, {"slug": "a", "region": "ord", "capacity": "500GB"}))["message"]
    assert "below" in error_of(post(api, {"slug": "a", "region": "ord", "capacity": "100MB"}))["message"]
    assert '"mars"' in error_of(post(api, {"slug": "a", "region": "mars"}))["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"slug": "data", "region": "ord", "size": "2GB"},  # an unknown field
        {"slug": "data"},  # region missing
        {"slug": 5, "region": "ord"},
        {"slug": "data", "region": "ord", "capacity": True},
        {"slug": "data", "region": "ord", "capacity": 1.5},
        {"slug": "data", "region": "ord", "capacity": [1]},
        {"slug": "data", "region": "ord", "labels": {"team": 1}},
        {"slug": "data", "region": "ord", "labels": ["team"]},
        {"slug": "data", "region": "ord", "description": "d" * 1001},
        ["data"],
    ],
)
def test_malformed_input_is_a_400_that_names_the_field_and_creates_nothing(api: Client, body: Any) -> None:
    response = post(api, body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed"
    assert not Volume.objects.exists()


def test_a_body_that_is_not_json_is_a_400(api: Client) -> None:
    response = api.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed"


def test_an_unknown_field_is_named_in_the_message(api: Client) -> None:
    message = error_of(post(api, {"slug": "data", "region": "ord", "size": "2GB"}))["message"]
    assert message.startswith("size:")


def test_a_taken_slug_is_a_409(api: Client) -> None:
    make(api, "data")
    response = post(api, {"slug": "data", "region": "ams"})
    assert response.status_code == 409
    assert error_of(response) == {
        "code": "conflict",
        "message": 'A volume named "data" already exists',
        "field": "slug",
    }
    assert Volume.objects.count() == 1


def test_the_same_slug_in_another_organization_is_fine(
    api: Client, other_org: Organization, api_as: ApiAs
) -> None:
    make(api, "data")
    assert make(api_as(other_org, Role.MEMBER), "data")["slug"] == "data"


def test_without_a_valid_token_every_call_is_a_401(api: Client, regions: list[Node]) -> None:
    anonymous = Client()
    wrong = Client(headers={"Authorization": "Bearer berth_not-a-token"})
    for client in (anonymous, wrong):
        for response in (
            client.get(URL),
            client.get("/api/v2/regions"),
            post(client, {"slug": "data", "region": "ord"}),
            client.delete(f"{URL}/data"),
        ):
            assert response.status_code == 401
            assert error_of(response)["code"] == "unauthorized"
    assert not Volume.objects.exists()


# --- read -----------------------------------------------------------------------------------


def test_it_reads_a_volume_by_id_and_by_slug(api: Client) -> None:
    created = make(api, "data", capacity="2GB")
    by_id = api.get(f"{URL}/{created['id']}")
    by_slug = api.get(f"{URL}/data")
    assert by_id.status_code == by_slug.status_code == 200
    assert by_id.json() == by_slug.json() == created


def test_another_organizations_volume_is_a_404_like_a_missing_one(
    api: Client, other_org: Organization, api_as: ApiAs
) -> None:
    theirs = make(api_as(other_org, Role.MEMBER), "secret")
    for name in (theirs["id"], "secret"):
        response = api.get(f"{URL}/{name}")
        assert response.status_code == 404
        missing_name = str(uuid.uuid4()) if name == theirs["id"] else "nothing"
        missing = api.get(f"{URL}/{missing_name}")
        assert missing.status_code == 404
        assert error_of(response)["message"] == error_of(missing)["message"].replace(missing_name, name)
        assert error_of(response)["code"] == "not_found"


def test_the_volume_shows_its_live_attachments_and_error(api: Client, org: Organization) -> None:
    created = make(api, "data")
    volume = Volume.objects.get(id=created["id"])
    sandbox = Sandbox.objects.create(
        organization=org, region=volume.region, node=volume.node, state="running"
    )
    Attachment.objects.create(volume=volume, sandbox=sandbox, mount_path="/workspace")
    Volume.objects.filter(id=volume.id).update(state=VolumeState.ERROR, error="disk on fire")
    body = api.get(f"{URL}/data").json()
    assert body["attached_to"] == [
        {"sandbox_id": str(sandbox.id), "mount_path": "/workspace", "read_only": False}
    ]
    assert (body["status"], body["error"]) == ("error", "disk on fire")
    assert api.get(URL).json()["items"][0]["attached_to"] == body["attached_to"]


def test_the_list_shows_only_the_organizations_live_volumes(
    api: Client, other_org: Organization, api_as: ApiAs
) -> None:
    make(api, "alpha")
    make(api, "beta", region="ams")
    make(api, "gone")
    api.delete(f"{URL}/gone")
    make(api_as(other_org, Role.MEMBER), "theirs")
    body = api.get(URL).json()
    assert [v["slug"] for v in body["items"]] == ["beta", "alpha"]
    assert body["next_cursor"] is None


def test_the_list_filters_by_search_region_and_state(api: Client) -> None:
    make(api, "alpha", description="training data")
    make(api, "beta", region="ams")
    Volume.objects.filter(slug="beta").update(state=VolumeState.AVAILABLE)

    def slugs(query: str) -> list[str]:
        response = api.get(f"{URL}?{query}")
        assert response.status_code == 200
        return [v["slug"] for v in response.json()["items"]]

    assert slugs("search=alp") == ["alpha"]
    assert slugs("search=training") == ["alpha"]
    assert slugs("region=ams") == ["beta"]
    assert slugs("state=available") == ["beta"]
    assert slugs("state=creating&region=ord") == ["alpha"]
    assert slugs("region=mars") == []


def test_pagination_walks_every_volume_exactly_once(api: Client) -> None:
    made = {make(api, f"vol-{n}")["id"] for n in range(7)}
    seen: list[str] = []
    pages = 0
    cursor = ""
    while True:
        body = api.get(f"{URL}?limit=3&cursor={cursor}").json()
        pages += 1
        assert len(body["items"]) <= 3
        seen += [v["id"] for v in body["items"]]
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == made


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=many", "cursor=%21%21", "state=deleted"])
def test_a_bad_list_query_is_a_400(api: Client, query: str) -> None:
    response = api.get(f"{URL}?{query}")
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed"


def test_limit_defaults_to_the_page_size_setting(api: Client, settings: Any) -> None:
    settings.API_PAGE_SIZE = 2
    for n in range(3):
        make(api, f"vol-{n}")
    body = api.get(URL).json()
    assert len(body["items"]) == 2 and body["next_cursor"]
    assert len(api.get(f"{URL}?limit=200").json()["items"]) == 3


# --- update ---------------------------------------------------------------------------------


def test_patch_changes_labels_and_description(api: Client) -> None:
    make(api, "data", labels={"a": "1"})
    response = patch(api, "data", {"labels": {"b": "2"}, "description": "new"})
    assert response.status_code == 200
    assert (response.json()["labels"], response.json()["description"]) == ({"b": "2"}, "new")
    assert patch(api, "data", {}).json()["labels"] == {"b": "2"}  # fields left out stay as they are


def test_patch_grows_an_available_volume(api: Client) -> None:
    make(api, "data", capacity="1GB")
    Volume.objects.filter(slug="data").update(state=VolumeState.AVAILABLE)
    response = patch(api, "data", {"capacity": "2GB"})
    assert response.status_code == 200
    assert (response.json()["capacity"], response.json()["resizing_to"]) == (1_000_000_000, 2_000_000_000)


def test_patch_never_shrinks_a_volume(api: Client) -> None:
    make(api, "data", capacity="2GB")
    Volume.objects.filter(slug="data").update(state=VolumeState.AVAILABLE)
    response = patch(api, "data", {"capacity": "1GB"})
    assert response.status_code == 422
    assert "only grow" in error_of(response)["message"]
    assert Volume.objects.get(slug="data").resizing_to is None


def test_patch_cannot_grow_a_volume_that_is_still_being_created(api: Client) -> None:
    make(api, "data")
    assert patch(api, "data", {"capacity": "2GB"}).status_code == 409


@pytest.mark.parametrize(
    "body", [{"slug": "renamed"}, {"labels": {"a": 1}}, {"capacity": True}, {"description": 5}]
)
def test_patch_refuses_malformed_input_and_changes_nothing(api: Client, body: dict[str, Any]) -> None:
    make(api, "data", description="kept")
    response = patch(api, "data", body)
    assert response.status_code == 400
    volume = Volume.objects.get()
    assert (volume.slug, volume.description, volume.labels) == ("data", "kept", {})


def test_patch_of_a_missing_volume_is_a_404(api: Client) -> None:
    assert patch(api, "nothing", {"description": "x"}).status_code == 404


# --- delete ---------------------------------------------------------------------------------


def test_delete_answers_with_the_purge_time_frees_the_slug_and_hides_the_volume(api: Client) -> None:
    created = make(api, "data")
    response = api.delete(f"{URL}/data")
    assert response.status_code == 200
    volume = Volume.objects.get(id=created["id"])
    assert volume.purge_after is not None
    body = response.json()
    assert body == {"id": created["id"], "status": "deleted", "purge_after": body["purge_after"]}
    assert body["purge_after"].startswith(volume.purge_after.isoformat()[:19])
    assert api.get(f"{URL}/data").status_code == 404
    assert api.get(f"{URL}/{created['id']}").status_code == 404
    assert api.delete(f"{URL}/{created['id']}").status_code == 404
    again = post(api, {"slug": "data", "region": "ord"})
    assert again.status_code == 201
    assert again.json()["id"] != created["id"]


def test_delete_of_an_attached_volume_is_a_409_naming_the_sandbox(api: Client, org: Organization) -> None:
    make(api, "data")
    volume = Volume.objects.get(slug="data")
    sandbox = Sandbox.objects.create(
        organization=org, region=volume.region, node=volume.node, state="running"
    )
    Attachment.objects.create(volume=volume, sandbox=sandbox, mount_path="/workspace")
    response = api.delete(f"{URL}/data")
    assert response.status_code == 409
    assert str(sandbox) in error_of(response)["message"]
    assert Volume.objects.get(id=volume.id).state == VolumeState.CREATING


# --- roles ----------------------------------------------------------------------------------


def test_a_viewer_can_read_but_not_write(api: Client, org: Organization, api_as: ApiAs) -> None:
    made = make(api, "data", labels={"a": "1"})
    viewer = api_as(org, Role.VIEWER)
    before = list(Volume.objects.values())
    assert viewer.get(URL).status_code == 200
    assert viewer.get(f"{URL}/data").status_code == 200
    for response in (
        post(viewer, {"slug": "other", "region": "ord"}),
        patch(viewer, "data", {"labels": {}}),
        patch(viewer, made["id"], {"capacity": "2GB"}),
        viewer.delete(f"{URL}/data"),
    ):
        assert response.status_code == 403
        assert error_of(response)["code"] == "forbidden"
    assert list(Volume.objects.values()) == before


def test_an_admin_token_can_write(org: Organization, regions: list[Node], api_as: ApiAs) -> None:
    admin = api_as(org, Role.ADMIN)
    make(admin, "data")
    assert admin.delete(f"{URL}/data").status_code == 200


# --- Idempotency-Key ------------------------------------------------------------------------


def test_a_retry_with_the_same_key_gets_the_first_answer_and_makes_nothing(api: Client) -> None:
    key = str(uuid.uuid4())
    first = post(api, {"slug": "data", "region": "ord"}, **{"Idempotency-Key": key})
    retry = post(api, {"region": "ord", "slug": "data"}, **{"Idempotency-Key": key})
    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    assert retry["Idempotent-Replayed"] == "true"
    assert Volume.objects.count() == 1
    assert AuditEvent.objects.filter(action="volume.create").count() == 1


def test_the_same_key_with_another_body_is_a_422(api: Client) -> None:
    key = str(uuid.uuid4())
    post(api, {"slug": "data", "region": "ord"}, **{"Idempotency-Key": key})
    response = post(api, {"slug": "other", "region": "ord"}, **{"Idempotency-Key": key})
    assert response.status_code == 422
    assert error_of(response)["code"] == "idempotency_key_reused"
    assert list(Volume.objects.values_list("slug", flat=True)) == ["data"]


def test_a_new_key_is_a_new_request(api: Client) -> None:
    post(api, {"slug": "data", "region": "ord"}, **{"Idempotency-Key": str(uuid.uuid4())})
    response = post(api, {"slug": "data", "region": "ord"}, **{"Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == 409


def test_a_key_belongs_to_its_token(api: Client, org: Organization, api_as: ApiAs) -> None:
    key = str(uuid.uuid4())
    post(api, {"slug": "data", "region": "ord"}, **{"Idempotency-Key": key})
    response = post(api_as(org, Role.MEMBER), {"slug": "data", "region": "ord"}, **{"Idempotency-Key": key})
    assert response.status_code == 409
    assert "Idempotent-Replayed" not in response


def test_a_broken_rule_is_stored_but_a_conflict_runs_again(api: Client) -> None:
    rule_key, conflict_key = str(uuid.uuid4()), str(uuid.uuid4())
    bad = {"slug": "Data", "region": "ord"}
    assert post(api, bad, **{"Idempotency-Key": rule_key}).status_code == 422
    assert post(api, bad, **{"Idempotency-Key": rule_key})["Idempotent-Replayed"] == "true"

    make(api, "data")
    body = {"slug": "data", "region": "ord"}
    assert post(api, body, **{"Idempotency-Key": conflict_key}).status_code == 409
    api.delete(f"{URL}/data")
    assert post(api, body, **{"Idempotency-Key": conflict_key}).status_code == 201


def test_a_malformed_key_is_a_400(api: Client) -> None:
    response = post(api, {"slug": "data", "region": "ord"}, **{"Idempotency-Key": "k" * 256})
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed"
    assert not Volume.objects.exists()


def test_a_key_never_replays_to_a_token_that_no_longer_works(
    org: Organization, regions: list[Node], token_for: Callable[[Organization, str], str]
) -> None:
    from dashboard.models import ApiToken

    secret = token_for(org, Role.MEMBER)
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    key = str(uuid.uuid4())
    assert post(client, {"slug": "data", "region": "ord"}, **{"Idempotency-Key": key}).status_code == 201
    ApiToken.objects.update(revoked_at="2000-01-01T00:00:00Z")
    assert post(client, {"slug": "data", "region": "ord"}, **{"Idempotency-Key": key}).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_make_one_volume_and_give_one_answer(
    org: Organization, regions: list[Node], token_for: Callable[[Organization, str], str]
) -> None:
    secret = token_for(org, Role.MEMBER)
    key = str(uuid.uuid4())
    start = threading.Barrier(10)
    answers: list[tuple[int, bytes]] = []
    failures: list[BaseException] = []

    def create() -> None:
        try:
            client = Client(headers={"Authorization": f"Bearer {secret}"})
            start.wait()
            response = post(client, {"slug": "data", "region": "ord"}, **{"Idempotency-Key": key})
            answers.append((response.status_code, response.content))
        except BaseException as error:  # surfaced below; a thread's exception is otherwise lost
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert len(answers) == 10
    assert {status for status, _ in answers} == {201}
    assert len({content for _, content in answers}) == 1
    assert Volume.objects.filter(organization=org).count() == 1
