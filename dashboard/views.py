from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from dashboard import health, selectors, services
from dashboard.access import OrgRequest, org_view, render_page
from dashboard.errors import BerthError
from dashboard.forms import MemberAddForm, MemberRoleForm, TokenCreateForm
from dashboard.models import Role, Via
from dashboard.overview import overview_context

# Form errors answer 422 so that tests and scripts can tell them apart from success;
# htmx is configured (templates/base.html) to swap 422 responses like 200 ones.
FORM_ERROR = 422


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    org = selectors.first_org_of(request.user)
    if org is None:
        return render(request, "dashboard/no_org.html")
    return redirect("overview", org_slug=org.slug)


@require_GET
@org_view()
def overview(request: OrgRequest) -> HttpResponse:
    return render_page(request, "dashboard/overview.html", overview_context(request.org))


@require_GET
@org_view()
def members(request: OrgRequest) -> HttpResponse:
    return _members_page(request, MemberAddForm())


def _members_page(request: OrgRequest, form: MemberAddForm, status: int = 200) -> HttpResponse:
    context = {
        "members": selectors.members_of(request.org),
        "form": form,
        "roles": Role.choices,
        "can_manage": request.membership.allows(Role.ADMIN),
    }
    return render_page(request, "dashboard/members.html", context, fragment="add-form", status=status)


@require_POST
@org_view(Role.ADMIN)
def member_add(request: OrgRequest) -> HttpResponse:
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            services.member_add(
                org=request.org,
                username=form.cleaned_data["username"],
                role=form.cleaned_data["role"],
                actor=services.Actor.from_request(request),
            )
        except BerthError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            return _after_write(request, reverse("members", args=[request.org.slug]))
    return _members_page(request, form, status=FORM_ERROR)


@require_POST
@org_view(Role.ADMIN)
def member_role(request: OrgRequest, membership_id: int) -> HttpResponse:
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles admin, member or viewer")
    else:
        _try(
            request, services.member_role_change, membership_id=membership_id, role=form.cleaned_data["role"]
        )
    return _after_write(request, reverse("members", args=[request.org.slug]))


@require_POST
@org_view(Role.ADMIN)
def member_remove(request: OrgRequest, membership_id: int) -> HttpResponse:
    _try(request, services.member_remove, membership_id=membership_id)
    return _after_write(request, reverse("members", args=[request.org.slug]))


@require_GET
@org_view(Role.ADMIN)
def tokens(request: OrgRequest) -> HttpResponse:
    return _tokens_page(request, TokenCreateForm())


def _tokens_page(
    request: OrgRequest, form: TokenCreateForm, *, secret: str | None = None, status: int = 200
) -> HttpResponse:
    context = {"tokens": selectors.tokens_of(request.org), "form": form, "secret": secret}
    return render(request, "dashboard/tokens.html", context, status=status)


@require_POST
@org_view(Role.ADMIN)
def token_create(request: OrgRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST)
    if form.is_valid():
        try:
            _token, secret = services.token_create(
                org=request.org,
                name=form.cleaned_data["name"],
                role=form.cleaned_data["role"],
                expires_at=form.cleaned_data["expires_at"],
                actor=services.Actor.from_request(request),
            )
        except BerthError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            # The secret is shown in this one response and never again.
            return _tokens_page(request, TokenCreateForm(), secret=secret)
    return _tokens_page(request, form, status=FORM_ERROR)


@require_POST
@org_view(Role.ADMIN)
def token_revoke(request: OrgRequest, token_id: int) -> HttpResponse:
    _try(request, services.token_revoke, token_id=token_id)
    return _after_write(request, reverse("tokens", args=[request.org.slug]))


@require_GET
@org_view()
def activity(request: OrgRequest) -> HttpResponse:
    action = request.GET.get("action", "")
    page = Paginator(selectors.audit_events_of(request.org, action=action), 50).get_page(
        request.GET.get("page")
    )
    context = {"page": page, "action": action}
    return render_page(request, "dashboard/activity.html", context, fragment="events")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = health.check()
    status = 200 if report["database"]["ok"] and report["redis"]["ok"] else 503
    return JsonResponse(report, status=status)


def _try(request: OrgRequest, service: object, **kwargs: object) -> bool:
    """Call an org-scoped service; a domain error becomes a message on the next page."""
    try:
        service(org=request.org, actor=services.Actor.from_request(request, Via.WEB), **kwargs)  # type: ignore[operator]
    except BerthError as error:
        messages.error(request, error.message)
        return False
    return True


def _after_write(request: OrgRequest, url: str) -> HttpResponse:
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)
