"""Access rules checked across every operation of the REST API, found by walking its schema.

Routes added later are covered without touching this file, unless they bring a path
parameter, a required body or a required query parameter it does not know yet: then a test
fails and says what to add to ``objects_of_org_a``, ``BODIES`` or ``QUERIES`` below.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from dashboard.api import api
from dashboard.models import AuditEvent, Organization, Role, Via
from dashboard.services import Actor
from sandboxes import services as sandbox_services
from sandboxes.models import Command, Sandbox
from volumes import services
from volumes.models import Volume

pytestmark = pytest.mark.django_db

ApiAs = Callable[[Organization, str], Client]
PARAM = re.compile(r"\{(\w+)\}")

# A valid body for every operation whose body has required fields, so the role and scope
# checks are what answers, not input validation.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v2/volumes"): {"slug": "fresh", "region": "ord"},
    ("POST", "/api/v2/sandboxes"): {"region": "ord", "volumes": {"/w": "data"}},
    ("POST", "/api/v2/sandboxes/{sandbox_id}/exec"): {"cmd": "true"},
}
# Reads answered by a node (files, logs): they need a running sandbox on a real data plane,
# so the viewer's reads of them are tested in tests/sandboxes/test_api.py instead.
NODE_BACKED = {
    "/api/v2/sandboxes/{sandbox_id}/files",
    "/api/v2/sandboxes/{sandbox_id}/commands/{command_id}/log",
}
# The same for required query parameters.
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/api/v2/sandboxes/{sandbox_id}/files"): {"path": "/etc/hostname"},
    ("PUT", "/api/v2/sandboxes/{sandbox_id}/files"): {"path": "/tmp/x"},
}


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) for every operation in the published OpenAPI document."""
    for path, item in api.get_openapi_schema()["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def object_operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [op for op in operations() if PARAM.search(op[1])]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not ref:
        return schema
    name = ref.rsplit("/", 1)[-1]
    return _resolve(api.get_openapi_schema()["components"]["schemas"][name])


def body_for(method: str, path: str, operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    if (method, path) in BODIES:
        return BODIES[(method, path)]
    if _resolve(content["schema"]).get("required"):
        pytest.fail(f"{method} {path} needs a body with required fields: add a valid one to BODIES")
    return {}


def query_for(method: str, path: str, operation: dict[str, Any]) -> dict[str, str]:
    required = [
        p["name"] for p in operation.get("parameters", []) if p["in"] == "query" and p.get("required")
    ]
    if required and (method, path) not in QUERIES:
        pytest.fail(f"{method} {path} has required query parameters {required}: add values to QUERIES")
    return QUERIES.get((method, path), {})


def call(
    client: Client, method: str, path: str, operation: dict[str, Any], values: dict[str, str] | None = None
) -> Any:
    """Call ``path`` (the schema's template) with its parameters filled from ``values``."""
    body = body_for(method, path, operation)
    query = query_for(method, path, operation)
    return client.generic(
        method,
        url(path, values or {}),
        data="" if body is None else json.dumps(body),
        content_type="application/json",
        QUERY_STRING="&".join(f"{k}={v}" for k, v in query.items()),
    )


def objects_of_org_a(org: Organization) -> dict[tuple[str, str], list[str]]:
    """Real objects of ``org`` for each (collection, path parameter), by every name the API accepts.

    A route ``/api/v2/volumes/{id_or_slug}`` takes its values from ``("volumes", "id_or_slug")``.
    """
    actor = Actor(via=Via.CLI)
    volume = services.volume_create(org=org, slug="data", region="ord", actor=actor)
    sandbox = sandbox_services.sandbox_create(org=org, region="ord", actor=actor)
    Sandbox.objects.filter(id=sandbox.id).update(state="running")
    command = Command.objects.create(sandbox=sandbox, cmd="sleep 1", background=True, pid=7)
    return {
        ("volumes", "id_or_slug"): [str(volume.id), volume.slug],
        ("sandboxes", "sandbox_id"): [str(sandbox.id)],
        ("commands", "command_id"): [str(command.id)],
    }


def fillings(path: str, objects: dict[tuple[str, str], list[str]]) -> list[dict[str, str]]:
    """Every way to fill ``path``'s parameters with org A's objects (one URL per name of each)."""
    segments = path.strip("/").split("/")
    choices: dict[str, list[str]] = {}
    for i, segment in enumerate(segments):
        match = PARAM.fullmatch(segment)
        if match is None:
            continue
        where = (segments[i - 1], match.group(1))
        if where not in objects:
            pytest.fail(
                f"{path}: no object for the path parameter {{{where[1]}}} after /{where[0]}/. "
                f"Add a real object of org A for {where!r} in objects_of_org_a."
            )
        choices[where[1]] = objects[where]
    fills: list[dict[str, str]] = [{}]
    for name, values in choices.items():
        fills = [{**fill, name: value} for fill in fills for value in values]
    return fills


def url(path: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], path)


def missing_like(value: str) -> str:
    """A name of the same kind as ``value`` that names nothing."""
    if value.isdigit():
        return "987654321"
    try:
        uuid.UUID(value)
    except ValueError:
        return "nothing-here"
    return str(uuid.uuid4())


def snapshot() -> tuple[list[Any], int]:
    return list(Volume.objects.order_by("id").values()), AuditEvent.objects.count()


@pytest.fixture
def objects(org: Organization, regions: list[Any]) -> dict[tuple[str, str], list[str]]:
    return objects_of_org_a(org)


def test_the_walk_finds_the_volume_operations() -> None:
    found = {(method, path) for method, path, _ in operations()}
    assert {
        ("GET", "/api/v2/volumes"),
        ("POST", "/api/v2/volumes"),
        ("GET", "/api/v2/volumes/{id_or_slug}"),
        ("PATCH", "/api/v2/volumes/{id_or_slug}"),
        ("DELETE", "/api/v2/volumes/{id_or_slug}"),
        ("GET", "/api/v2/regions"),
    } <= found


def test_a_stranger_gets_a_404_on_every_object_of_another_organization(
    objects: dict[tuple[str, str], list[str]], other_org: Organization, api_as: ApiAs
) -> None:
    stranger = api_as(other_org, Role.ADMIN)
    before = snapshot()
    checked = 0
    for method, path, operation in object_operations():
        for values in fillings(path, objects):
            target = url(path, values)
            response = call(stranger, method, path, operation, values)
            assert response.status_code == 404, (
                f"{method} {target}: {response.status_code} {response.content!r}"
            )
            missing = {name: missing_like(value) for name, value in values.items()}
            nothing = call(stranger, method, path, operation, missing)
            expected = nothing.content.decode()
            for name, value in values.items():
                expected = expected.replace(missing[name], value)
            assert response.content.decode() == expected, f"{method} {target} differs from a missing object"
            checked += 1
    assert snapshot() == before
    assert checked >= 6


def test_a_stranger_never_sees_another_organizations_objects_in_a_list(
    objects: dict[tuple[str, str], list[str]], other_org: Organization, api_as: ApiAs
) -> None:
    stranger = api_as(other_org, Role.ADMIN)
    names = [value for values in objects.values() for value in values]
    for method, path, operation in operations():
        if method != "GET" or PARAM.search(path):
            continue
        response = call(stranger, method, path, operation)
        assert response.status_code == 200, f"GET {path}: {response.status_code}"
        for name in names:
            assert f'"{name}"' not in response.content.decode(), f"GET {path} shows {name}"


def test_a_viewer_gets_a_403_on_every_write_and_nothing_changes(
    objects: dict[tuple[str, str], list[str]], org: Organization, api_as: ApiAs
) -> None:
    viewer = api_as(org, Role.VIEWER)
    before = snapshot()
    checked = 0
    for method, path, operation in operations():
        if method == "GET":
            continue
        for values in fillings(path, objects):
            target = url(path, values)
            response = call(viewer, method, path, operation, values)
            assert response.status_code == 403, (
                f"{method} {target}: {response.status_code} {response.content!r}"
            )
            assert response.json()["error"]["code"] == "forbidden"
            checked += 1
    assert snapshot() == before
    assert checked >= 5


def test_a_viewer_can_read_every_object_of_its_organization(
    objects: dict[tuple[str, str], list[str]], org: Organization, api_as: ApiAs
) -> None:
    viewer = api_as(org, Role.VIEWER)
    for method, path, operation in operations():
        if method != "GET" or path in NODE_BACKED:
            continue
        for values in fillings(path, objects):
            response = call(viewer, method, path, operation, values)
            assert response.status_code == 200, f"GET {url(path, values)}: {response.status_code}"


def test_every_operation_declares_the_errors_it_can_give() -> None:
    """The published schema is honest about errors, so generated clients and fuzzers can rely on it."""
    for method, path, operation in operations():
        declared = {str(status) for status in operation["responses"]}
        needed = {"401"}
        if PARAM.search(path):
            needed.add("404")
        if method != "GET":
            needed.add("403")
        if "requestBody" in operation or any(p["in"] == "query" for p in operation.get("parameters", [])):
            needed.add("400")
        assert needed <= declared, f"{method} {path} does not declare {sorted(needed - declared)}"
        for status in declared - {"200", "201", "204"}:
            schema = operation["responses"][int(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, f"{method} {path} {status}"


def test_the_schema_is_served() -> None:
    response = Client().get("/api/v2/openapi.json")
    assert response.status_code == 200
    assert "/api/v2/volumes/{id_or_slug}" in response.json()["paths"]
