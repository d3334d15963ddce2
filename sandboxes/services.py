"""Writes for sandboxes: create with mounts, exec, files, kill, and the node-side runs.

The attachment rule (one read-write sandbox per volume, or any number of read-only ones,
never both) is checked under a row lock on each volume and backed by a partial unique
index, so two concurrent requests can never both win.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dashboard.errors import Conflict, NotFound, RuleBroken
from dashboard.models import Organization
from dashboard.services import Actor, audit_record
from provisioning.base import Mount, ProvisioningError, SandboxSpec
from sandboxes.models import ACTIVE_STATES, Command, Image, Sandbox, SandboxState
from sandboxes.rules import (
    check_mount_paths,
    parse_lifetime,
    parse_memory_limit,
    validate_env,
    validate_mount_path,
)
from volumes.models import Attachment, Node, Region, Volume, VolumeState
from volumes.nodes import driver_of, enqueue_on_node, node_call, node_place
from volumes.rules import capacity_from_size_gb, parse_capacity, region_by_code
from volumes.services import validate_labels, volume_create, volume_provision_run, volume_usage_refresh_run

log = logging.getLogger(__name__)

PIDS_LIMIT = 4096
OUTPUT_LIMIT = 256 * 1024
MAX_FILE = 10 * 1024 * 1024
MAX_TIMEOUT = 3600


@dataclass(frozen=True)
class MountRequest:
    path: str
    ref: str
    read_only: bool
    capacity: int | None


def parse_mounts(volumes: Any) -> list[MountRequest]:
    if not volumes:
        return []
    if not isinstance(volumes, dict):
        raise RuleBroken("volumes must be an object of mount path → volume slug or id", field="volumes")
    limit = settings.MAX_MOUNTS_PER_SANDBOX
    if len(volumes) > limit:
        raise RuleBroken(f"At most {limit} volumes can be mounted per sandbox", field="volumes")
    mounts = [_mount_request(path, spec) for path, spec in volumes.items()]
    check_mount_paths([m.path for m in mounts])
    return mounts


def _mount_request(path: Any, spec: Any) -> MountRequest:
    clean = validate_mount_path(path)
    if isinstance(spec, str):
        return MountRequest(path=clean, ref=spec, read_only=False, capacity=None)
    if not isinstance(spec, dict):
        raise RuleBroken(f"The volume for {clean} must be a slug, an id, or {{slug, capacity, read_only}}")
    ref = spec.get("slug") or spec.get("id")
    if not isinstance(ref, str) or not ref:
        raise RuleBroken(f"The volume for {clean} needs a slug or an id", field="volumes")
    read_only = spec.get("read_only", False)
    if not isinstance(read_only, bool):
        raise RuleBroken(f"read_only for {clean} must be true or false", field="volumes")
    capacity = None
    if spec.get("capacity") is not None:
        capacity = parse_capacity(spec["capacity"])
    elif spec.get("sizeGb") is not None:
        capacity = capacity_from_size_gb(spec["sizeGb"])
    return MountRequest(path=clean, ref=ref, read_only=read_only, capacity=capacity)


def check_image(name: str) -> str:
    if name == "host" or Image.objects.filter(name=name).exists():
        return name
    known = ", ".join(["host", *Image.objects.values_list("name", flat=True)])
    raise RuleBroken(f'There is no image "{name}"; the images are {known}', field="image")


def _is_uuid(ref: str) -> bool:
    try:
        uuid.UUID(ref)
    except ValueError:
        return False
    return True


def _existing_volume(org: Organization, region: Region, mount: MountRequest) -> Volume | None:
    volume = Volume.objects.for_org(org).lookup(mount.ref).select_related("region", "node").first()
    if volume is None:
        if _is_uuid(mount.ref):
            raise NotFound(f'No volume "{mount.ref}"')
        return None  # a new slug: created on first use
    if volume.state in (VolumeState.DELETED, VolumeState.PURGING, VolumeState.PURGED):
        raise Conflict(
            f'Volume "{volume.slug}" is deleted and cannot be mounted; restore it from Trash first'
        )
    if volume.region_id != region.id:
        raise RuleBroken(f'Volume "{volume.slug}" is in region {volume.region.code}', field="volumes")
    return volume


def _check_attachable(volume: Volume, read_only: bool) -> None:
    """Under the volume's row lock: one writer, or any number of readers, never both."""
    if volume.state == VolumeState.ERROR:
        raise Conflict(f'Volume "{volume.slug}" is in error ({volume.error}); retry it before mounting it')
    if volume.resizing_to is not None:
        raise Conflict(f'Volume "{volume.slug}" is growing; mount it once that is done')
    live = list(Attachment.objects.live().filter(volume=volume).select_related("sandbox"))
    writer = next((a for a in live if not a.read_only), None)
    if writer is not None:
        raise Conflict(
            f'Volume "{volume.slug}" is already attached to sandbox {writer.sandbox} at {writer.mount_path}'
        )
    if live and not read_only:
        raise Conflict(
            f'Volume "{volume.slug}" is already attached read-only to sandbox {live[0].sandbox}; '
            "a read-write mount needs it to itself"
        )


