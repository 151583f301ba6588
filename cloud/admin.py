"""Admin pages of the cloud layer, including the simulated cloud's fault injection
(fail a host by setting it down; set a region's boot failure and API fault rates)."""

from django.contrib import admin

from .models import Host, Region, SimHost, SimServer, SimulatedRegion


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ("name", "label", "driver", "enabled", "hosts_synced_at")


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ("name", "region", "state", "vcpus_used", "vcpus", "memory_mb_used", "memory_mb")
    list_filter = ("region", "state")
    search_fields = ("name",)


@admin.register(SimulatedRegion)
class SimulatedRegionAdmin(admin.ModelAdmin):
    list_display = (
        "region",
        "boot_seconds_min",
        "boot_seconds_max",
        "boot_failure_rate",
        "api_latency_ms",
        "api_failure_rate",
    )


@admin.register(SimHost)
class SimHostAdmin(admin.ModelAdmin):
    list_display = ("name", "region", "state", "vcpus", "memory_mb", "address")
    list_filter = ("region", "state")
    list_editable = ("state",)


@admin.register(SimServer)
class SimServerAdmin(admin.ModelAdmin):
    list_display = ("name", "region", "host", "status", "ip_address", "created_at")
    list_filter = ("region", "status")
    search_fields = ("name", "id")
