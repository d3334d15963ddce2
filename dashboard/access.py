"""Who may see an organization's pages: the one place that decides it for every page.

A page of an organization that the user is not a member of is a 404, never a 403, so that
nobody can learn which organizations exist. A member whose role is too low gets a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails

from dashboard.models import Membership, Organization, Role


class HtmxRequest(HttpRequest):
    htmx: HtmxDetails


class OrgRequest(HtmxRequest):
    org: Organization
    membership: Membership


View = Callable[..., HttpResponse]


def org_view(role: str = Role.VIEWER) -> Callable[[View], View]:
    """Resolve ``org_slug`` to the user's organization and require at least ``role`` in it."""

    def decorate(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: OrgRequest, org_slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = (
                Membership.objects.select_related("organization")
                .filter(user=cast(User, request.user), organization__slug=org_slug)
                .first()
            )
            if membership is None:
                raise Http404("No such organization")
            if not membership.allows(role):
                raise PermissionDenied(f"This needs the {role} role; you are a {membership.role}")
            request.org = membership.organization
            request.membership = membership
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def render_page(
    request: HtmxRequest,
    template: str,
    context: dict[str, Any],
    *,
    fragment: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render the whole page, or only ``fragment`` of the same template for an htmx request.

    One template serves both, so the page and its fragment can never drift apart. History
    restores ask for the whole page.
    """
    name = template
    if fragment and request.htmx and not request.htmx.history_restore_request:
        name = f"{template}#{fragment}"
    return render(request, name, context, status=status)