def sandbox_create(
    *,
    org: Organization,
    region: str,
    image: str = "host",
    volumes: Any = None,
    env: Any = None,
    labels: Any = None,
    lifetime: Any = None,
    allow_net: bool = False,
    memory_limit: Any = None,
    actor: Actor,
) -> Sandbox:
    region_obj = region_by_code(region)
    mounts = parse_mounts(volumes)
    clean_env, clean_labels = validate_env(env), validate_labels(labels)
    life, memory = parse_lifetime(lifetime), parse_memory_limit(memory_limit)
    check_image(image)
    with transaction.atomic():
        existing = {m.path: _existing_volume(org, region_obj, m) for m in mounts}
        nodes = {v.node for v in existing.values() if v is not None}
        if len(nodes) > 1:
            names = ", ".join(sorted(n.name for n in nodes))
            raise RuleBroken(f"All of a sandbox's volumes must be on one node; these are on {names}")
        node = nodes.pop() if nodes else node_place(region_obj, 0)
        chosen: dict[str, Volume] = {}
        for mount in mounts:
            volume = existing[mount.path] or volume_create(
                org=org,
                slug=mount.ref,
                region=region_obj.code,
                capacity=mount.capacity,
                node=node,
                actor=actor,
            )
            chosen[mount.path] = volume
        # Lock in one order, so two sandboxes asking for the same volumes cannot deadlock.
        locked = {
            v.id: v for v in Volume.objects.select_for_update().filter(id__in=[v.id for v in chosen.values()])
            .order_by("id")
        }  # fmt: skip
        for mount in mounts:
            _check_attachable(locked[chosen[mount.path].id], mount.read_only)
        now = timezone.now()
        sandbox = Sandbox.objects.create(
            organization=org, region=region_obj, node=node, image=image, env=clean_env, labels=clean_labels,
            allow_net=bool(allow_net), memory_limit=memory, lifetime=life, expires_at=now + life,
            created_by=actor.user,
        )  # fmt: skip
        _attach(sandbox, mounts, chosen)
        audit_record(
            org=org, actor=actor, action="sandbox.create", target=sandbox,
            data={"region": region_obj.code, "mounts": {m.path: chosen[m.path].slug for m in mounts}},
        )  # fmt: skip
        _enqueue("sandbox_start", sandbox)
    return sandbox


def _attach(sandbox: Sandbox, mounts: list[MountRequest], chosen: dict[str, Volume]) -> None:
    try:
        with transaction.atomic():
            Attachment.objects.bulk_create(
                Attachment(volume=chosen[m.path], sandbox=sandbox, mount_path=m.path, read_only=m.read_only)
                for m in mounts
            )
    except IntegrityError:  # the partial unique index: another writer got in first
        slugs = ", ".join(f'"{chosen[m.path].slug}"' for m in mounts if not m.read_only)
        raise Conflict(f"Volume {slugs} is already attached to another sandbox") from None


def _enqueue(task_name: str, sandbox: Sandbox) -> None:
    """Send the sandbox's node task after commit (at once outside a transaction)."""
    from sandboxes import tasks

    enqueue_on_node(getattr(tasks, task_name), sandbox.node, str(sandbox.id))


def sandbox_get(*, org: Organization, sandbox_id: Any) -> Sandbox:
    """A sandbox of ``org``; another team's (or a malformed id) is a 404."""
    try:
        key = uuid.UUID(str(sandbox_id))
    except ValueError:
        raise NotFound(f'No sandbox "{sandbox_id}"') from None
    sandbox = Sandbox.objects.for_org(org).select_related("region", "node").filter(id=key).first()
    if sandbox is None:
        raise NotFound(f'No sandbox "{sandbox_id}"')
    return sandbox


def _running(org: Organization, sandbox_id: Any) -> Sandbox:
    sandbox = sandbox_get(org=org, sandbox_id=sandbox_id)
    if sandbox.state != SandboxState.RUNNING:
        raise Conflict(f"Sandbox {sandbox} is {sandbox.state}, not running")
    return sandbox


