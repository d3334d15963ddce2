"""Placement, and the way from a Node row to its data-plane driver."""

from __future__ import annotations

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from dashboard.errors import Conflict
from provisioning import driver_for
from provisioning.base import Driver
from volumes.models import Node, Region, VolumeState


def driver_of(node: Node) -> Driver:
    return driver_for(node.driver, node.data_root)


def node_place(region: Region, capacity: int) -> Node:
    """The region's active node with the most free capacity that can still hold ``capacity``."""
    allocated = Coalesce(Sum("volumes__capacity", filter=~Q(volumes__state=VolumeState.PURGED)), 0)
    nodes = Node.objects.filter(region=region, is_active=True).annotate(allocated=allocated)
    best = max(nodes, key=lambda n: n.capacity - n.allocated, default=None)  # type: ignore[attr-defined]
    if best is None or best.capacity - best.allocated < capacity:  # type: ignore[attr-defined]
        raise Conflict(f"No node in {region.code} has room for this volume right now; try another region")
    return best
