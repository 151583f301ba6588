from django.contrib import admin

from .models import (
    Allocator,
    AllocatorPool,
    Binding,
    DesktopSession,
    DirectoryProfile,
    Site,
    Terminal,
)


class ReadOnly:
    """Shown here for reference only: these objects are changed on the portal's own
    pages and through the ops API, whose services validate and audit every change."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
    pass


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "label")


@admin.register(Terminal)
class TerminalAdmin(ReadOnlyAdmin):
    list_display = ("serial", "site", "seat", "status", "enabled", "last_seen_at")
    list_filter = ("status", "enabled", "site")
    search_fields = ("serial", "mac_address", "seat")


class AllocatorPoolInline(ReadOnly, admin.TabularInline):
    model = AllocatorPool
    extra = 0


@admin.register(Allocator)
class AllocatorAdmin(ReadOnlyAdmin):
    list_display = ("name", "priority", "is_default", "binding_policy", "enabled")
    inlines = [AllocatorPoolInline]


@admin.register(Binding)
class BindingAdmin(ReadOnlyAdmin):
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
class DesktopSessionAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "terminal", "vm", "started_at", "ended_at", "ended_reason")


@admin.register(DirectoryProfile)
class DirectoryProfileAdmin(ReadOnlyAdmin):
    list_display = ("user", "dn", "synced_at")
    search_fields = ("user__username", "dn")