def sandbox_kill(
    *,
    org: Organization | None,
    sandbox_id: Any,
    actor: Actor,
    stop_as: str = SandboxState.STOPPED,
    error: str = "",
) -> Sandbox:
    """Ask the node to end every process; the volumes are released once it confirms."""
    with transaction.atomic():
        key = sandbox_get(org=org, sandbox_id=sandbox_id).id if org is not None else sandbox_id
        sandbox = (
            Sandbox.objects.select_for_update().select_related("node", "organization").filter(id=key).first()
        )
        if sandbox is None:
            raise NotFound(f'No sandbox "{sandbox_id}"')
        if sandbox.state not in (SandboxState.PENDING, SandboxState.STARTING, SandboxState.RUNNING):
            return sandbox  # already stopping or ended: killing again changes nothing
        sandbox.state, sandbox.stop_as, sandbox.error = SandboxState.STOPPING, stop_as, error or sandbox.error
        sandbox.state_changed_at = timezone.now()
        sandbox.save(update_fields=["state", "stop_as", "error", "state_changed_at"])
        actions = {SandboxState.EXPIRED.value: "sandbox.expire", SandboxState.FAILED.value: "sandbox.fail"}
        audit_record(
            org=sandbox.organization, actor=actor, action=actions.get(stop_as, "sandbox.kill"), target=sandbox
        )
        _enqueue("sandbox_stop", sandbox)
    return sandbox


# --- exec and files -----------------------------------------------------------------------


def _check_cmd(cmd: Any) -> str | list[str]:
    if isinstance(cmd, str) and cmd.strip() and "\0" not in cmd:
        return cmd
    if isinstance(cmd, list) and cmd and all(isinstance(a, str) and "\0" not in a for a in cmd):
        return list(cmd)
    raise RuleBroken("cmd must be a shell string or a non-empty list of strings", field="cmd")


def sandbox_exec(
    *,
    org: Organization,
    sandbox_id: Any,
    cmd: Any,
    cwd: str | None = None,
    env: Any = None,
    timeout: float = 60,
    background: bool = False,
    actor: Actor,
) -> Command:
    """Run a command and wait for it (or, in the background, only for its process id)."""
    clean = _check_cmd(cmd)
    clean_env = validate_env(env)
    if cwd is not None and (not isinstance(cwd, str) or not cwd.startswith("/")):
        raise RuleBroken("cwd must be an absolute path inside the sandbox", field="cwd")
    if not 0 < timeout <= MAX_TIMEOUT:
        raise RuleBroken(f"timeout must be between 0 and {MAX_TIMEOUT} seconds", field="timeout")
    sandbox = _running(org, sandbox_id)
    command = Command.objects.create(
        sandbox=sandbox, cmd=clean, cwd=cwd or "", background=background, created_by=actor.user
    )
    audit_record(org=org, actor=actor, action="sandbox.exec", target=sandbox, data={"command": command.id})
    from sandboxes.tasks import command_run

    result = command_run.apply_async(args=(command.id, clean_env, timeout), queue=sandbox.node.queue)
    answer: dict[str, object] = result.get(timeout=timeout + 30)
    if answer.get("error"):
        raise Conflict(str(answer["error"]))
    command.refresh_from_db()
    return command


def command_run_on_node(*, command_id: int, env: dict[str, str], timeout: float) -> dict[str, Any]:
    command = Command.objects.select_related("sandbox__node").get(id=command_id)
    if command.exit_code is not None or command.pid is not None:
        return {}  # a redelivered message: it ran already
    driver = driver_of(command.sandbox.node)
    sandbox_id, cwd = str(command.sandbox_id), command.cwd or None
    try:
        if command.background:
            process = driver.sandbox_exec_background(sandbox_id, command.cmd, cwd=cwd, env=env)
            Command.objects.filter(id=command_id).update(pid=process.pid)
            return {}
        result = driver.sandbox_exec(
            sandbox_id, command.cmd, cwd=cwd, env=env, timeout=timeout, output_limit=OUTPUT_LIMIT
        )
    except ProvisioningError as error:
        Command.objects.filter(id=command_id).update(stderr=str(error), exit_code=-1)
        return {"error": str(error)}
    Command.objects.filter(id=command_id).update(
        exit_code=result.exit_code, timed_out=result.timed_out, duration=result.duration,
        stdout=result.stdout.decode("utf-8", errors="replace"),
        stderr=result.stderr.decode("utf-8", errors="replace"),
        truncated=result.stdout_truncated or result.stderr_truncated,
    )  # fmt: skip
    return {}


