"""Reads for regions, nodes and volumes."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from dashboard.models import Organization
from dashboard.pagination import Page, keyset_page
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
        {"region": region, "node_capacity": region.node_capacity or 0, **rows.get(region.id, {})}
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
) -> Page[Volume]:
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
    return keyset_page(
        volumes, descending=descending, cursor=cursor, limit=limit, is_time=field == "created_at"
    )


def trash_of(org: Organization) -> QuerySet[Volume]:
    return Volume.objects.for_org(org).in_trash().select_related("region").order_by("purge_after")


def attachment_history(volume: Volume) -> QuerySet[Attachment]:
    return volume.attachments.select_related("sandbox").order_by("-attached_at")
