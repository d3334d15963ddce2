"""The volume pages. One template per page serves the page and its htmx fragments.

Pages link to a volume by its id, which never changes (a restore may rename it, and a volume
may be called "new"); every page also accepts the slug.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from dashboard.access import OrgRequest, org_view, render_page
from dashboard.errors import BerthError, Malformed, NotFound
from dashboard.models import Role
from dashboard.services import Actor
from dashboard.views import FORM_ERROR, _after_write
from volumes import selectors, services
from volumes.browse import entries_in, parent_path, path_crumbs
from volumes.forms import (
    VolumeCreateForm,
    VolumeDeleteForm,
    VolumeEditForm,
    VolumeExtendForm,
    VolumeRestoreForm,
    labels_text,
)
from volumes.models import LIVE_STATES, Region, Volume
from volumes.templatetags.volume_tags import duration_human

PAGE_SIZE = 25
POLL_DONE = 286  # htmx stops polling on this status
SORT_COLUMNS = {"slug": "Volume", "capacity": "Capacity", "used": "Used", "created": "Created"}


def _detail_url(request: OrgRequest, volume: Volume) -> str:
    return reverse("volume-detail", args=[request.org.slug, volume.id])


def _volume(request: OrgRequest, id_or_slug: str) -> Volume:
    try:
        return services.volume_get(org=request.org, id_or_slug=id_or_slug)
    except NotFound:
        raise Http404("No such volume") from None


# --- the list -----------------------------------------------------------------------------


@require_GET
@org_view()
def volume_list(request: OrgRequest) -> HttpResponse:
    filters = {
        "search": request.GET.get("search", "").strip(),
        "region": request.GET.get("region", ""),
        "state": request.GET.get("state", ""),
        "sort": request.GET.get("sort", selectors.DEFAULT_SORT),
    }
    if filters["sort"] not in selectors.SORTS:
        filters["sort"] = selectors.DEFAULT_SORT
    cursor = request.GET.get("cursor", "")
    try:
        page = selectors.volume_page(request.org, **filters, cursor=cursor, limit=PAGE_SIZE)
    except Malformed as error:
        messages.error(request, error.message)
        cursor = ""
        page = selectors.volume_page(request.org, **filters, limit=PAGE_SIZE)
    polling = any(volume.in_flight for volume in page.items)
    context = {
        **filters,
        "page": page,
        "cursor": cursor,
        "polling": polling,
        "regions": Region.objects.order_by("code"),
        "states": [(state.value, state.label) for state in LIVE_STATES],
        "columns": _sort_columns(filters),
        "next_url": _query(filters, cursor=page.next_cursor) if page.next_cursor else "",
        "first_url": _query(filters) if cursor else "",
        "can_write": request.membership.allows(Role.MEMBER),
    }
    # The table polls itself while a row is in flight; its last answer stops the polling.
    status = POLL_DONE if request.htmx.trigger == "volume-table" and not polling else 200
    return render_page(request, "volumes/list.html", context, fragment="table", status=status)


def _query(filters: dict[str, str], **changes: str | None) -> str:
    params = {key: value for key, value in {**filters, **changes}.items() if value}
    if params.get("sort") == selectors.DEFAULT_SORT:
        del params["sort"]
    return "?" + urlencode(params)


def _sort_columns(filters: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each sortable column's link (toggling its direction) and arrow."""
    current = filters["sort"]
    columns = {}
    for key, label in SORT_COLUMNS.items():
        descending_first = key != "slug"
        if current.lstrip("-") == key:
            new = key if current.startswith("-") else f"-{key}"
            arrow = "↓" if current.startswith("-") else "↑"
        else:
            new, arrow = (f"-{key}" if descending_first else key), ""
        columns[key] = {"label": label, "url": _query(filters, sort=new), "arrow": arrow}
    return columns


# --- create -------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@org_view(Role.MEMBER)
def volume_create(request: OrgRequest) -> HttpResponse:
    if request.method == "GET":
        form = VolumeCreateForm(
            initial={"region": Region.objects.order_by("code").values_list("code", flat=True).first()}
        )
        return _create_page(request, form)
    form = VolumeCreateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            volume = services.volume_create(
                org=request.org,
                slug=data["slug"],
                region=data["region"].code,
                capacity=data["capacity"],
                labels=data["labels"],
                description=data["description"],
                actor=Actor.from_request(request),
            )
        except BerthError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            return _after_write(request, _detail_url(request, volume))
    return _create_page(request, form, status=FORM_ERROR)


