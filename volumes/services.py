"""Writes for regions, nodes and volumes."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from volumes.models import GB, Node, Region

SEEDED_REGIONS = {"ord": "Chicago", "ams": "Amsterdam", "iad": "Ashburn", "lax": "Los Angeles"}


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
