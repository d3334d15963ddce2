"""Writes for regions, nodes and volumes: every rule and every state change lives here.

Control-plane functions (``volume_create``, ``volume_delete``, …) change rows and enqueue
node work after commit. Node-side functions (``volume_provision_run``, ``volume_purge_run``,
…) run inside tasks on the node's own queue: each claims its row with a conditional update,
calls the driver outside any transaction, and records the outcome only if the row is still
in the state it claimed, so running one twice is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dashboard.errors import Conflict, NotFound, RuleBroken
from dashboard.models import Organization
from dashboard.services import Actor, audit_record
from dashboard.units import bytes_human
from provisioning.base import ProvisioningError
from volumes.models import GB, Attachment, Node, Region, Volume, VolumeState
from volumes.nodes import driver_of, enqueue_on_node, node_call, node_place
from volumes.rules import check_capacity_in_region, parse_capacity, region_by_code, validate_slug

log = logging.getLogger(__name__)

SEEDED_REGIONS = {"ord": "Chicago", "ams": "Amsterdam", "iad": "Ashburn", "lax": "Los Angeles"}
MAX_LABELS = 32


@transaction.atomic
def regions_seed(*, data_root: Path, node_capacity: int = 200 * GB) -> list[Node]:
    """The four regions with one local node each; running it again changes nothing."""
    nodes = []
    for code, name in SEEDED_REGIONS.items():
        region, _ = Region.objects.get_or_create(code=code, defaults={"name": name})
        node, _ = Node.objects.get_or_create(
            name=f"{code}-1",
            defaults={"region": region, "data_root": str(data_root / f"{code}-1"), "capacity": node_capacity},
        )
        nodes.append(node)
    return nodes


def validate_labels(labels: Any) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise RuleBroken("Labels must be an object of string keys and string values", field="labels")
    if len(labels) > MAX_LABELS:
        raise RuleBroken(f"At most {MAX_LABELS} labels", field="labels")
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise RuleBroken("Labels must be an object of string keys and string values", field="labels")
        if not key or len(key) > 63 or len(value) > 255:
            raise RuleBroken(
                f'Label "{key[:63]}": keys are 1–63 characters, values up to 255', field="labels"
            )
    return dict(labels)


def _set_state(volume: Volume, state: str, **fields: Any) -> None:
    volume.state = state
    volume.state_changed_at = timezone.now()
    for name, value in fields.items():
        setattr(volume, name, value)
    volume.save(update_fields=["state", "state_changed_at", *fields])


# --- control plane ------------------------------------------------------------------------


def volume_create(
    *,
    org: Organization,
    slug: str,
    region: str,
    capacity: str | int | None = None,
    labels: dict[str, str] | None = None,
    description: str = "",
    node: Node | None = None,
    actor: Actor,
) -> Volume:
    """A new volume, provisioned by its node after commit; ``node`` pins it (sandbox mounts)."""
    validate_slug(slug)
    if len(description) > 1000:
        raise RuleBroken("The description can be at most 1000 characters", field="description")
    region_obj = region_by_code(region)
    size = parse_capacity(capacity)
    check_capacity_in_region(size, region_obj)
    clean_labels = validate_labels(labels)
    with transaction.atomic():
        if Volume.objects.for_org(org).live().filter(slug=slug).exists():
            raise Conflict(f'A volume named "{slug}" already exists', field="slug")
        node = node or node_place(region_obj, size)
        try:
            with transaction.atomic():
                volume = Volume.objects.create(
                    organization=org,
                    slug=slug,
                    region=region_obj,
                    node=node,
                    capacity=size,
                    labels=clean_labels,
                    description=description,
                    created_by=actor.user,
                )
        except IntegrityError:  # a concurrent create took the slug between the check and the insert
            raise Conflict(f'A volume named "{slug}" already exists', field="slug") from None
        audit_record(
            org=org,
            actor=actor,
            action="volume.create",
            target=volume,
            data={"region": region_obj.code, "capacity": size},
        )
        _enqueue_provision(volume)
    return volume


def _enqueue_provision(volume: Volume) -> None:
    from volumes.tasks import volume_provision

    enqueue_on_node(volume_provision, volume.node, str(volume.id))


def volume_get(*, org: Organization, id_or_slug: str) -> Volume:
    """A live volume of ``org`` by id or slug; anything else (another team's, deleted) is a 404."""
    volume = Volume.objects.for_org(org).live().lookup(id_or_slug).select_related("region", "node").first()
    if volume is None:
        raise NotFound(f'No volume "{id_or_slug}"')
    return volume


def _locked(org: Organization | None, volume_id: Any) -> Volume:
    volumes = Volume.objects.select_for_update().select_related("region", "node")
    if org is not None:
        volumes = volumes.for_org(org)
    volume = volumes.filter(id=volume_id).first()
    if volume is None:
        raise NotFound("No such volume")
    return volume


def live_attachment_of(volume: Volume) -> Attachment | None:
    return Attachment.objects.live().filter(volume=volume).select_related("sandbox").first()


def _refuse_if_attached(volume: Volume, doing: str) -> None:
    attachment = live_attachment_of(volume)
    if attachment is not None:
        raise Conflict(
            f'Volume "{volume.slug}" is attached to sandbox {attachment.sandbox} at {attachment.mount_path}; '
            f"kill the sandbox before you {doing} it"
        )


def volume_update(
    *,
    org: Organization,
    id_or_slug: str,
    labels: dict[str, str] | None = None,
    description: str | None = None,
    capacity: str | int | None = None,
    actor: Actor,
) -> Volume:
    """Labels and description; ``capacity`` grows the volume (never shrinks) when not attached."""
    clean_labels = validate_labels(labels) if labels is not None else None
    if description is not None and len(description) > 1000:
        raise RuleBroken("The description can be at most 1000 characters", field="description")
    with transaction.atomic():
        volume = _locked(org, volume_get(org=org, id_or_slug=id_or_slug).id)
        changed: dict[str, Any] = {}
        if clean_labels is not None and clean_labels != volume.labels:
            volume.labels = changed["labels"] = clean_labels
        if description is not None and description != volume.description:
            volume.description = changed["description"] = description
        if changed:
            volume.save(update_fields=list(changed))
            audit_record(org=org, actor=actor, action="volume.update", target=volume, data=changed)
        if capacity is not None:
            _extend(volume, parse_capacity(capacity), actor)
    return volume


def _extend(volume: Volume, capacity: int, actor: Actor) -> None:
    if capacity == volume.capacity and volume.resizing_to is None:
        return
    if volume.state != VolumeState.AVAILABLE:
        raise Conflict(f'Volume "{volume.slug}" is {volume.state}; only an available volume can grow')
    if volume.resizing_to is not None:
        raise Conflict(f'Volume "{volume.slug}" is already growing to {bytes_human(volume.resizing_to)}')
    if capacity < volume.capacity:
        raise RuleBroken(
            f"A volume can only grow: {bytes_human(capacity)} is less than "
            f"its {bytes_human(volume.capacity)}",
            field="capacity",
        )
    check_capacity_in_region(capacity, volume.region)
    _refuse_if_attached(volume, "grow")
    volume.resizing_to = capacity
    volume.save(update_fields=["resizing_to"])
    audit_record(
        org=volume.organization,
        actor=actor,
        action="volume.extend",
        target=volume,
        data={"from": volume.capacity, "to": capacity},
    )
    from volumes.tasks import volume_extend

    enqueue_on_node(volume_extend, volume.node, str(volume.id), capacity)


def volume_delete(*, org: Organization, id_or_slug: str, actor: Actor) -> Volume:
    """Mark deleted at once, free the slug, and start the grace period; no data is touched."""
    with transaction.atomic():
        volume = _locked(org, volume_get(org=org, id_or_slug=id_or_slug).id)
        if not volume.is_live:  # a concurrent delete won the lock first
            raise NotFound(f'No volume "{id_or_slug}"')
        _refuse_if_attached(volume, "delete")
        now = timezone.now()
        _set_state(
            volume,
            VolumeState.DELETED,
            deleted_at=now,
            purge_after=now + settings.VOLUME_PURGE_GRACE,
            generation=volume.generation + 1,
        )
        audit_record(
            org=org,
            actor=actor,
            action="volume.delete",
            target=volume,
            data={"purge_after": volume.purge_after.isoformat() if volume.purge_after else None},
        )
    return volume


def volume_restore(
    *, volume_id: Any, org: Organization | None, new_slug: str = "", reason: str = "", actor: Actor
) -> Volume:
    """Bring a deleted volume back during its grace period, every byte intact.

    ``org`` is None for support staff, who may restore any organization's volume. If the
    slug was taken meanwhile, the caller must give ``new_slug``. ``reason`` (why support
    restored it) goes into the audit event.
    """
    if new_slug:
        validate_slug(new_slug)
    with transaction.atomic():
        volume = _locked(org, volume_id)
        if volume.state == VolumeState.PURGED or volume.state == VolumeState.PURGING:
            raise Conflict(
                f'Volume "{volume.slug}" was purged after its grace period ended; its data is gone and it '
                "cannot be restored"
            )
        if volume.state != VolumeState.DELETED:
            raise Conflict(f'Volume "{volume.slug}" is not deleted, so there is nothing to restore')
        slug = new_slug or volume.slug
        if Volume.objects.for_org(volume.organization).live().filter(slug=slug).exists():
            raise Conflict(
                f'The slug "{slug}" is now taken by another volume; choose a new slug to restore this one',
                field="new_slug",
            )
        old_slug = volume.slug
        volume.slug = slug
        _set_state(
            volume,
            VolumeState.AVAILABLE,
            slug=slug,
            deleted_at=None,
            purge_after=None,
            generation=volume.generation + 1,
        )
        audit_record(
            org=volume.organization,
            actor=actor,
            action="volume.restore",
            target=volume,
            data={"slug": slug, "old_slug": old_slug, **({"reason": reason} if reason else {})},
        )
    return volume


def volume_retry(*, org: Organization, id_or_slug: str, actor: Actor) -> Volume:
    """Try provisioning again after an error."""
    with transaction.atomic():
        volume = _locked(org, volume_get(org=org, id_or_slug=id_or_slug).id)
        if volume.state != VolumeState.ERROR:
            raise Conflict(f'Volume "{volume.slug}" is {volume.state}; only a volume in error can be retried')
        _set_state(volume, VolumeState.CREATING, error="")
        audit_record(org=org, actor=actor, action="volume.retry", target=volume)
        _enqueue_provision(volume)
    return volume


# --- the purge sweep ----------------------------------------------------------------------


def volume_purge_sweep(*, now: datetime | None = None, batch: int = 100) -> list[str]:
    """Claim deleted volumes whose grace has ended and send each purge to its node.

    ``skip_locked`` lets two beats (or a beat and a restore holding a row) run at once
    without waiting on each other or claiming the same row twice.
    """
    with transaction.atomic():
        due = list(
            Volume.objects.select_for_update(skip_locked=True)
            .select_related("node")
            .filter(state=VolumeState.DELETED, purge_after__lte=now or timezone.now())
            .order_by("purge_after")[:batch]
        )
        for volume in due:
            _set_state(volume, VolumeState.PURGING)
            _enqueue_purge(volume)
    return [str(v.id) for v in due]


def _enqueue_purge(volume: Volume) -> None:
    from volumes.tasks import volume_purge

    enqueue_on_node(volume_purge, volume.node, str(volume.id), volume.generation)


# --- node side ----------------------------------------------------------------------------


def volume_provision_run(*, volume_id: str) -> str:
    volume = Volume.objects.select_related("node").filter(id=volume_id, state=VolumeState.CREATING).first()
    if volume is None:
        return "skipped"  # already provisioned, retried elsewhere, or deleted meanwhile
    try:
        driver_of(volume.node).volume_create(str(volume.id), volume.capacity)
    except ProvisioningError as error:
        Volume.objects.filter(id=volume.id, state=VolumeState.CREATING).update(
            state=VolumeState.ERROR, error=str(error), state_changed_at=timezone.now()
        )
        audit_record(
            org=volume.organization,
            actor=Actor.system(),
            action="volume.error",
            target=volume,
            data={"error": str(error)},
        )
        return "error"
    now = timezone.now()
    won = Volume.objects.filter(id=volume.id, state=VolumeState.CREATING).update(
        state=VolumeState.AVAILABLE, state_changed_at=now, used=0, used_at=now
    )
    if won:
        audit_record(org=volume.organization, actor=Actor.system(), action="volume.available", target=volume)
    return "available" if won else "skipped"


def volume_extend_run(*, volume_id: str, capacity: int) -> str:
    volume = Volume.objects.select_related("node").filter(id=volume_id, resizing_to=capacity).first()
    if volume is None:
        return "skipped"
    try:
        driver_of(volume.node).volume_extend(str(volume.id), capacity)
    except ProvisioningError as error:
        Volume.objects.filter(id=volume.id, resizing_to=capacity).update(resizing_to=None)
        audit_record(
            org=volume.organization,
            actor=Actor.system(),
            action="volume.extend_failed",
            target=volume,
            data={"error": str(error)},
        )
        return "error"
    Volume.objects.filter(id=volume.id, resizing_to=capacity).update(capacity=capacity, resizing_to=None)
    return "extended"


def volume_purge_run(*, volume_id: str, generation: int) -> str:
    """Destroy the storage of a claimed volume; a message from an older generation does nothing."""
    volume = (
        Volume.objects.select_related("node")
        .filter(id=volume_id, state=VolumeState.PURGING, generation=generation)
        .first()
    )
    if volume is None:
        return "skipped"
    if Attachment.objects.live().filter(volume=volume).exists():  # never touch a mounted volume
        log.error("Volume %s is claimed for purge but attached; leaving it", volume_id)
        return "attached"
    driver_of(volume.node).volume_destroy(str(volume.id))
    won = Volume.objects.filter(id=volume.id, state=VolumeState.PURGING, generation=generation).update(
        state=VolumeState.PURGED, purged_at=timezone.now(), state_changed_at=timezone.now(), used=None
    )
    if won:
        audit_record(org=volume.organization, actor=Actor.system(), action="volume.purge", target=volume)
    return "purged" if won else "skipped"


def volume_usage_refresh_run(*, node_id: int, volume_ids: list[str] | None = None) -> int:
    """Measure ``used`` of the node's available volumes (or just ``volume_ids``) from the filesystem."""
    node = Node.objects.get(id=node_id)
    volumes = Volume.objects.filter(node=node, state=VolumeState.AVAILABLE)
    if volume_ids is not None:
        volumes = volumes.filter(id__in=volume_ids)
    driver = driver_of(node)
    measured = 0
    for volume_id in volumes.values_list("id", flat=True):
        try:
            usage = driver.volume_usage(str(volume_id))
        except ProvisioningError as error:
            log.warning("Usage of volume %s: %s", volume_id, error)
            continue
        Volume.objects.filter(id=volume_id).update(used=usage.used, used_at=usage.measured_at)
        measured += 1
    return measured


BROWSE_READ_LIMIT = 256 * 1024


def volume_browse(*, org: Organization, id_or_slug: str, path: str, kind: str) -> dict[str, Any]:
    """Read-only look into a volume: list a directory (``kind="dir"``) or read a file.

    Refused while a sandbox holds the volume read-write, since its files may be changing.
    The node answers through the result backend; the page waits for it.
    """
    volume = volume_get(org=org, id_or_slug=id_or_slug)
    if volume.state != VolumeState.AVAILABLE:
        raise Conflict(f'Volume "{volume.slug}" is {volume.state}; its files can be browsed once available')
    writers = Attachment.objects.live().filter(volume=volume, read_only=False).select_related("sandbox")
    writer = writers.first()
    if writer is not None:
        raise Conflict(
            f'Volume "{volume.slug}" is attached read-write to sandbox {writer.sandbox}; '
            "browse its files from the sandbox"
        )
    if kind == "dir":
        entries = node_call(volume.node, "volume_list_dir", str(volume.id), path)
        entries.sort(key=lambda e: (e["kind"] != "dir", e["name"]))
        return {"kind": "dir", "path": path, "entries": entries}
    data: bytes = node_call(volume.node, "volume_read_file", str(volume.id), path, BROWSE_READ_LIMIT)
    return {
        "kind": "file",
        "path": path,
        "text": data.decode("utf-8", errors="replace"),
        "size": len(data),
        "truncated": len(data) >= BROWSE_READ_LIMIT,
    }


STUCK_AFTER = timedelta(minutes=10)


def node_reconcile_run(*, node_id: int) -> list[str]:
    """Compare the node's storage with the database and drive every row to its intended state.

    Returns what it did, one line per fix; each fix is also an audit event.
    """
    node = Node.objects.get(id=node_id)
    driver = driver_of(node)
    present = driver.inventory().volumes
    stuck_before = timezone.now() - STUCK_AFTER
    done: list[str] = []
    rows = {str(v.id): v for v in Volume.objects.filter(node=node).exclude(state=VolumeState.PURGED)}
    for volume_id, volume in rows.items():
        fix = _reconcile_one(volume, volume_id in present, stuck_before)
        if fix:
            done.append(f"{volume.slug} ({volume_id}): {fix}")
            audit_record(
                org=volume.organization,
                actor=Actor.system(),
                action="volume.reconcile",
                target=volume,
                data={"fix": fix},
            )
    purged = set(Volume.objects.filter(node=node, state=VolumeState.PURGED).values_list("id", flat=True))
    for volume_id in present.keys() - rows.keys():
        # Storage with no live row: left by a crash between destroy and commit, or never recorded.
        driver.volume_destroy(volume_id)
        reason = "purged row" if any(str(p) == volume_id for p in purged) else "no row"
        done.append(f"{volume_id}: destroyed storage with {reason}")
        audit_record(
            org=None,
            actor=Actor.system(),
            action="volume.reconcile",
            data={"fix": f"destroyed orphan storage {volume_id} ({reason}) on {node.name}"},
        )
    return done


def _reconcile_one(volume: Volume, has_storage: bool, stuck_before: Any) -> str:
    stuck = volume.state_changed_at < stuck_before
    if volume.state == VolumeState.CREATING and stuck:
        _enqueue_provision(volume)  # creating is idempotent: it finishes or records the error
        return "provisioning again after it was stuck in creating"
    if volume.state == VolumeState.PURGING and stuck:
        _enqueue_purge(volume)
        return "purging again after it was stuck in purging"
    if volume.state == VolumeState.AVAILABLE and volume.resizing_to is not None and has_storage:
        from volumes.tasks import volume_extend

        # Growing is idempotent, so sending it again is safe even if the first is still running.
        enqueue_on_node(volume_extend, volume.node, str(volume.id), volume.resizing_to)
        return f"growing to {bytes_human(volume.resizing_to)} again, in case its message was lost"
    if volume.state == VolumeState.AVAILABLE and not has_storage:
        Volume.objects.filter(id=volume.id, state=volume.state).update(
            state=VolumeState.ERROR,
            error=f"Its storage is missing on node {volume.node.name}",
            state_changed_at=timezone.now(),
        )
        return "marked error: storage missing"
    if volume.state == VolumeState.DELETED and not has_storage:
        # Nothing is left to restore; say so rather than offer a restore that would fail.
        Volume.objects.filter(id=volume.id, state=volume.state).update(
            state=VolumeState.PURGED, purged_at=timezone.now(), state_changed_at=timezone.now()
        )
        return "marked purged: storage already gone"
    return ""
