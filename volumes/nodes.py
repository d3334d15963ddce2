"""Placement, and the way from a Node row to its data-plane driver.

Reads and writes of files happen on the node that holds them: ``node_call`` sends one
driver call to the node's queue and waits for the answer through the result backend.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from dashboard.errors import BerthError, Conflict, NotFound, RuleBroken
from provisioning import driver_for
from provisioning.base import Driver, FileEntry, ProvisioningError
from volumes.models import Node, Region, VolumeState

# The driver calls that ``node_call`` may make: reads and writes of files and logs.
NODE_CALLS = {
    "volume_list_dir", "volume_read_file",
    "sandbox_list_dir", "sandbox_read_file", "sandbox_write_file", "sandbox_read_log",
}  # fmt: skip
NODE_CALL_TIMEOUT = 30.0
_ERRORS: dict[str, type[BerthError]] = {
    "file_not_found": NotFound,
    "path_refused": RuleBroken,
    "sandbox_gone": Conflict,
    "volume_not_found": NotFound,
}


def enqueue_on_node(task: Any, node: Node, *args: Any) -> None:
    """Send work to the node's queue once the transaction that asked for it has committed.

    Outside a transaction (in a task, say) it is sent at once.
    """
    transaction.on_commit(lambda: task.apply_async(args=args, queue=node.queue))


def driver_of(node: Node) -> Driver:
    return driver_for(node.driver, node.data_root)


def node_place(region: Region, capacity: int) -> Node:
    """The region's active node with the most free capacity that can still hold ``capacity``."""
    allocated = Coalesce(Sum("volumes__capacity", filter=~Q(volumes__state=VolumeState.PURGED)), 0)
    nodes = Node.objects.filter(region=region, is_active=True).annotate(allocated=allocated)
    best = max(nodes, key=lambda n: n.capacity - n.allocated, default=None)
    if best is None or best.capacity - best.allocated < capacity:
        raise Conflict(f"No node in {region.code} has room for this volume right now; try another region")
    return best


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, FileEntry):
        return {**dataclasses.asdict(value), "modified_at": value.modified_at.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value


def node_call_run(*, node_id: int, method: str, args: list[Any]) -> dict[str, Any]:
    """Run on the node: one driver call, its answer or its error as JSON."""
    if method not in NODE_CALLS:
        return {"error": f"{method} is not a node call", "code": "provisioning_error"}
    driver = driver_of(Node.objects.get(id=node_id))
    try:
        return {"value": _encode(getattr(driver, method)(*[_decode(arg) for arg in args]))}
    except ProvisioningError as error:
        return {"error": str(error), "code": error.code}


def node_call(node: Node, method: str, *args: Any, timeout: float = NODE_CALL_TIMEOUT) -> Any:
    """Make one driver call on ``node`` and wait for it; a data-plane error becomes a BerthError."""
    from volumes.tasks import node_call as node_call_task

    result = node_call_task.apply_async(args=(node.id, method, [_encode(a) for a in args]), queue=node.queue)
    answer: dict[str, Any] = result.get(timeout=timeout)
    if "error" in answer:
        raise _ERRORS.get(answer["code"], Conflict)(answer["error"], field="path")
    return _decode(answer["value"])
