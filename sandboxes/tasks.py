"""Celery tasks for sandboxes: thin callers of the services, on the node's own queue."""

from __future__ import annotations

from celery import shared_task

from sandboxes import services
from volumes.models import Node


@shared_task(acks_late=True)
def sandbox_start(sandbox_id: str) -> str:
    return services.sandbox_start_run(sandbox_id=sandbox_id)


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=2, max_retries=5)
def sandbox_stop(sandbox_id: str) -> str:
    return services.sandbox_stop_run(sandbox_id=sandbox_id)


@shared_task(acks_late=True)
def command_run(command_id: int, env: dict[str, str], timeout: float) -> dict[str, object]:
    return services.command_run_on_node(command_id=command_id, env=env, timeout=timeout)


@shared_task(acks_late=True)
def node_sandboxes_reconcile(node_id: int) -> list[str]:
    return services.node_sandboxes_reconcile_run(node_id=node_id)


# --- beat ---------------------------------------------------------------------------------


@shared_task
def reap_sweep() -> list[str]:
    return services.sandbox_reap()


@shared_task
def sandbox_reconcile_sweep() -> int:
    for node in Node.objects.filter(is_active=True):
        node_sandboxes_reconcile.apply_async(args=(node.id,), queue=node.queue)
    return Node.objects.count()
