"""Celery tasks: thin callers of the services. Node tasks are sent to ``node.<name>`` queues."""

from __future__ import annotations

from celery import shared_task

from volumes import services
from volumes.models import Node


@shared_task(acks_late=True)
def volume_provision(volume_id: str) -> str:
    return services.volume_provision_run(volume_id=volume_id)


@shared_task(acks_late=True)
def volume_extend(volume_id: str, capacity: int) -> str:
    return services.volume_extend_run(volume_id=volume_id, capacity=capacity)


@shared_task(acks_late=True)
def volume_purge(volume_id: str, generation: int) -> str:
    return services.volume_purge_run(volume_id=volume_id, generation=generation)


@shared_task(acks_late=True)
def volume_usage_refresh(node_id: int, volume_ids: list[str] | None = None) -> int:
    return services.volume_usage_refresh_run(node_id=node_id, volume_ids=volume_ids)


@shared_task(acks_late=True)
def node_reconcile(node_id: int) -> list[str]:
    return services.node_reconcile_run(node_id=node_id)


@shared_task(acks_late=True)
def node_call(node_id: int, method: str, args: list[object]) -> dict[str, object]:
    """One driver call on this node (file reads and writes), answered through the result backend."""
    from volumes.nodes import node_call_run

    return node_call_run(node_id=node_id, method=method, args=args)


# --- beat ---------------------------------------------------------------------------------


@shared_task
def purge_sweep() -> list[str]:
    return services.volume_purge_sweep()


@shared_task
def usage_sweep() -> int:
    for node in Node.objects.filter(is_active=True):
        volume_usage_refresh.apply_async(args=(node.id,), queue=node.queue)
    return Node.objects.count()


@shared_task
def reconcile_sweep() -> int:
    for node in Node.objects.filter(is_active=True):
        node_reconcile.apply_async(args=(node.id,), queue=node.queue)
    return Node.objects.count()
