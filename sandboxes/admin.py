from __future__ import annotations

from typing import Any

from django.contrib import admin

from sandboxes.models import Command, Image, Sandbox


class CommandInline(admin.TabularInline):
    model = Command
    extra = 0
    fields = ("created_at", "cmd", "exit_code", "duration", "background", "pid")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Sandbox)
class SandboxAdmin(admin.ModelAdmin):
    """Sandboxes are driven by their services; here support can look, not change."""

    list_display = ["__str__", "organization", "region", "node", "image", "state", "created_at", "expires_at"]
    list_filter = ["state", "region", "organization"]
    search_fields = ["id", "organization__slug", "image"]
    list_select_related = ["organization", "region", "node"]
    readonly_fields = [f.name for f in Sandbox._meta.fields]
    inlines = [CommandInline]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Command)
class CommandAdmin(admin.ModelAdmin):
    list_display = ["id", "sandbox", "created_at", "exit_code", "duration", "background"]
    search_fields = ["sandbox__id"]
    list_filter = ["background", "timed_out"]
    readonly_fields = [f.name for f in Command._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    """Images are imported with ``manage.py image_import``, which unpacks them on every node."""

    list_display = ["name", "description", "size", "created_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["source", "size", "created_at"]

    def has_add_permission(self, request: Any) -> bool:
        return False
