"""The organization overview: the one page that reads from every app."""

from __future__ import annotations

from typing import Any

from dashboard.models import Organization
from dashboard.selectors import audit_events_of, members_of


def overview_context(org: Organization) -> dict[str, Any]:
    from volumes.selectors import overview_cards, region_usage_of

    return {
        "cards": overview_cards(org),
        "regions": region_usage_of(org),
        "member_count": members_of(org).count(),
        "recent": audit_events_of(org)[:8],
    }
