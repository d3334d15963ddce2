"""The sandbox pages. One template per page serves the page and its htmx fragments.

Exec, file writes and kill need the member role; viewers read everything, files included.
Another organization's sandbox is a 404 on every page and fragment.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import urlencode

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.contrib import messages
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from dashboard.access import OrgRequest, org_view, render_page
from dashboard.errors import BerthError, Malformed, NotFound
from dashboard.models import Role
from dashboard.services import Actor
from dashboard.views import FORM_ERROR, _after_write
from sandboxes import forms, selectors, services
from sandboxes.models import Command, Image, Sandbox, SandboxState
from volumes.browse import entries_in, parent_path, path_crumbs
from volumes.models import Attachment, Region, Volume
from volumes.templatetags.volume_tags import duration_human

PAGE_SIZE = 50
POLL_DONE = 286  # htmx stops polling on this status
IN_FLIGHT = (SandboxState.PENDING, SandboxState.STARTING, SandboxState.STOPPING)
SHOW_LIMIT = 256 * 1024  # the most of a file the page shows


def _sandbox(request: OrgRequest, sandbox_id: str) -> Sandbox:
    try:
        return services.sandbox_get(org=request.org, sandbox_id=sandbox_id)
    except NotFound:
        raise Http404("No such sandbox") from None


def _detail_url(request: OrgRequest, sandbox: Sandbox) -> str:
    return reverse("sandbox-detail", args=[request.org.slug, sandbox.id])


# --- the list -----------------------------------------------------------------------------


@require_GET
@org_view()
def sandbox_list(request: OrgRequest) -> HttpResponse:
    if request.GET.get("row"):  # one in-flight row polling itself; 286 once it has settled
        sandbox = (
            selectors.sandboxes_of(request.org).filter(id=_sandbox(request, request.GET["row"]).id).get()
        )
        code = 200 if sandbox.state in IN_FLIGHT else POLL_DONE
        return render(
            request, "sandboxes/list.html#row", {"sb": sandbox, "in_flight": IN_FLIGHT}, status=code
        )
    status, label = request.GET.get("status", ""), request.GET.get("label", "").strip()
    if status not in SandboxState.values:
        status = ""
    cursor = request.GET.get("cursor", "")
    try:
        page = selectors.sandbox_page(request.org, status=status, label=label, cursor=cursor, limit=PAGE_SIZE)
    except Malformed as error:
        messages.error(request, error.message)
        cursor = label = ""
        page = selectors.sandbox_page(request.org, status=status, limit=PAGE_SIZE)
    filters = {"status": status, "label": label}
    context = {
        **filters,
        "page": page,
        "states": SandboxState.choices,
        "in_flight": IN_FLIGHT,
        "next_url": _query(filters, cursor=page.next_cursor) if page.next_cursor else "",
        "first_url": _query(filters) if cursor else "",
        "can_write": request.membership.allows(Role.MEMBER),
    }
    return render_page(request, "sandboxes/list.html", context, fragment="table")


def _query(filters: dict[str, str], **changes: str | None) -> str:
    return "?" + urlencode({key: value for key, value in {**filters, **changes}.items() if value})


# --- create -------------------------------------------------------------------------------


@require_GET
@org_view()
def image_list(request: OrgRequest) -> HttpResponse:
    """The images sandboxes can start from: the node's own, and those imported from tarballs."""
    return render_page(request, "sandboxes/images.html", {"images": Image.objects.all()})


@require_http_methods(["GET", "POST"])
@org_view(Role.MEMBER)
def sandbox_create(request: OrgRequest) -> HttpResponse:
    if request.method == "GET":
        data = request.GET if "region" in request.GET else None
        if request.htmx.target == "mount-rows":  # the region changed: its volumes, same rows
            form = forms.SandboxCreateForm(data)
            return _create_page(request, form, _rows(data), fragment="mounts", checked=False)
        initial = {"region": _first_region(), "lifetime": forms.DEFAULT_LIFETIME, "image": "host"}
        form = forms.SandboxCreateForm(data, initial=initial)
        return _create_page(request, form, _rows(data), checked=False)
    added = request.POST.get("add_row", "")
    if added in forms.ROW_KINDS:  # the no-JS "add a row": the same form, one more row, nothing created
        data = forms.with_one_more_row(request.POST, added)
        return _create_page(request, forms.SandboxCreateForm(data), _rows(data), checked=False)
    form, rows = forms.SandboxCreateForm(request.POST), _rows(request.POST)
    arguments = _create_arguments(form, rows)
    if arguments is not None:
        try:
            sandbox = services.sandbox_create(org=request.org, actor=Actor.from_request(request), **arguments)
        except BerthError as error:
            _add_error(form, rows, error)
        else:
            return _after_write(request, _detail_url(request, sandbox))
    return _create_page(request, form, rows, status=FORM_ERROR)


def _first_region() -> str | None:
    return Region.objects.order_by("code").values_list("code", flat=True).first()


def _rows(data: Any) -> dict[str, Any]:
    return {kind: forms.rows(kind, data) for kind in forms.ROW_KINDS}


