from django.contrib import admin

from .models import VM, FeatureClass, Shift, VMPool
from .services import shift_delete


@admin.register(FeatureClass)
class FeatureClassAdmin(admin.ModelAdmin):
    list_display = ("name", "label", "weight", "urgency", "cpu_cap_percent", "boost_factor")
    readonly_fields = ("flavors_applied_at", "flavors_outcome")


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


@admin.register(Shift)
class ShiftAdmin(admin.ModelAdmin):
    list_display = ("label", "pool", "weekdays", "starts_at", "ends_at", "seats", "schedule")
    list_filter = ("pool",)
    search_fields = ("label",)
    readonly_fields = ("schedule",)

    # Deleting goes through the service, so the shift's planned window goes too.
    def delete_model(self, request, obj):
        shift_delete(shift=obj, actor=request.user.get_username())

    def delete_queryset(self, request, queryset):
        for shift in queryset:
            shift_delete(shift=shift, actor=request.user.get_username())