def command_log(*, org: Organization, sandbox_id: Any, command_id: int) -> str:
    sandbox = _running(org, sandbox_id)
    command = Command.objects.filter(sandbox=sandbox, id=command_id, background=True).first()
    if command is None or command.pid is None:
        raise NotFound("No such background command")
    data: bytes = node_call(sandbox.node, "sandbox_read_log", str(sandbox.id), command.pid, OUTPUT_LIMIT)
    return data.decode("utf-8", errors="replace")


def sandbox_file_read(*, org: Organization, sandbox_id: Any, path: str) -> bytes:
    sandbox = _running(org, sandbox_id)
    data: bytes = node_call(sandbox.node, "sandbox_read_file", str(sandbox.id), path, MAX_FILE)
    return data


def sandbox_file_write(*, org: Organization, sandbox_id: Any, path: str, data: bytes, actor: Actor) -> None:
    if len(data) > MAX_FILE:
        raise RuleBroken(f"A file can be at most {MAX_FILE // (1024 * 1024)} MiB", field="data")
    sandbox = _running(org, sandbox_id)
    node_call(sandbox.node, "sandbox_write_file", str(sandbox.id), path, data)
    audit_record(org=org, actor=actor, action="sandbox.file_write", target=sandbox, data={"path": path})


def sandbox_file_list(*, org: Organization, sandbox_id: Any, path: str) -> list[dict[str, Any]]:
    sandbox = _running(org, sandbox_id)
    entries: list[dict[str, Any]] = node_call(sandbox.node, "sandbox_list_dir", str(sandbox.id), path)
    return sorted(entries, key=lambda e: (e["kind"] != "dir", e["name"]))


# --- node side ----------------------------------------------------------------------------


def sandbox_start_run(*, sandbox_id: str) -> str:
    now = timezone.now()
    if not Sandbox.objects.filter(id=sandbox_id, state=SandboxState.PENDING).update(
        state=SandboxState.STARTING, state_changed_at=now
    ):
        return "skipped"
    sandbox = Sandbox.objects.select_related("node").get(id=sandbox_id)
    attachments = list(Attachment.objects.live().filter(sandbox=sandbox).select_related("volume"))
    for attachment in attachments:
        if attachment.volume.state == VolumeState.CREATING:
            volume_provision_run(volume_id=str(attachment.volume_id))  # created on first use
    broken = Volume.objects.filter(id__in=[a.volume_id for a in attachments]).exclude(
        state=VolumeState.AVAILABLE
    )
    driver = driver_of(sandbox.node)
    try:
        if broken.exists():
            raise ProvisioningError(f'Volume "{broken.first()}" could not be made available')
        driver.sandbox_start(_spec(sandbox, attachments))
    except ProvisioningError as error:
        _mark_failing(sandbox, str(error))
        return "failed"
    started = timezone.now()
    won = Sandbox.objects.filter(id=sandbox_id, state=SandboxState.STARTING).update(
        state=SandboxState.RUNNING, started_at=started, expires_at=started + sandbox.lifetime,
        state_changed_at=started,
    )  # fmt: skip
    if not won:  # killed while it was starting: the stop that was asked for still happens
        _enqueue("sandbox_stop", sandbox)
        return "stopping"
    audit_record(org=sandbox.organization, actor=Actor.system(), action="sandbox.running", target=sandbox)
    return "running"


def _spec(sandbox: Sandbox, attachments: list[Attachment]) -> SandboxSpec:
    return SandboxSpec(
        id=str(sandbox.id),
        image=sandbox.image,
        mounts=tuple(
            Mount(volume_id=str(a.volume_id), path=a.mount_path, read_only=a.read_only) for a in attachments
        ),
        env=dict(sandbox.env),
        allow_net=sandbox.allow_net,
        memory_limit=sandbox.memory_limit,
        pids_limit=PIDS_LIMIT,
    )


def _mark_failing(sandbox: Sandbox, error: str) -> None:
    Sandbox.objects.filter(id=sandbox.id, state__in=ACTIVE_STATES).update(
        state=SandboxState.STOPPING, stop_as=SandboxState.FAILED, error=error, state_changed_at=timezone.now()
    )
    _enqueue("sandbox_stop", sandbox)