def _create_arguments(form: forms.SandboxCreateForm, rows: dict[str, Any]) -> dict[str, Any] | None:
    """The service's arguments, or None when the form itself has errors to show."""
    valid = form.is_valid()
    valid = all([rows[kind].is_valid() for kind in forms.ROW_KINDS]) and valid
    if not valid:
        return None
    volumes = forms.mounts(rows["mounts"])
    env, labels = forms.pairs(rows["env"], "Variable"), forms.pairs(rows["labels"], "Label")
    if any(f.errors for kind in forms.ROW_KINDS for f in rows[kind].forms):
        return None
    data = form.cleaned_data
    return {
        "region": data["region"],
        "image": data["image"],
        "volumes": volumes,
        "env": env,
        "labels": labels,
        "lifetime": data["lifetime"],
        "allow_net": data["allow_net"],
        "memory_limit": data["memory_limit"].strip() or None,
    }


def _add_error(form: forms.SandboxCreateForm, rows: dict[str, Any], error: BerthError) -> None:
    """A rule the service refused, shown where it belongs: a field, a group of rows, or the top."""
    if error.field in ("volumes", "env", "labels"):
        rows["mounts" if error.field == "volumes" else str(error.field)].problem = error.message
    elif error.field in form.fields:
        form.add_error(error.field, error.message)
    elif error.field in ("slug", "capacity"):  # a volume created on first use
        rows["mounts"].problem = error.message
    else:
        form.add_error(None, error.message)


def _create_page(
    request: OrgRequest,
    form: forms.SandboxCreateForm,
    rows: dict[str, Any],
    *,
    status: int = 200,
    fragment: str = "form",
    checked: bool = True,
) -> HttpResponse:
    region = form["region"].value() or _first_region()
    volumes = (
        Volume.objects.for_org(request.org)
        .live()
        .filter(region__code=region)
        .annotate(in_use=Exists(Attachment.objects.live().filter(volume=OuterRef("pk"), read_only=False)))
        .order_by("slug")
    )
    context = {
        "form": form,
        **rows,
        "volumes": volumes,
        "region": region,
        "checked": checked,
        "regions": Region.objects.order_by("code"),
        "max_mounts": settings.MAX_MOUNTS_PER_SANDBOX,
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, f"sandboxes/create.html#{fragment}", context, status=status)
    return render(request, "sandboxes/create.html", context, status=status)


# --- detail -------------------------------------------------------------------------------


@require_GET
@org_view()
def sandbox_detail(request: OrgRequest, sandbox_id: str) -> HttpResponse:
    sandbox = _sandbox(request, sandbox_id)
    if request.htmx and not request.htmx.history_restore_request:
        # The live part polls itself while the sandbox is in flight; 286 ends the polling.
        status = 200 if sandbox.state in IN_FLIGHT else POLL_DONE
        return render(
            request, "sandboxes/detail.html#status", _detail_context(request, sandbox), status=status
        )
    return _detail_page(request, sandbox)


def _detail_context(request: OrgRequest, sandbox: Sandbox, **extra: Any) -> dict[str, Any]:
    mounts = list(sandbox.attachments.select_related("volume").order_by("mount_path"))
    return {
        "sandbox": sandbox,
        "mounts": mounts,
        "in_flight": sandbox.state in IN_FLIGHT,
        "can_write": request.membership.allows(Role.MEMBER),
        "commands": sandbox.commands.select_related("created_by")[:50],
        "exec_form": forms.ExecForm(),
        "upload_form": forms.UploadForm(initial={"path": _home(mounts) + "/"}),
        "files_path": _home(mounts),
        "lifetime": duration_human(sandbox.lifetime),
        **extra,
    }


def _home(mounts: list[Attachment]) -> str:
    """Where the file browser opens: the first volume's mount path, else /."""
    return mounts[0].mount_path if mounts else "/"


def _detail_page(request: OrgRequest, sandbox: Sandbox, *, status: int = 200, **extra: Any) -> HttpResponse:
    return render(request, "sandboxes/detail.html", _detail_context(request, sandbox, **extra), status=status)


# --- exec ---------------------------------------------------------------------------------


@require_POST
@org_view(Role.MEMBER)
def sandbox_exec(request: OrgRequest, sandbox_id: str) -> HttpResponse:
    sandbox = _sandbox(request, sandbox_id)
    form = forms.ExecForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            command = services.sandbox_exec(
                org=request.org,
                sandbox_id=sandbox.id,
                cmd=data["cmd"],
                cwd=data["cwd"].strip() or None,
                timeout=data["timeout"] or 60,
                background=data["background"],
                actor=Actor.from_request(request),
            )
        except BerthError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        except CeleryTimeout:
            form.add_error(None, f"Node {sandbox.node.name} did not answer in time; try again in a moment")
        else:
            if request.htmx:  # the output goes on top of the history
                return render(request, "sandboxes/detail.html#command", {"sandbox": sandbox, "c": command})
            return redirect(_detail_url(request, sandbox) + "#history")
    if request.htmx:
        context = _detail_context(request, sandbox, exec_form=form)
        response = render(request, "sandboxes/detail.html#console", context, status=FORM_ERROR)
        return reswap(retarget(response, "#exec-form"), "outerHTML")
    return _detail_page(request, sandbox, status=FORM_ERROR, exec_form=form)


