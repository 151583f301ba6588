from django.contrib import admin

from .models import VM, FeatureClass, Shift, VMPool
from .services import shift_create, shift_delete, shift_update


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

    # Saving and deleting go through the services, so changes are audited like the
    # planner page's and a deleted shift's planned window goes too.
    def save_model(self, request, obj, form, change):
        actor = request.user.get_username()
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        if change:
            shift_update(shift=Shift.objects.get(pk=obj.pk), fields=fields, actor=actor)
        else:
            created = shift_create(
                pool=obj.pool,
                label=obj.label,
                weekdays=obj.weekdays,
                starts_at=obj.starts_at,
                ends_at=obj.ends_at,
                seats=obj.seats,
                actor=actor,
            )
            obj.pk = created.pk

    def delete_model(self, request, obj):
        shift_delete(shift=obj, actor=request.user.get_username())

    def delete_queryset(self, request, queryset):
        for shift in queryset:
            shift_delete(shift=shift, actor=request.user.get_username())