def sandbox_stop_run(*, sandbox_id: str) -> str:
    """End the sandbox on the node, and release its volumes only once the node confirms."""
    sandbox = (
        Sandbox.objects.select_related("node").filter(id=sandbox_id, state=SandboxState.STOPPING).first()
    )
    if sandbox is None:
        return "skipped"
    driver = driver_of(sandbox.node)
    driver.sandbox_stop(str(sandbox.id))
    if driver.sandbox_alive(str(sandbox.id)):
        raise ProvisioningError(f"Sandbox {sandbox} still has processes after stop; will try again")
    now = timezone.now()
    with transaction.atomic():
        if not Sandbox.objects.filter(id=sandbox.id, state=SandboxState.STOPPING).update(
            state=sandbox.stop_as, stopped_at=now, state_changed_at=now
        ):
            return "skipped"
        volume_ids = [
            str(v)
            for v in Attachment.objects.live().filter(sandbox=sandbox).values_list("volume_id", flat=True)
        ]
        Attachment.objects.live().filter(sandbox=sandbox).update(detached_at=now)
    volume_usage_refresh_run(node_id=sandbox.node_id, volume_ids=volume_ids)
    audit_record(
        org=sandbox.organization, actor=Actor.system(), action=f"sandbox.{sandbox.stop_as}", target=sandbox
    )
    return str(sandbox.stop_as)


def sandbox_reap(*, now: Any = None) -> list[str]:
    """End running sandboxes past their lifetime; they end ``expired``."""
    due = Sandbox.objects.filter(state=SandboxState.RUNNING, expires_at__lte=now or timezone.now())
    reaped = []
    for sandbox_id in due.values_list("id", flat=True):
        sandbox_kill(org=None, sandbox_id=sandbox_id, actor=Actor.system(), stop_as=SandboxState.EXPIRED)
        reaped.append(str(sandbox_id))
    return reaped


STUCK_AFTER = timedelta(minutes=5)


def node_sandboxes_reconcile_run(*, node_id: int) -> list[str]:
    """Drive every sandbox row of the node to a state the node agrees with."""
    node = Node.objects.get(id=node_id)
    on_node = driver_of(node).inventory().sandboxes
    stuck_before = timezone.now() - STUCK_AFTER
    done = []
    for sandbox in Sandbox.objects.filter(node=node, state__in=ACTIVE_STATES):
        key, stuck = str(sandbox.id), sandbox.state_changed_at < stuck_before
        if sandbox.state == SandboxState.RUNNING and not on_node.get(key, False):
            _mark_failing(sandbox, f"The node {node.name} lost this sandbox")
            done.append(f"{sandbox}: lost by the node; stopping it as failed")
        elif sandbox.state == SandboxState.PENDING and stuck:
            _enqueue("sandbox_start", sandbox)
            done.append(f"{sandbox}: starting again after it was stuck in pending")
        elif sandbox.state == SandboxState.STARTING and stuck:
            _mark_failing(sandbox, "Its start was interrupted")
            done.append(f"{sandbox}: start interrupted; stopping it as failed")
        elif sandbox.state == SandboxState.STOPPING and stuck:
            _enqueue("sandbox_stop", sandbox)
            done.append(f"{sandbox}: stopping again after it was stuck in stopping")
    active = {
        str(i)
        for i in Sandbox.objects.filter(node=node, state__in=ACTIVE_STATES).values_list("id", flat=True)
    }
    for key in on_node.keys() - active:
        driver_of(node).sandbox_stop(key)  # left on the node with no active row
        done.append(f"{key}: stopped a sandbox the database does not know as active")
    for line in done:
        audit_record(org=None, actor=Actor.system(), action="sandbox.reconcile", data={"fix": line})
    return done


def image_import(*, name: str, tarball: str, description: str = "", actor: Actor) -> Image:
    """Unpack a root filesystem tarball as an image on every active node."""
    import os

    from django.core.validators import validate_slug

    if name == "host":
        raise RuleBroken("'host' is the node's own image and cannot be imported", field="name")
    try:
        validate_slug(name)
    except Exception:
        raise RuleBroken(f'Image name "{name}" must be letters, digits, _ and -', field="name") from None
    if not os.path.isfile(tarball):
        raise RuleBroken(f"There is no tarball at {tarball}", field="tarball")
    for node in Node.objects.filter(is_active=True):
        try:
            driver_of(node).image_import(name, tarball)
        except ProvisioningError as error:
            raise RuleBroken(str(error), field="tarball") from None
    image, _ = Image.objects.update_or_create(
        name=name, defaults={"description": description, "source": tarball, "size": os.path.getsize(tarball)}
    )
    audit_record(org=None, actor=actor, action="image.import", target=image)
    return image
