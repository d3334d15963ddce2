from __future__ import annotations

from typing import Any

from django.contrib import admin

from dashboard.models import ApiToken, AuditEvent, Membership, Organization


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only their services write: look, never add, edit or delete here."""

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "organization__slug"]
    list_select_related = ["user", "organization"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made on the organization's page; here they can be looked at and revoked."""

    list_display = [
        "name",
        "prefix",
        "organization",
        "role",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["role", "organization"]
    search_fields = ["name", "prefix", "organization__slug"]
    list_select_related = ["organization"]
    readonly_fields = ["prefix", "digest", "created_by", "created_at", "last_used_at"]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit log is append-only: readable here, never edited or deleted."""

    list_display = ["created_at", "organization", "actor", "action", "target", "via", "ip"]
    list_filter = ["via", "action", "organization"]
    search_fields = ["actor", "action", "target", "target_id"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]
