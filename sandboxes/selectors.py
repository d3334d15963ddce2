"""Reads for sandboxes and their commands."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Count, F, Prefetch, Q, QuerySet

from dashboard.errors import Malformed
from dashboard.models import Organization
from dashboard.pagination import Page, keyset_page
from sandboxes.models import Image, Sandbox, SandboxState
from volumes.models import Attachment

_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}$")


def sandboxes_of(org: Organization) -> QuerySet[Sandbox]:
    """The organization's sandboxes with their mounts, in a fixed number of queries."""
    return (
        Sandbox.objects.for_org(org)
        .select_related("region", "node")
        .prefetch_related(
            Prefetch(
                "attachments",
                queryset=Attachment.objects.select_related("volume").order_by("mount_path"),
                to_attr="mounts",
            )
        )
    )


def parse_label_filter(label: str) -> tuple[str, str]:
    key, sep, value = label.partition(":")
    if not sep or not _LABEL_KEY.match(key) or "__" in key:
        raise Malformed("label must be key:value, e.g. label=team:data", field="label")
    return key, value


def sandbox_page(
    org: Organization, *, status: str = "", label: str = "", cursor: str = "", limit: int = 50
) -> Page[Sandbox]:
    """Newest first, keyset-paginated."""
    rows = sandboxes_of(org)
    if status:
        rows = rows.filter(state=status)
    if label:
        key, value = parse_label_filter(label)
        rows = rows.filter(**{f"labels__{key}": value})
    rows = rows.annotate(sort_key=F("created_at"))
    return keyset_page(rows, descending=True, cursor=cursor, limit=limit, is_time=True)


def images() -> list[str]:
    return ["host", *Image.objects.values_list("name", flat=True)]


def running_of(org: Organization) -> QuerySet[Sandbox]:
    return sandboxes_of(org).filter(state=SandboxState.RUNNING).order_by("expires_at")


def sandbox_cards(org: Organization) -> list[dict[str, Any]]:
    from django.urls import NoReverseMatch, reverse

    try:
        url = reverse("sandbox-list", args=[org.slug])
    except NoReverseMatch:
        url = "#"
    counts = Sandbox.objects.for_org(org).aggregate(
        running=Count("id", filter=Q(state=SandboxState.RUNNING)),
        starting=Count("id", filter=Q(state__in=[SandboxState.PENDING, SandboxState.STARTING])),
    )
    return [
        {
            "label": "Running sandboxes",
            "value": counts["running"],
            "note": f"{counts['starting']} starting",
            "url": url,
        }
    ]