@require_GET
@org_view()
def sandbox_command_log(request: OrgRequest, sandbox_id: str, command_id: int) -> HttpResponse:
    sandbox = _sandbox(request, sandbox_id)
    command = Command.objects.filter(sandbox=sandbox, id=command_id).first()
    if command is None:
        raise Http404("No such command")
    context: dict[str, Any] = {"sandbox": sandbox, "c": command}
    try:
        context["log"] = services.command_log(org=request.org, sandbox_id=sandbox.id, command_id=command.id)
    except NotFound as error:
        context["error"] = error.message
    except BerthError as error:
        context["error"] = f"{error.message}: the log can be read only while the sandbox runs"
    except CeleryTimeout:
        context["error"] = f"Node {sandbox.node.name} did not answer in time; try again in a moment"
    return render_page(request, "sandboxes/log.html", context, fragment="log")


# --- files --------------------------------------------------------------------------------


@require_GET
@org_view()
def sandbox_files(request: OrgRequest, sandbox_id: str) -> HttpResponse:
    sandbox = _sandbox(request, sandbox_id)
    file = request.GET.get("file", "").strip()
    path = posixpath.normpath(file or request.GET.get("path", "").strip() or "/")
    context: dict[str, Any] = {"sandbox": sandbox, "path": path, "file": bool(file)}
    context["crumbs"] = path_crumbs(parent_path(path) if file else path)
    context["parent"] = parent_path(path)
    try:
        if file:
            context.update(
                _shown(services.sandbox_file_read(org=request.org, sandbox_id=sandbox.id, path=path))
            )
        else:
            context["entries"] = entries_in(
                path, services.sandbox_file_list(org=request.org, sandbox_id=sandbox.id, path=path)
            )
    except BerthError as error:
        if error.field != "path" and isinstance(error, NotFound):
            raise Http404("No such sandbox") from None
        context["error"] = error.message
    except CeleryTimeout:
        context["error"] = f"Node {sandbox.node.name} did not answer in time; try again in a moment"
    return render_page(request, "sandboxes/files.html", context, fragment="files")


def _shown(data: bytes) -> dict[str, Any]:
    """A file as the page shows it: its text (the start of it), or a note that it is binary."""
    try:
        text = data[:SHOW_LIMIT].decode("utf-8")
    except UnicodeDecodeError:
        return {"size": len(data), "binary": True}
    return {"size": len(data), "text": text, "truncated": len(data) > SHOW_LIMIT}


@require_POST
@org_view(Role.MEMBER)
def sandbox_file_upload(request: OrgRequest, sandbox_id: str) -> HttpResponse:
    sandbox = _sandbox(request, sandbox_id)
    form = forms.UploadForm(request.POST, request.FILES)
    if form.is_valid():
        path, data = form.cleaned_data["path"], form.payload()
        try:
            services.sandbox_file_write(
                org=request.org,
                sandbox_id=sandbox.id,
                path=path,
                data=data,
                actor=Actor.from_request(request),
            )
        except BerthError as error:
            form.add_error("path" if error.field == "path" else None, error.message)
        except CeleryTimeout:
            form.add_error(None, f"Node {sandbox.node.name} did not answer in time; try again in a moment")
        else:
            return _after_upload(request, sandbox, path, len(data))
    if request.htmx:
        context = _detail_context(request, sandbox, upload_form=form)
        return render(request, "sandboxes/detail.html#upload", context, status=FORM_ERROR)
    return _detail_page(request, sandbox, status=FORM_ERROR, upload_form=form)


def _after_upload(request: OrgRequest, sandbox: Sandbox, path: str, size: int) -> HttpResponse:
    """Show the directory the file went into, with the new file in it."""
    note = f"Wrote {path} ({size:,} bytes)"
    if not request.htmx:
        messages.success(request, note)
        return redirect(_detail_url(request, sandbox) + "#files")
    folder = parent_path(path)
    context: dict[str, Any] = {
        "sandbox": sandbox,
        "path": folder,
        "note": note,
        "crumbs": path_crumbs(folder),
    }
    try:
        context["entries"] = entries_in(
            folder, services.sandbox_file_list(org=request.org, sandbox_id=sandbox.id, path=folder)
        )
    except (BerthError, CeleryTimeout):
        context["entries"] = []
    response = render(request, "sandboxes/files.html#files", context)
    return reswap(retarget(response, "#sandbox-files"), "innerHTML")


# --- kill ---------------------------------------------------------------------------------


@require_POST
@org_view(Role.MEMBER)
def sandbox_kill(request: OrgRequest, sandbox_id: str) -> HttpResponse:
    sandbox = _sandbox(request, sandbox_id)
    try:
        services.sandbox_kill(org=request.org, sandbox_id=sandbox.id, actor=Actor.from_request(request))
    except BerthError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Stopping {sandbox}; its volumes are released once the node confirms")
    return _after_write(request, _detail_url(request, sandbox))
