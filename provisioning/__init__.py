"""Berth's data plane: plain Python, no Django. See ``base`` for the interface."""

from __future__ import annotations

from provisioning.base import Driver


def driver_for(kind: str, data_root: str) -> Driver:
    """The driver of one node, by the node's driver kind."""
    if kind == "local":
        from provisioning.local import LocalDriver

        return LocalDriver(data_root)
    raise ValueError(f"Unknown data-plane driver {kind!r}; the known one is 'local'")
