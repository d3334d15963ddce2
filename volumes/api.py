from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from volumes.selectors import regions

router = Router(tags=["regions"])


class RegionOut(Schema):
    code: str
    name: str
    min_capacity: int
    max_capacity: int
    nodes: int


class RegionList(Schema):
    items: list[RegionOut]


@router.get("/regions", response=RegionList, summary="Regions with their capacity limits")
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
