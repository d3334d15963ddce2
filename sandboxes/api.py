"""Sandboxes over the REST API: create (optionally waiting until running), list, kill, exec, files.

Input is strict like the volume endpoints: unknown fields and wrong JSON types are a 400;
a broken rule (a mount path, a region, the attachment rule) is a 422 or 409 with its message.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Field, Header, Query, Router, Schema, Status
from ninja.decorators import decorate_view
from pydantic import ConfigDict, StrictBool, StrictInt, StrictStr, WithJsonSchema

from dashboard.api import api_actor, api_token
from dashboard.idempotency import idempotent
from dashboard.models import Role
from sandboxes import selectors, services
from sandboxes.models import Command, Sandbox, SandboxState
from volumes.api import IDEMPOTENCY_KEY_PATTERN, errors

router = Router(tags=["sandboxes"])
WAIT_LIMIT = 120.0
# What selectors.parse_label_filter accepts, published (only: pydantic's regex engine has no
# look-ahead, and parse_label_filter gives the better message): empty, or key:value with a
# label key (no "__") before the first colon.
LABEL_FILTER_PATTERN = r"^(?:|(?![^:]*__)[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}:.*)$"


class MountSpec(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    slug: str | None = Field(None, description="A volume slug; created on first use if it does not exist")
    # strict=False: the body reaches pydantic already parsed from JSON, where a strict UUID field
    # refuses every string, so mounting by id was always a 400.
    id: UUID | None = Field(None, strict=False, description="Or a volume id")
    capacity: StrictInt | StrictStr | None = Field(
        None, description="Size of a new volume: bytes or 2GB, 1GiB"
    )
    sizeGb: StrictInt | None = Field(None, description="Size of a new volume in whole GB")
    read_only: bool = False


class SandboxIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    region: str
    image: str = "host"
    volumes: dict[str, StrictStr | MountSpec] = Field(
        default_factory=dict,
        description="Mount path → volume slug or id, or {slug, capacity | sizeGb, read_only}",
    )
    env: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    lifetime: StrictInt | StrictStr | None = Field(
        None, description="Seconds, or 30m, 2h; default 30 min, max 24 h"
    )
    allow_net: bool = False
    memory_limit: StrictInt | StrictStr | None = Field(None, description="Bytes or 512MiB")


class MountOut(Schema):
    volume_id: UUID
    volume: str
    path: str
    read_only: bool
    detached_at: datetime | None


class SandboxOut(Schema):
    id: UUID
    name: str
    status: SandboxState
    region: str
    image: str
    mounts: list[MountOut]
    env: dict[str, str]
    labels: dict[str, str]
    allow_net: bool
    memory_limit: int | None
    lifetime: int = Field(description="Seconds")
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    expires_at: datetime | None
    error: str


class SandboxPage(Schema):
    items: list[SandboxOut]
    next_cursor: str | None


class ExecIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    cmd: StrictStr | list[StrictStr] = Field(description="A shell string, or an argv list")
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    # A plain (strict) float, not StrictInt | StrictFloat: on a union pydantic cannot place the
    # bounds, and they went missing from the published schema. Strict floats still take ints.
    timeout: float = Field(60, gt=0, le=3600, description="Seconds")
    background: StrictBool = False


class CommandOut(Schema):
    id: int
    cmd: str | list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool
    duration: float | None
    background: bool
    pid: int | None


class LogOut(Schema):
    log: str


class FileEntryOut(Schema):
    name: str
    kind: str
    size: int
    modified_at: datetime


class FileList(Schema):
    items: list[FileEntryOut]


class FileWritten(Schema):
    path: str
    size: int


class ImageList(Schema):
    items: list[str]


def sandbox_out(sandbox: Sandbox, mounts: list[Any] | None = None) -> dict[str, Any]:
    if mounts is None:
        mounts = list(sandbox.attachments.select_related("volume").order_by("mount_path"))
    return {
        "id": sandbox.id,
        "name": sandbox.name,
        "status": sandbox.state,
        "region": sandbox.region.code,
        "image": sandbox.image,
        "mounts": [
            {
                "volume_id": a.volume_id,
                "volume": a.volume.slug,
                "path": a.mount_path,
                "read_only": a.read_only,
                "detached_at": a.detached_at,
            }
            for a in mounts
        ],
        "env": sandbox.env,
        "labels": sandbox.labels,
        "allow_net": sandbox.allow_net,
        "memory_limit": sandbox.memory_limit,
        "lifetime": int(sandbox.lifetime.total_seconds()),
        "created_at": sandbox.created_at,
        "started_at": sandbox.started_at,
        "stopped_at": sandbox.stopped_at,
        "expires_at": sandbox.expires_at,
        "error": sandbox.error,
    }


def command_out(command: Command) -> dict[str, Any]:
    return {
        "id": command.id, "cmd": command.cmd, "exit_code": command.exit_code, "stdout": command.stdout,
        "stderr": command.stderr, "truncated": command.truncated, "timed_out": command.timed_out,
        "duration": command.duration, "background": command.background, "pid": command.pid,
    }  # fmt: skip


def _mount_value(spec: str | MountSpec) -> Any:
    if isinstance(spec, str):
        return spec
    value = spec.model_dump(exclude_none=True)
    if "id" in value:
        value["id"] = str(value["id"])
    return value


def _wait_until_settled(sandbox: Sandbox) -> Sandbox:
    deadline = time.monotonic() + WAIT_LIMIT
    while sandbox.state in (SandboxState.PENDING, SandboxState.STARTING) and time.monotonic() < deadline:
        time.sleep(0.1)
        sandbox.refresh_from_db()
    return sandbox


@router.post(
    "/sandboxes",
    response={201: SandboxOut, **errors(400, 401, 403, 404, 409, 422)},
    summary="Create a sandbox with volumes mounted",
    description="With `wait=true` the answer comes once the sandbox is running (or has failed). "
    "`Idempotency-Key` makes retries safe.",
)
@decorate_view(idempotent)
def sandbox_create(
    request: HttpRequest,
    payload: SandboxIn,
    wait: bool = Query(False, description="Answer once the sandbox is running"),
    idempotency_key: str | None = Header(
        None, alias="Idempotency-Key", min_length=1, max_length=255, pattern=IDEMPOTENCY_KEY_PATTERN
    ),
) -> Status:
    actor = api_actor(request, Role.MEMBER)
    sandbox = services.sandbox_create(
        org=api_token(request).organization,
        region=payload.region,
        image=payload.image,
        volumes={path: _mount_value(spec) for path, spec in payload.volumes.items()},
        env=payload.env,
        labels=payload.labels,
        lifetime=payload.lifetime,
        allow_net=payload.allow_net,
        memory_limit=payload.memory_limit,
        actor=actor,
    )
    if wait:
        sandbox = _wait_until_settled(sandbox)
    return Status(201, sandbox_out(sandbox))


@router.get(
    "/sandboxes", response={200: SandboxPage, **errors(400, 401, 422)}, summary="List sandboxes, newest first"
)
def sandbox_list(
    request: HttpRequest,
    label: Annotated[str, WithJsonSchema({"type": "string", "pattern": LABEL_FILTER_PATTERN})] = Query(
        "", description="key:value"
    ),
    status: SandboxState | None = Query(None),  # noqa: B008
    limit: int | None = Query(None, ge=1, le=200),
    cursor: str = Query(""),
) -> dict[str, Any]:
    page = selectors.sandbox_page(
        api_token(request).organization, status=status or "", label=label, cursor=cursor,
        limit=limit or settings.API_PAGE_SIZE,
    )  # fmt: skip
    return {"items": [sandbox_out(s, s.mounts) for s in page.items], "next_cursor": page.next_cursor}  # type: ignore[attr-defined]


@router.get("/sandboxes/{sandbox_id}", response={200: SandboxOut, **errors(401, 404)}, summary="One sandbox")
def sandbox_detail(request: HttpRequest, sandbox_id: str) -> dict[str, Any]:
    return sandbox_out(services.sandbox_get(org=api_token(request).organization, sandbox_id=sandbox_id))


@router.delete(
    "/sandboxes/{sandbox_id}",
    response={200: SandboxOut, **errors(401, 403, 404)},
    summary="Kill a sandbox: every process ends and its volumes are released",
)
def sandbox_kill(request: HttpRequest, sandbox_id: str) -> dict[str, Any]:
    actor = api_actor(request, Role.MEMBER)
    org = api_token(request).organization
    sandbox = services.sandbox_kill(org=org, sandbox_id=sandbox_id, actor=actor)
    return sandbox_out(sandbox)


@router.post(
    "/sandboxes/{sandbox_id}/exec",
    response={200: CommandOut, **errors(400, 401, 403, 404, 409, 422)},
    summary="Run a command; with background=true, answer at once with its process id",
)
def sandbox_exec(request: HttpRequest, sandbox_id: str, payload: ExecIn) -> dict[str, Any]:
    actor = api_actor(request, Role.MEMBER)
    command = services.sandbox_exec(
        org=api_token(request).organization, sandbox_id=sandbox_id, cmd=payload.cmd, cwd=payload.cwd,
        env=payload.env, timeout=float(payload.timeout), background=payload.background, actor=actor,
    )  # fmt: skip
    return command_out(command)


@router.get(
    "/sandboxes/{sandbox_id}/commands/{command_id}/log",
    response={200: LogOut, **errors(400, 401, 404, 409)},
    summary="What a background command has printed so far",
)
def command_log(request: HttpRequest, sandbox_id: str, command_id: int) -> dict[str, Any]:
    org = api_token(request).organization
    return {"log": services.command_log(org=org, sandbox_id=sandbox_id, command_id=command_id)}


@router.get(
    "/sandboxes/{sandbox_id}/files",
    response={200: FileList, **errors(400, 401, 404, 409, 422)},
    summary="Read a file (bytes), or with list=true list a directory",
    openapi_extra={
        "responses": {"200": {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}}
    },
)
def file_read(
    request: HttpRequest, sandbox_id: str, path: str = Query(..., min_length=1), list: bool = Query(False)
) -> Any:
    org = api_token(request).organization
    if list:
        return {"items": services.sandbox_file_list(org=org, sandbox_id=sandbox_id, path=path)}
    data = services.sandbox_file_read(org=org, sandbox_id=sandbox_id, path=path)
    return HttpResponse(data, content_type="application/octet-stream")


@router.put(
    "/sandboxes/{sandbox_id}/files",
    response={200: FileWritten, **errors(400, 401, 403, 404, 409, 422)},
    summary="Write a file: the request body is its bytes; missing directories are made",
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
)
def file_write(request: HttpRequest, sandbox_id: str, path: str = Query(..., min_length=1)) -> dict[str, Any]:
    actor = api_actor(request, Role.MEMBER)
    org = api_token(request).organization
    services.sandbox_file_write(org=org, sandbox_id=sandbox_id, path=path, data=request.body, actor=actor)
    return {"path": path, "size": len(request.body)}


@router.get(
    "/images", response={200: ImageList, **errors(401)}, tags=["images"], summary="Images to start from"
)
def image_list(request: HttpRequest) -> dict[str, Any]:
    return {"items": selectors.images()}
