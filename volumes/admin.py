from __future__ import annotations

from django.contrib import admin

from volumes.models import Node, Region


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
