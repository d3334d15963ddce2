"""The organization overview: the one page that reads from every app."""

from __future__ import annotations

from typing import Any

from dashboard.models import Organization
from dashboard.selectors import audit_events_of, members_of


def overview_context(org: Organization) -> dict[str, Any]:
    from sandboxes.selectors import running_of, sandbox_cards
    from volumes.selectors import overview_cards, region_usage_of

    return {
        "cards": [*sandbox_cards(org), *overview_cards(org)],
        "running": running_of(org)[:6],
        "regions": region_usage_of(org),
        "member_count": members_of(org).count(),
        "recent": audit_events_of(org)[:8],
    }
