"""The ``local`` data-plane driver: ext4 volume images and bubblewrap sandboxes."""

from __future__ import annotations

from provisioning.local.driver import LocalDriver

__all__ = ["LocalDriver"]
