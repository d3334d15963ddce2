"""Access rules checked across every organization page, found by walking the URL resolver."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from dashboard.models import Organization

pytestmark = pytest.mark.django_db


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        else:
            yield route, entry


def org_routes() -> list[str]:
    """Every route under /o/<org_slug>/, with its converters left in."""
    return sorted(
        {route for route, _ in _walk(get_resolver().url_patterns) if route.startswith("o/<slug:org_slug>/")}
    )


def fill(route: str, org: Organization, ids: dict[str, str]) -> str:
    """A concrete URL of ``org`` for ``route``; other parameters take a real object's id."""

    def value(match: re.Match[str]) -> str:
        name = match.group(2)
        return org.slug if name == "org_slug" else ids.get(name, "1")

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


@pytest.fixture
def org_ids(org: Organization, admin: Any, member: Any) -> dict[str, str]:
    """Real objects of ``org`` for every kind of id in a route, so a 404 proves scoping, not absence."""
    from dashboard.models import Membership

    from .objects import objects_of

    return {"membership_id": str(Membership.objects.get(user=member).id), **objects_of(org, admin)}


def test_the_walk_finds_the_organization_pages() -> None:
    routes = org_routes()
    assert "o/<slug:org_slug>/" in routes
    assert "o/<slug:org_slug>/members/<int:membership_id>/remove/" in routes


@pytest.mark.parametrize("htmx", [False, True])
def test_a_stranger_gets_404_on_every_organization_page(
    org: Organization, org_ids: dict[str, str], stranger: Any, client_as: Callable[..., Client], htmx: bool
) -> None:
    client = client_as(stranger)
    headers = {"HX-Request": "true"} if htmx else {}
    for route in org_routes():
        url = fill(route, org, org_ids)
        for method in (client.get, client.post):
            response = method(url, headers=headers)
            assert response.status_code in {404, 405}, (
                f"{method.__name__.upper()} {url}: {response.status_code}"
            )
            if response.status_code == 405:  # the method is wrong: try it only the way the view takes
                continue
            assert org.name.encode() not in response.content


def test_someone_logged_out_is_sent_to_log_in(org: Organization, org_ids: dict[str, str]) -> None:
    for route in org_routes():
        url = fill(route, org, org_ids)
        response = Client().get(url)
        assert response.status_code in {302, 405}, url
        if response.status_code == 302:
            assert response["Location"].startswith("/login/")


def test_a_viewer_can_change_nothing(
    org: Organization, org_ids: dict[str, str], viewer: Any, client_as: Callable[..., Client]
) -> None:
    from dashboard.models import AuditEvent, Membership

    client = client_as(viewer)
    before = (AuditEvent.objects.count(), Membership.objects.count())
    posted = 0
    for route in org_routes():
        url = fill(route, org, org_ids)
        response = client.post(url, {"role": "admin", "username": "victor", "name": "x", "slug": "x"})
        if response.status_code == 405:
            continue
        posted += 1
        assert response.status_code == 403, f"POST {url}: {response.status_code}"
    assert posted >= 5
    assert (AuditEvent.objects.count(), Membership.objects.count()) == before


def test_a_viewer_can_read_every_page_it_is_shown(
    org: Organization, org_ids: dict[str, str], viewer: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(viewer)
    for name in ("overview", "members", "activity"):
        assert client.get(f"/o/{org.slug}/{'' if name == 'overview' else name + '/'}").status_code == 200
    assert client.get(f"/o/{org.slug}/tokens/").status_code == 403


def test_every_state_changing_form_refuses_a_request_without_the_csrf_token(
    org: Organization, org_ids: dict[str, str], admin: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(admin, enforce_csrf_checks=True)
    checked = 0
    for route in org_routes():
        url = fill(route, org, org_ids)
        for headers in ({}, {"HX-Request": "true"}):
            response = client.post(url, {"role": "viewer"}, headers=headers)
            if response.status_code == 405:
                continue
            checked += 1
            assert response.status_code == 403, f"POST {url}: {response.status_code}"
            assert b"CSRF" in response.content
    assert checked >= 10
    logout = client.post("/logout/")
    assert logout.status_code == 403


def test_the_csrf_token_reaches_htmx_requests_from_the_body(
    org: Organization, admin: Any, client_as: Callable[..., Client]
) -> None:
    page = client_as(admin).get(f"/o/{org.slug}/members/").content.decode()
    match = re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"([\w-]+)\"\}'>", page)
    assert match is not None
    assert len(match.group(1)) >= 32
