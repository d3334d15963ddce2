"""One real object of every kind an organization owns, keyed by the route parameter that names it.

The access tests fill routes with these, so that a 404 for a stranger proves the lookup is
scoped rather than that the object does not exist. Each app adds its kinds here.
"""

from __future__ import annotations

from typing import Any

from dashboard.models import Organization, Role, Via
from dashboard.services import Actor, token_create


def objects_of(org: Organization, admin: Any) -> dict[str, str]:
    token, _ = token_create(org=org, name="walk", role=Role.MEMBER, expires_at=None, actor=Actor(via=Via.CLI))
    return {"token_id": str(token.id)}
