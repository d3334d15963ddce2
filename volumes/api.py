"""Volumes and regions over the REST API.

Input is strict: a body field the endpoint does not know, or a value of the wrong JSON type
(``"capacity": true``, ``"slug": 5``, a label that is not a string), is a 400 ``malformed``
naming the field, and nothing runs. A well-formed value that breaks a rule (a slug with
capitals, a capacity outside the region's limits, an unknown region) is a 422 with the
rule's own message. Every lookup goes through the caller's organization, so another team's
volume is the same 404, with the same message, as one that never existed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Header, Query, Router, Schema, Status
from ninja.decorators import decorate_view
from pydantic import ConfigDict, StrictInt, StrictStr

from dashboard.api import api_actor, api_token
from dashboard.idempotency import idempotent
from dashboard.models import Role
from volumes import services
from volumes.models import Attachment, Volume, VolumeState
from volumes.selectors import regions, volume_page

router = Router()


# --- schemas --------------------------------------------------------------------------------


class ErrorBody(Schema):
    code: str = Field(description="Stable, machine-readable: malformed, not_found, conflict, invalid, …")
    message: str = Field(description="What went wrong, for a person")
    field: str | None = Field(None, description="The input field the message is about, when there is one")
    details: list[dict[str, Any]] | None = Field(None, description="For malformed input: every problem")


class ErrorOut(Schema):
    error: ErrorBody


# What dashboard.idempotency accepts as a key, published so a schema-valid key is never refused:
# 1-255 printable ASCII characters (no surrounding spaces, which HTTP would strip).
IDEMPOTENCY_KEY_PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"


def errors(*codes: int) -> dict[int, type[Schema]]:
    """The error responses an operation may give, so the published schema lists them.

    Every operation may also answer 429 once its token passes ``API_RATE_LIMIT``.
    """
    return dict.fromkeys((*codes, 429), ErrorOut)


class RegionOut(Schema):
    code: str
    name: str
    min_capacity: int
    max_capacity: int
    nodes: int


class RegionList(Schema):
    items: list[RegionOut]


Capacity = StrictInt | StrictStr


class VolumeIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    slug: str = Field(description="1–30 lowercase letters, digits, _ or -, starting with a letter or digit")
    region: str = Field(description="A region code, such as ord")
    capacity: Capacity | None = Field(
        None, description="Bytes, or a size such as 2GB (×1000) or 1GiB (×1024); default 1 GB"
    )
    labels: dict[str, str] | None = None
    description: str = Field("", max_length=1000)


class VolumePatch(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    labels: dict[str, str] | None = Field(None, description="Replaces all labels")
    description: str | None = Field(None, max_length=1000)
    capacity: Capacity | None = Field(
        None, description="Grow the volume (never shrink) to this size; refused while it is attached"
    )


class AttachedTo(Schema):
    sandbox_id: UUID
    mount_path: str
    read_only: bool


class VolumeOut(Schema):
    id: UUID
    slug: str
    region: str = Field(description="The region code")
    capacity: int = Field(description="Bytes")
    resizing_to: int | None = Field(description="Bytes, while a grow is in flight")
    used: int | None = Field(description="Bytes, as last measured on the node; null until measured")
    used_at: datetime | None
    status: VolumeState
    labels: dict[str, str]
    description: str
    created_at: datetime
    attached_to: list[AttachedTo] = Field(description="The sandboxes that have it mounted now")
    error: str = Field(description="Why it is in error; empty otherwise")


class VolumePage(Schema):
    items: list[VolumeOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last")


class VolumeDeleted(Schema):
    id: UUID
    status: Literal["deleted"]
    purge_after: datetime = Field(description="Restorable by support until then; purged soon after")


def volume_out(volume: Volume, attachments: list[Attachment]) -> dict[str, Any]:
    return {
        "id": volume.id,
        "slug": volume.slug,
        "region": volume.region.code,
        "capacity": volume.capacity,
        "resizing_to": volume.resizing_to,
        "used": volume.used,
        "used_at": volume.used_at,
        "status": volume.state,
        "labels": volume.labels,
        "description": volume.description,
        "created_at": volume.created_at,
        "attached_to": [
            {"sandbox_id": a.sandbox_id, "mount_path": a.mount_path, "read_only": a.read_only}
            for a in attachments
        ],
        "error": volume.error if volume.state == VolumeState.ERROR else "",
    }


def _one(volume: Volume) -> dict[str, Any]:
    return volume_out(volume, list(Attachment.objects.live().filter(volume=volume).order_by("attached_at")))


# --- regions --------------------------------------------------------------------------------


@router.get(
    "/regions",
    response={200: RegionList, **errors(401)},
    tags=["regions"],
    summary="Regions with their capacity limits",
)
def region_list(request: HttpRequest) -> dict[str, object]:
    items = [
        RegionOut(
            code=r.code,
            name=r.name,
            min_capacity=r.min_capacity,
            max_capacity=r.max_capacity,
            nodes=r.node_count,  # type: ignore[attr-defined]
        )
        for r in regions()
    ]
    return {"items": items}


# --- volumes --------------------------------------------------------------------------------


@router.post(
    "/volumes",
    response={201: VolumeOut, **errors(400, 401, 403, 409, 422)},
    tags=["volumes"],
    summary="Create a volume",
    description="Send `Idempotency-Key` to make retries safe: a retry with the same key and body gets "
    "the first answer; the same key with another body is a 422 `idempotency_key_reused`.",
)
@decorate_view(idempotent)
def volume_create(
    request: HttpRequest,
    payload: VolumeIn,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Makes retries safe; see above",
    ),
) -> Status:
    actor = api_actor(request, Role.MEMBER)
    volume = services.volume_create(
        org=api_token(request).organization,
        slug=payload.slug,
        region=payload.region,
        capacity=payload.capacity,
        labels=payload.labels,
        description=payload.description,
        actor=actor,
    )
    return Status(201, volume_out(volume, []))


@router.get(
    "/volumes",
    response={200: VolumePage, **errors(400, 401, 422)},
    tags=["volumes"],
    summary="List volumes, newest first",
)
def volume_list(
    request: HttpRequest,
    search: str = Query("", description="Part of the slug or description"),
    region: str = Query("", description="A region code"),
    state: Literal["creating", "available", "error"] | None = Query(None),
    limit: int | None = Query(None, ge=1, le=200, description="1–200; default 50"),
    cursor: str = Query("", description="next_cursor of the previous page"),
) -> dict[str, Any]:
    page = volume_page(
        api_token(request).organization,
        search=search,
        region=region,
        state=state or "",
        cursor=cursor,
        limit=limit or settings.API_PAGE_SIZE,
    )
    return {
        "items": [volume_out(v, v.live_attachments) for v in page.items],  # type: ignore[attr-defined]
        "next_cursor": page.next_cursor,
    }


@router.get(
    "/volumes/{id_or_slug}",
    response={200: VolumeOut, **errors(401, 404, 422)},
    tags=["volumes"],
    summary="One volume, by id or slug",
)
def volume_detail(request: HttpRequest, id_or_slug: str) -> dict[str, Any]:
    return _one(services.volume_get(org=api_token(request).organization, id_or_slug=id_or_slug))


@router.patch(
    "/volumes/{id_or_slug}",
    response={200: VolumeOut, **errors(400, 401, 403, 404, 409, 422)},
    tags=["volumes"],
    summary="Change labels or description, or grow the volume",
)
def volume_update(request: HttpRequest, id_or_slug: str, payload: VolumePatch) -> dict[str, Any]:
    actor = api_actor(request, Role.MEMBER)
    volume = services.volume_update(
        org=api_token(request).organization,
        id_or_slug=id_or_slug,
        labels=payload.labels,
        description=payload.description,
        capacity=payload.capacity,
        actor=actor,
    )
    return _one(volume)


@router.delete(
    "/volumes/{id_or_slug}",
    response={200: VolumeDeleted, **errors(401, 403, 404, 409, 422)},
    tags=["volumes"],
    summary="Delete a volume: its slug is freed at once, its data kept for the grace period",
)
def volume_delete(request: HttpRequest, id_or_slug: str) -> dict[str, Any]:
    actor = api_actor(request, Role.MEMBER)
    volume = services.volume_delete(org=api_token(request).organization, id_or_slug=id_or_slug, actor=actor)
    return {"id": volume.id, "status": "deleted", "purge_after": volume.purge_after}
