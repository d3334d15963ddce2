from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from dashboard.models import Organization


def organizations(request: HttpRequest) -> dict[str, Any]:
    """The organizations the user can switch between, for the sidebar's switcher."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "current_org": getattr(request, "org", None),
        "current_membership": getattr(request, "membership", None),
        "my_orgs": lambda: list(Organization.objects.for_user(request.user)),
    }
