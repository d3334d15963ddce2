"""One real object of every kind an organization owns, keyed by the route parameter that names it.

The access tests fill routes with these, so that a 404 for a stranger proves the lookup is
scoped rather than that the object does not exist. Each app adds its kinds here.
"""

from __future__ import annotations

from typing import Any

from dashboard.models import Organization, Role, Via
from dashboard.services import Actor, token_create


def objects_of(org: Organization, admin: Any) -> dict[str, str]:
    token, _ = token_create(org=org, name="walk", role=Role.MEMBER, expires_at=None, actor=Actor(via=Via.CLI))
    return {"token_id": str(token.id), **_volumes_of(org), **_sandboxes_of(org)}


def _volumes_of(org: Organization) -> dict[str, str]:
    """An available volume (for ``id_or_slug``) and a deleted one in Trash (for ``volume_id``)."""
    from datetime import timedelta

    from django.utils import timezone

    from volumes.models import GB, Node, Region, Volume, VolumeState

    node = Node.objects.select_related("region").first()
    if node is None:
        region, _ = Region.objects.get_or_create(code="ord", defaults={"name": "Chicago"})
        node = Node.objects.create(name="ord-1", region=region, data_root="/nonexistent", capacity=100 * GB)
    live = Volume.objects.create(
        organization=org, slug="walk", region=node.region, node=node, capacity=GB, state=VolumeState.AVAILABLE
    )
    now = timezone.now()
    deleted = Volume.objects.create(
        organization=org,
        slug="walk-deleted",
        region=node.region,
        node=node,
        capacity=GB,
        state=VolumeState.DELETED,
        deleted_at=now,
        purge_after=now + timedelta(hours=24),
    )
    return {"id_or_slug": str(live.id), "volume_id": str(deleted.id)}


def _sandboxes_of(org: Organization) -> dict[str, str]:
    """A running sandbox (for ``sandbox_id``) with a background command (for ``command_id``)."""
    from sandboxes.models import Command, Sandbox
    from volumes.models import Node

    node = Node.objects.select_related("region").first()  # _volumes_of made one if none existed
    assert node is not None
    sandbox = Sandbox.objects.create(organization=org, region=node.region, node=node, state="running")
    command = Command.objects.create(sandbox=sandbox, cmd="sleep 1", background=True, pid=1)
    return {"sandbox_id": str(sandbox.id), "command_id": str(command.id)}
