"""The volume admin, as support staff use it: every organization, deleted volumes, Restore."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from dashboard.models import AuditEvent, Organization, Via
from dashboard.services import Actor
from volumes import services
from volumes.models import Node, Volume, VolumeState

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/volumes/volume/"
actor = Actor(via=Via.CLI)


def staff(username: str, *perms: str) -> Any:
    user = get_user_model().objects.create_user(username=username, password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="volumes", codename__in=perms)
    )
    return user


@pytest.fixture
def support(client_as: Callable[..., Client]) -> Client:
    return client_as(staff("sam", "view_volume", "view_attachment", "restore_volume"))


def deleted(org: Organization, slug: str) -> Volume:
    services.volume_create(org=org, slug=slug, region="ord", actor=actor)
    return services.volume_delete(org=org, id_or_slug=slug, actor=actor)


def restore(client: Client, volumes: list[Volume], **form: str) -> Any:
    """POST the action as the changelist does, then (when ``form`` is given) the intermediate form."""
    selected = [str(v.pk) for v in volumes]
    if not form:
        return client.post(CHANGELIST, {"action": "restore", "_selected_action": selected, "index": "0"})
    return client.post(
        CHANGELIST, {"action": "restore", "_selected_action": selected, "apply": "yes", **form}, follow=True
    )


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_support_sees_deleted_volumes_of_every_organization(
    support: Client, org: Organization, other_org: Organization, regions: list[Node]
) -> None:
    deleted(org, "ours")
    deleted(other_org, "theirs")
    services.volume_create(org=org, slug="live", region="ord", actor=actor)
    response = support.get(CHANGELIST, {"state__exact": "deleted"})
    assert response.status_code == 200
    shown = {v.slug for v in response.context["cl"].result_list}
    assert shown == {"ours", "theirs"}
    assert {v.slug for v in support.get(CHANGELIST).context["cl"].result_list} == {"ours", "theirs", "live"}


def test_support_can_search_by_slug_id_and_organization(
    support: Client, org: Organization, other_org: Organization, regions: list[Node]
) -> None:
    ours = deleted(org, "ours")
    deleted(other_org, "theirs")

    def found(term: str) -> set[str]:
        response = support.get(CHANGELIST, {"q": term})
        assert response.status_code == 200
        return {v.slug for v in response.context["cl"].result_list}

    assert found("our") == {"ours"}
    assert found(str(ours.id)) == {"ours"}
    assert found(other_org.slug) == {"theirs"}


def test_support_restores_a_volume_with_a_reason_written_to_the_audit(
    support: Client, org: Organization, other_org: Organization, regions: list[Node]
) -> None:
    volume = deleted(other_org, "theirs")
    page = restore(support, [volume])
    assert page.status_code == 200
    assert "Reason" in page.content.decode() and "theirs" in page.content.decode()
    assert Volume.objects.get(id=volume.id).state == VolumeState.DELETED  # nothing yet

    response = restore(support, [volume], reason="ticket 4711")
    assert response.status_code == 200
    assert any("restored" in m for m in messages_of(response))
    volume.refresh_from_db()
    assert (volume.state, volume.slug, volume.purge_after) == (VolumeState.AVAILABLE, "theirs", None)
    event = AuditEvent.objects.get(action="volume.restore", target_id=str(volume.id))
    assert (event.via, event.organization, str(event.user)) == (Via.ADMIN, other_org, "sam")
    assert event.data["reason"] == "ticket 4711"


def test_restore_without_a_reason_asks_again(support: Client, org: Organization, regions: list[Node]) -> None:
    volume = deleted(org, "data")
    response = support.post(
        CHANGELIST, {"action": "restore", "_selected_action": [str(volume.pk)], "apply": "yes", "reason": ""}
    )
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert Volume.objects.get(id=volume.id).state == VolumeState.DELETED


def test_restore_of_a_volume_whose_slug_was_taken_asks_for_a_new_one(
    support: Client, org: Organization, regions: list[Node]
) -> None:
    old = deleted(org, "data")
    services.volume_create(org=org, slug="data", region="ord", actor=actor)
    field = f"new_slug_{old.pk}"
    page = restore(support, [old])
    assert f'name="{field}"' in page.content.decode()

    again = support.post(
        CHANGELIST,
        {"action": "restore", "_selected_action": [str(old.pk)], "apply": "yes", "reason": "oops"},
    )
    assert again.status_code == 200 and f'name="{field}"' in again.content.decode()
    assert Volume.objects.get(id=old.id).state == VolumeState.DELETED

    bad = restore(support, [old], reason="oops", **{field: "Data Old"})
    assert any("lowercase" in m for m in messages_of(bad))
    assert Volume.objects.get(id=old.id).state == VolumeState.DELETED

    done = restore(support, [old], reason="oops", **{field: "data-old"})
    assert any('"data-old"' in m for m in messages_of(done))
    old.refresh_from_db()
    assert (old.state, old.slug) == (VolumeState.AVAILABLE, "data-old")


def test_restore_of_a_purged_volume_is_refused_with_the_reason(
    support: Client, org: Organization, regions: list[Node]
) -> None:
    purged = deleted(org, "gone")
    Volume.objects.filter(id=purged.id).update(state=VolumeState.PURGED)
    fine = deleted(org, "fine")
    response = restore(support, [purged, fine], reason="ticket 9")
    texts = messages_of(response)
    assert any("purged" in m and "cannot be restored" in m for m in texts)
    assert any("fine" in m and "restored" in m for m in texts)
    assert Volume.objects.get(id=purged.id).state == VolumeState.PURGED
    assert Volume.objects.get(id=fine.id).state == VolumeState.AVAILABLE


def test_nobody_can_delete_a_volume_in_the_admin(
    org: Organization, regions: list[Node], client_as: Any
) -> None:
    superuser = get_user_model().objects.create_superuser(username="root", password="pw")
    client = client_as(superuser)
    volume = services.volume_create(org=org, slug="data", region="ord", actor=actor)
    response = client.get(CHANGELIST)
    choices = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in choices
    assert "restore" in choices
    assert client.get(f"{CHANGELIST}{volume.pk}/delete/").status_code == 403
    assert client.post(f"{CHANGELIST}{volume.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [str(volume.pk)], "post": "yes"}
    )
    assert Volume.objects.filter(id=volume.id, state=VolumeState.CREATING).exists()


def test_volumes_are_read_only_in_the_admin(support: Client, org: Organization, regions: list[Node]) -> None:
    volume = services.volume_create(org=org, slug="data", region="ord", actor=actor)
    page = support.get(f"{CHANGELIST}{volume.pk}/change/")
    assert page.status_code == 200
    assert 'name="slug"' not in page.content.decode()
    support.post(f"{CHANGELIST}{volume.pk}/change/", {"slug": "renamed", "capacity": "1"})
    assert Volume.objects.get(id=volume.id).slug == "data"
    assert support.get(f"{CHANGELIST}add/").status_code == 403


def test_someone_who_is_not_staff_is_sent_to_the_admin_login(
    member: Any, client_as: Callable[..., Client]
) -> None:
    response = client_as(member).get(CHANGELIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_the_restore_permission_has_no_restore_action(
    org: Organization, regions: list[Node], client_as: Callable[..., Client]
) -> None:
    client = client_as(staff("viewer-only", "view_volume"))
    volume = deleted(org, "data")
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert response.context["action_form"] is None  # no action at all: not restore, not delete
    restore(client, [volume], reason="sneaky")
    assert Volume.objects.get(id=volume.id).state == VolumeState.DELETED
    assert not AuditEvent.objects.filter(action="volume.restore").exists()


def test_the_restore_permission_alone_shows_the_volumes(
    org: Organization, regions: list[Node], client_as: Callable[..., Client]
) -> None:
    client = client_as(staff("rita", "restore_volume"))
    volume = deleted(org, "data")
    assert client.get("/admin/").status_code == 200
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert [v.slug for v in response.context["cl"].result_list] == ["data"]
    restore(client, [volume], reason="ticket 1")
    assert Volume.objects.get(id=volume.id).state == VolumeState.AVAILABLE


def test_attachments_are_read_only(support: Client, org: Organization, regions: list[Node]) -> None:
    assert support.get("/admin/volumes/attachment/").status_code == 200
    assert support.get("/admin/volumes/attachment/add/").status_code == 403
