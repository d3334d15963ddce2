"""Reads for regions, nodes and volumes."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from dashboard.errors import Malformed
from dashboard.models import Organization
from volumes.models import LIVE_STATES, Attachment, Region, Volume, VolumeState


def regions() -> QuerySet[Region]:
    return Region.objects.annotate(node_count=Count("nodes")).order_by("code")


def region_usage_of(org: Organization) -> list[dict[str, Any]]:
    """Per region: how much of its nodes' capacity the organization's live volumes take."""
    mine = Volume.objects.for_org(org).live()
    rows = {
        row["region"]: row
        for row in mine.values("region").annotate(
            volumes=Count("id"), provisioned=Sum("capacity"), used=Sum("used")
        )
    }
    return [
        {"region": region, "node_capacity": region.node_capacity or 0, **rows.get(region.id, {})}  # type: ignore[attr-defined]
        for region in Region.objects.annotate(node_capacity=Sum("nodes__capacity")).order_by("code")
    ]


def overview_cards(org: Organization) -> list[dict[str, Any]]:
    from django.urls import reverse

    counts = Volume.objects.for_org(org).aggregate(
        live=Count("id", filter=Q(state__in=LIVE_STATES)),
        trash=Count("id", filter=Q(state=VolumeState.DELETED)),
        provisioned=Sum("capacity", filter=Q(state__in=LIVE_STATES)),
    )
    from dashboard.units import bytes_human

    return [
        {
            "label": "Volumes",
            "value": counts["live"],
            "note": f"{bytes_human(counts['provisioned'] or 0)} provisioned",
            "url": reverse("volume-list", args=[org.slug]),
        },
        {
            "label": "In trash",
            "value": counts["trash"],
            "note": "restorable for 24 h",
            "url": reverse("volume-trash", args=[org.slug]),
        },
    ]


# --- the volume list ----------------------------------------------------------------------

SORTS = {
    "-created": ("created_at", True),
    "created": ("created_at", False),
    "slug": ("slug", False),
    "-slug": ("slug", True),
    "-capacity": ("capacity", True),
    "capacity": ("capacity", False),
    "-used": ("used", True),
    "used": ("used", False),
}
DEFAULT_SORT = "-created"


@dataclass(frozen=True)
class Page:
    items: list[Volume]
    next_cursor: str | None


def _encode(value: Any, pk: Any) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, datetime) else value, str(pk)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[Any, str]:
    try:
        value, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise Malformed("The cursor is not one this API gave out; start again without it") from None
    return value, pk


def volumes_of(org: Organization) -> QuerySet[Volume]:
    """Live volumes with what the list shows, in a fixed number of queries."""
    return (
        Volume.objects.for_org(org)
        .live()
        .select_related("region", "node")
        .prefetch_related(
            Prefetch(
                "attachments",
                queryset=Attachment.objects.live().select_related("sandbox"),
                to_attr="live_attachments",
            )
        )
    )


def volume_page(
    org: Organization,
    *,
    search: str = "",
    region: str = "",
    state: str = "",
    sort: str = DEFAULT_SORT,
    cursor: str = "",
    limit: int = 50,
) -> Page:
    """One page of the organization's live volumes, keyset-paginated so pages never shift."""
    volumes = volumes_of(org)
    if search:
        volumes = volumes.filter(Q(slug__icontains=search) | Q(description__icontains=search))
    if region:
        volumes = volumes.filter(region__code=region)
    if state:
        volumes = volumes.filter(state=state)
    field, descending = SORTS.get(sort, SORTS[DEFAULT_SORT])
    key = Coalesce(F(field), Value(-1)) if field == "used" else F(field)
    volumes = volumes.annotate(sort_key=key)
    if cursor:
        value, pk = _decode(cursor)
        if field == "created_at" and isinstance(value, str):
            value = datetime.fromisoformat(value)
        after = "lt" if descending else "gt"
        volumes = volumes.filter(
            Q(**{f"sort_key__{after}": value}) | Q(sort_key=value, **{f"id__{after}": pk})
        )
    order = ["-sort_key", "-id"] if descending else ["sort_key", "id"]
    items = list(volumes.order_by(*order)[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    next_cursor = _encode(items[-1].sort_key, items[-1].id) if more else None  # type: ignore[attr-defined]
    return Page(items=items, next_cursor=next_cursor)


def trash_of(org: Organization) -> QuerySet[Volume]:
    return Volume.objects.for_org(org).in_trash().select_related("region").order_by("purge_after")


def attachment_history(volume: Volume) -> QuerySet[Attachment]:
    return volume.attachments.select_related("sandbox").order_by("-attached_at")  # type: ignore[attr-defined,no-any-return]
