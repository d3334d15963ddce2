from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from dashboard.models import AuditEvent, Membership, Organization, Role

pytestmark = pytest.mark.django_db


def test_an_admin_adds_an_existing_user(
    org: Organization, admin: Any, stranger: Any, client_as: Callable[..., Client]
) -> None:
    response = client_as(admin).post(f"/o/{org.slug}/members/add/", {"username": "mallory", "role": "viewer"})
    assert response.status_code == 302
    assert Membership.objects.get(organization=org, user=stranger).role == Role.VIEWER
    event = AuditEvent.objects.get(action="member.add")
    assert (event.organization, event.user, event.via) == (org, admin, "web")


@pytest.mark.parametrize("htmx", [False, True])
def test_adding_an_unknown_user_says_so_and_changes_nothing(
    org: Organization, admin: Any, client_as: Callable[..., Client], htmx: bool
) -> None:
    headers = {"HX-Request": "true"} if htmx else {}
    response = client_as(admin).post(
        f"/o/{org.slug}/members/add/", {"username": "nobody", "role": "member"}, headers=headers
    )
    assert response.status_code == 422
    assert b"There is no user &quot;nobody&quot;" in response.content
    assert (b"<html" in response.content) is not htmx  # htmx gets only the form fragment
    assert Membership.objects.filter(organization=org).count() == 1


def test_adding_someone_twice_is_refused(
    org: Organization, admin: Any, member: Any, client_as: Callable[..., Client]
) -> None:
    response = client_as(admin).post(f"/o/{org.slug}/members/add/", {"username": "bob", "role": "admin"})
    assert response.status_code == 422
    assert b"already a member" in response.content
    assert Membership.objects.get(user=member).role == Role.MEMBER


def test_an_admin_changes_a_role_and_htmx_is_redirected(
    org: Organization, admin: Any, member: Any, client_as: Callable[..., Client]
) -> None:
    membership = Membership.objects.get(user=member)
    response = client_as(admin).post(
        f"/o/{org.slug}/members/{membership.id}/role/", {"role": "viewer"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/o/{org.slug}/members/"
    membership.refresh_from_db()
    assert membership.role == Role.VIEWER
    assert AuditEvent.objects.get(action="member.role").data == {"from": "member", "to": "viewer"}


def test_the_last_admin_can_be_neither_removed_nor_demoted(
    org: Organization, admin: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(admin)
    mine = Membership.objects.get(user=admin)
    client.post(f"/o/{org.slug}/members/{mine.id}/role/", {"role": "member"})
    response = client.post(f"/o/{org.slug}/members/{mine.id}/remove/", follow=True)
    assert b"is the last admin of Acme" in response.content
    mine.refresh_from_db()
    assert mine.role == Role.ADMIN


def test_an_admin_removes_a_member_once_another_admin_exists(
    org: Organization, admin: Any, member: Any, client_as: Callable[..., Client]
) -> None:
    client = client_as(admin)
    theirs = Membership.objects.get(user=member)
    client.post(f"/o/{org.slug}/members/{theirs.id}/role/", {"role": "admin"})
    mine = Membership.objects.get(user=admin)
    client.post(f"/o/{org.slug}/members/{mine.id}/remove/")
    assert not Membership.objects.filter(user=admin).exists()
    assert AuditEvent.objects.filter(action="member.remove").count() == 1


def test_a_member_cannot_manage_members(
    org: Organization, admin: Any, member: Any, client_as: Callable[..., Client]
) -> None:
    mine = Membership.objects.get(user=admin)
    response = client_as(member).post(f"/o/{org.slug}/members/{mine.id}/remove/")
    assert response.status_code == 403
    assert Membership.objects.filter(user=admin).exists()


def test_the_switcher_lists_only_my_organizations(
    org: Organization, other_org: Organization, admin: Any, stranger: Any, client_as: Callable[..., Client]
) -> None:
    Membership.objects.create(
        organization=Organization.objects.create(slug="third", name="Third"), user=admin
    )
    page = client_as(admin).get(f"/o/{org.slug}/").content.decode()
    assert 'href="/o/third/"' in page
    assert "/o/globex/" not in page
