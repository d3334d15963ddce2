from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from dashboard.models import AuditEvent, Membership, Organization
from volumes.models import Node, Region

pytestmark = pytest.mark.django_db


def test_the_login_page_is_served(client: Client) -> None:
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_home_sends_a_member_to_their_organization(
    org: Organization, admin: Any, client_as: Callable[..., Client]
) -> None:
    response = client_as(admin).get("/")
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org.slug}/"


def test_the_overview_shows_regions_and_recent_activity(
    org: Organization, admin: Any, regions: list[Any], client_as: Callable[..., Client]
) -> None:
    AuditEvent.objects.create(
        organization=org, actor="alice", action="volume.create", target="scratch", via="api"
    )
    page = client_as(admin).get(f"/o/{org.slug}/").content.decode()
    for code in ("ord", "ams", "iad", "lax"):
        assert f'<span class="region-code">{code}</span>' in page
    assert "volume.create" in page


def test_the_activity_page_filters_by_action_and_answers_htmx_with_the_table(
    org: Organization, other_org: Organization, admin: Any, client_as: Callable[..., Client]
) -> None:
    AuditEvent.objects.create(
        organization=org, actor="alice", action="volume.create", target="one", via="web"
    )
    AuditEvent.objects.create(organization=org, actor="alice", action="token.create", target="two", via="web")
    AuditEvent.objects.create(
        organization=other_org, actor="m", action="volume.create", target="theirs", via="web"
    )
    response = client_as(admin).get(f"/o/{org.slug}/activity/?action=volume.", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body and 'id="events"' in body
    assert ">one<" in body and ">two<" not in body and "theirs" not in body


def test_seed_demo_is_safe_to_run_twice() -> None:
    for _ in range(2):
        out = StringIO()
        call_command("seed_demo", stdout=out)
    assert "Log in as demo" in out.getvalue()
    assert sorted(Region.objects.values_list("code", flat=True)) == ["ams", "iad", "lax", "ord"]
    assert Node.objects.count() == 4
    assert Membership.objects.get(user__username="demo", organization__slug="demo").role == "admin"
    assert Client().login(username="demo", password="berth-demo")


def test_the_api_serves_its_schema_and_docs(client: Client) -> None:
    schema = client.get("/api/v2/openapi.json").json()
    assert schema["info"]["title"] == "Berth API"
    assert "/api/v2/regions" in schema["paths"]
    assert client.get("/api/v2/docs").status_code == 200


def test_a_non_staff_user_cannot_reach_the_admin(admin: Any, client_as: Callable[..., Client]) -> None:
    response = client_as(admin).get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


FORM = "application/x-www-form-urlencoded"


def test_a_nul_character_in_a_page_request_is_a_clear_400(
    org: Organization, admin: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(admin)
    for response in (
        client.get(f"/o/{org.slug}/volumes/?search=a%00b"),
        client.get(f"/o/{org.slug}/activity/?action=%00"),
        client.post(f"/o/{org.slug}/members/add/", "username=x%00&role=member", content_type=FORM),
    ):
        assert response.status_code == 400
        assert b"NUL character" in response.content
    assert Membership.objects.filter(organization=org).count() == 1


def test_the_images_page_lists_host_and_imported_images(
    org: Organization, viewer: Any, client_as: Callable[..., Client]
) -> None:
    from sandboxes.models import Image

    Image.objects.create(name="alpine", description="Alpine 3.20", size=3_500_000)
    page = client_as(viewer).get(f"/o/{org.slug}/images/").content.decode()
    assert "<code>host</code>" in page and "<code>alpine</code>" in page and "3.5 MB" in page
