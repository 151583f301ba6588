from django.contrib import admin

from .models import Allocator, AllocatorPool, Binding, DesktopSession, Site, Terminal


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "label")


@admin.register(Terminal)
class TerminalAdmin(admin.ModelAdmin):
    list_display = ("serial", "site", "seat", "status", "enabled", "last_seen_at")
    list_filter = ("status", "enabled", "site")
    search_fields = ("serial", "mac_address", "seat")


class AllocatorPoolInline(admin.TabularInline):
    model = AllocatorPool
    extra = 1


@admin.register(Allocator)
class AllocatorAdmin(admin.ModelAdmin):
    list_display = ("name", "priority", "is_default", "binding_policy", "enabled")
    inlines = [AllocatorPoolInline]
    filter_horizontal = ("groups", "sites")


@admin.register(Binding)
class BindingAdmin(admin.ModelAdmin):
    list_display = (
        "vm",
        "kind",
        "user",
        "seat",
        "terminal",
        "allocator",
        "created_at",
        "released_at",
    )
    list_filter = ("kind", "allocator")


@admin.register(DesktopSession)
class DesktopSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "terminal", "vm", "started_at", "ended_at")