@require_POST
@org_view(Role.MEMBER)
def volume_validate(request: OrgRequest) -> HttpResponse:
    """The create form's messages while the user types; fields left empty are not scolded yet."""
    form = VolumeCreateForm(request.POST)
    form.is_valid()
    for name in list(form.errors):
        if name in form.fields and name != "capacity" and not (request.POST.get(name) or "").strip():
            del form.errors[name]
    return _create_page(request, form, live=True)


def _create_page(
    request: OrgRequest, form: VolumeCreateForm, *, status: int = 200, live: bool = False
) -> HttpResponse:
    context = {"form": form, "regions": Region.objects.order_by("code"), "live": live}
    return render_page(request, "volumes/create.html", context, fragment="form", status=status)


# --- detail and its actions ---------------------------------------------------------------


@require_GET
@org_view()
def volume_detail(request: OrgRequest, id_or_slug: str) -> HttpResponse:
    volume = _volume(request, id_or_slug)
    if request.htmx and not request.htmx.history_restore_request:
        return _status(request, volume)
    return _detail_page(request, volume)


def _status(request: OrgRequest, volume: Volume, **context: Any) -> HttpResponse:
    """The status part, which polls itself while the volume is in flight; 286 ends the polling."""
    status = context.pop("status", None) or (200 if volume.in_flight else POLL_DONE)
    response = render(
        request, "volumes/detail.html#status", _detail_context(request, volume, **context), status=status
    )
    if status == POLL_DONE:
        trigger_client_event(response, "volume-settled")  # the files panel reloads on it
    return response


def _detail_context(request: OrgRequest, volume: Volume, **extra: Any) -> dict[str, Any]:
    return {
        "volume": volume,
        "can_write": request.membership.allows(Role.MEMBER),
        "extend_form": VolumeExtendForm(),
        "edit_form": VolumeEditForm(
            initial={"description": volume.description, "labels": labels_text(volume.labels)}
        ),
        "delete_form": VolumeDeleteForm(slug=volume.slug),
        **extra,
    }


def _detail_page(request: OrgRequest, volume: Volume, *, status: int = 200, **extra: Any) -> HttpResponse:
    context = _detail_context(
        request,
        volume,
        attachments=selectors.attachment_history(volume),
        live_attachment=services.live_attachment_of(volume),
        **extra,
    )
    return render(request, "volumes/detail.html", context, status=status)


def _form_error(request: OrgRequest, volume: Volume, fragment: str, **forms: Any) -> HttpResponse:
    """Re-render one form of the detail page with its messages: the fragment for htmx."""
    if request.htmx:
        context = _detail_context(
            request, volume, live_attachment=services.live_attachment_of(volume), **forms
        )
        return render(request, f"volumes/detail.html#{fragment}", context, status=FORM_ERROR)
    return _detail_page(request, volume, status=FORM_ERROR, **forms)


@require_POST
@org_view(Role.MEMBER)
def volume_edit(request: OrgRequest, id_or_slug: str) -> HttpResponse:
    volume = _volume(request, id_or_slug)
    form = VolumeEditForm(request.POST)
    if form.is_valid():
        try:
            services.volume_update(
                org=request.org,
                id_or_slug=str(volume.id),
                labels=form.cleaned_data["labels"],
                description=form.cleaned_data["description"],
                actor=Actor.from_request(request),
            )
        except BerthError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, "Saved the labels and description")
            return _after_write(request, _detail_url(request, volume))
    return _form_error(request, volume, "edit-form", edit_form=form)


@require_POST
@org_view(Role.MEMBER)
def volume_extend(request: OrgRequest, id_or_slug: str) -> HttpResponse:
    volume = _volume(request, id_or_slug)
    form = VolumeExtendForm(request.POST)
    if form.is_valid():
        try:
            services.volume_update(
                org=request.org,
                id_or_slug=str(volume.id),
                capacity=form.cleaned_data["capacity"],
                actor=Actor.from_request(request),
            )
        except BerthError as error:
            form.add_error("capacity", error.message)
        else:
            return _after_write(request, _detail_url(request, volume))
    if request.htmx:
        return _status(request, volume, extend_form=form, status=FORM_ERROR)
    return _detail_page(request, volume, status=FORM_ERROR, extend_form=form)


