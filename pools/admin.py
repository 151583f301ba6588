from django.contrib import admin

from .models import VM, FeatureClass, VMPool


@admin.register(FeatureClass)
class FeatureClassAdmin(admin.ModelAdmin):
    list_display = ("name", "label", "weight", "urgency")


@admin.register(VMPool)
class VMPoolAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "region",
        "feature_class",
        "flavor",
        "target_ready",
        "max_concurrent_boots",
        "max_size",
        "enabled",
    )
    list_filter = ("region", "feature_class", "enabled")


@admin.register(VM)
class VMAdmin(admin.ModelAdmin):
    list_display = ("name", "pool", "state", "host_name", "ip_address", "updated_at")
    list_filter = ("pool", "state")
    search_fields = ("name", "server_id", "ip_address")
