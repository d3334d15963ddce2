"""The admin, for support staff: every organization's volumes, deleted ones too.

Volumes are changed only through the services (which check the rules and write the audit),
so here they are read-only, nobody can delete one, and the one write is the "Restore" action.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from dashboard.admin import ReadOnlyAdmin
from dashboard.errors import BerthError
from dashboard.models import Via
from dashboard.services import Actor
from volumes import services
from volumes.models import Attachment, Node, Region, Volume, VolumeState


class NodeInline(admin.TabularInline):
    model = Node
    extra = 0


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "min_capacity", "max_capacity"]
    search_fields = ["code", "name"]
    inlines = [NodeInline]


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["name", "region", "driver", "capacity", "is_active", "data_root"]
    list_filter = ["region", "driver", "is_active"]
    search_fields = ["name", "data_root"]
    list_select_related = ["region"]


class RestoreForm(forms.Form):
    """Why, and a new slug for each volume whose slug another volume has taken meanwhile."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=500,
        help_text="Goes into the audit log, e.g. the support ticket",
    )

    def __init__(self, *args: Any, taken: list[Volume], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken = taken
        for volume in taken:
            self.fields[self.slug_field(volume)] = forms.CharField(
                label=f'New slug for "{volume.slug}" of {volume.organization}',
                max_length=30,
                help_text=f'"{volume.slug}" is now taken by another volume of {volume.organization}',
            )

    @staticmethod
    def slug_field(volume: Volume) -> str:
        return f"new_slug_{volume.pk}"

    def slug_fields(self) -> list[forms.BoundField]:
        return [self[self.slug_field(v)] for v in self.taken]


def _slug_taken(volume: Volume) -> bool:
    return (
        volume.state == VolumeState.DELETED
        and Volume.objects.for_org(volume.organization).live().filter(slug=volume.slug).exists()
    )


@admin.register(Volume)
class VolumeAdmin(ReadOnlyAdmin):
    list_display = [
        "slug",
        "organization",
        "region",
        "node",
        "capacity",
        "used",
        "state",
        "created_at",
        "deleted_at",
        "purge_after",
    ]
    list_filter = ["state", "region", "organization"]
    search_fields = ["slug", "=id", "organization__slug"]
    list_select_related = ["organization", "region", "node"]
    date_hierarchy = "created_at"
    actions = ["restore"]
    readonly_fields = [field.name for field in Volume._meta.fields]

    def has_restore_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("volumes.restore_volume")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Support staff need to see what they restore, whatever else they were granted.
        return super().has_view_permission(request, obj) or self.has_restore_permission(request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(permissions=["restore"], description="Restore selected deleted volumes")
    def restore(self, request: HttpRequest, queryset: QuerySet[Volume]) -> HttpResponse | None:
        volumes = list(
            queryset.select_related("organization", "region").order_by("organization__slug", "slug")
        )
        taken = [v for v in volumes if _slug_taken(v)]
        form = RestoreForm(request.POST if "apply" in request.POST else None, taken=taken)
        if not form.is_valid():
            return self._restore_page(request, volumes, form)
        actor = Actor(user=request.user, via=Via.ADMIN, ip=request.META.get("REMOTE_ADDR"))
        for volume in volumes:
            new_slug = form.cleaned_data.get(RestoreForm.slug_field(volume), "")
            try:
                restored = services.volume_restore(
                    volume_id=volume.pk,
                    org=None,
                    new_slug=new_slug,
                    reason=form.cleaned_data["reason"],
                    actor=actor,
                )
            except BerthError as error:
                self.message_user(
                    request, f"{volume.organization}/{volume.slug}: {error.message}", messages.ERROR
                )
            else:
                self.message_user(
                    request,
                    f'{volume.organization}/{restored.slug}: restored, available again as "{restored.slug}"',
                    messages.SUCCESS,
                )
        return None

    def _restore_page(
        self, request: HttpRequest, volumes: list[Volume], form: RestoreForm
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Restore deleted volumes",
            "opts": self.model._meta,
            "volumes": volumes,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/volumes/volume/restore.html", context)


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    """History of mounts; written only by the sandbox services."""

    list_display = ["volume", "sandbox", "mount_path", "read_only", "attached_at", "detached_at"]
    list_filter = ["read_only"]
    search_fields = ["volume__slug", "=volume__id", "=sandbox__id", "mount_path"]
    list_select_related = ["volume", "sandbox"]
    readonly_fields = [field.name for field in Attachment._meta.fields]