@require_POST
@org_view(Role.MEMBER)
def volume_delete(request: OrgRequest, id_or_slug: str) -> HttpResponse:
    volume = _volume(request, id_or_slug)
    form = VolumeDeleteForm(request.POST, slug=volume.slug)
    if form.is_valid():
        try:
            services.volume_delete(
                org=request.org, id_or_slug=str(volume.id), actor=Actor.from_request(request)
            )
        except BerthError as error:
            form.add_error(None, error.message)
        else:
            grace = duration_human(settings.VOLUME_PURGE_GRACE)
            messages.success(
                request,
                f'Deleted volume "{volume.slug}". It stays in Trash for {grace}, '
                "where an organization admin can restore it",
            )
            return _after_write(request, reverse("volume-list", args=[request.org.slug]))
    return _form_error(request, volume, "delete-form", delete_form=form)


@require_POST
@org_view(Role.MEMBER)
def volume_retry(request: OrgRequest, id_or_slug: str) -> HttpResponse:
    volume = _volume(request, id_or_slug)
    try:
        services.volume_retry(org=request.org, id_or_slug=str(volume.id), actor=Actor.from_request(request))
    except BerthError as error:
        messages.error(request, error.message)
    return _after_write(request, _detail_url(request, volume))


# --- files --------------------------------------------------------------------------------


@require_GET
@org_view()
def volume_files(request: OrgRequest, id_or_slug: str) -> HttpResponse:
    volume = _volume(request, id_or_slug)
    file = request.GET.get("file", "")
    path = file or request.GET.get("path", "") or "/"
    context: dict[str, Any] = {
        "volume": volume,
        "path": path,
        "crumbs": path_crumbs(path if not file else parent_path(path)),
    }
    try:
        context["listing"] = _listing(
            services.volume_browse(
                org=request.org, id_or_slug=str(volume.id), path=path, kind="file" if file else "dir"
            )
        )
    except NotFound as error:
        if error.field != "path":
            raise Http404("No such volume") from None
        context["error"] = error.message
    except BerthError as error:
        context["error"] = error.message
    except CeleryTimeout:
        context["error"] = f"Node {volume.node.name} did not answer in time; try again in a moment"
    if file:
        context["parent"] = parent_path(path)
    return render_page(request, "volumes/files.html", context, fragment="files")


def _listing(answer: dict[str, Any]) -> dict[str, Any]:
    """The node's answer, with each entry's full path and its time as a datetime."""
    entries_in(answer["path"], answer.get("entries", []))
    return answer


# --- trash --------------------------------------------------------------------------------


@require_GET
@org_view()
def volume_trash(request: OrgRequest) -> HttpResponse:
    return _trash_page(request)


def _trash_page(
    request: OrgRequest, *, status: int = 200, failed: Any = None, form: VolumeRestoreForm | None = None
) -> HttpResponse:
    context = {
        "volumes": selectors.trash_of(request.org),
        "can_restore": request.membership.allows(Role.ADMIN),
        "failed": str(failed) if failed else "",
        "form": form,
        "grace": duration_human(settings.VOLUME_PURGE_GRACE),
    }
    return render_page(request, "volumes/trash.html", context, fragment="table", status=status)


@require_POST
@org_view(Role.ADMIN)
def volume_restore(request: OrgRequest, volume_id: Any) -> HttpResponse:
    form = VolumeRestoreForm(request.POST)
    new_slug = form.data.get("new_slug", "").strip()
    try:
        volume = services.volume_restore(
            volume_id=volume_id, org=request.org, new_slug=new_slug, actor=Actor.from_request(request)
        )
    except NotFound:
        raise Http404("No such volume") from None
    except BerthError as error:
        form.is_valid()
        form.add_error("new_slug" if error.field in ("new_slug", "slug") else None, error.message)
        return _trash_page(request, status=FORM_ERROR, failed=volume_id, form=form)
    messages.success(request, f'Restored volume "{volume.slug}"')
    return _after_write(request, _detail_url(request, volume))
