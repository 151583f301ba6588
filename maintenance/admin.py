from django.contrib import admin

from .models import GuestCredential, MaintenanceRun, MaintenanceTask, RunItem


@admin.register(GuestCredential)
class GuestCredentialAdmin(admin.ModelAdmin):
    """Secrets are not editable here (nor shown): the credentials page encrypts
    them and audits the change."""

    list_display = ("name", "transport", "username", "password_set", "private_key_set")
    readonly_fields = ("password_set", "private_key_set")

    @admin.display(boolean=True)
    def password_set(self, obj):
        return obj.password_set

    @admin.display(boolean=True)
    def private_key_set(self, obj):
        return obj.private_key_set


@admin.register(MaintenanceTask)
class MaintenanceTaskAdmin(admin.ModelAdmin):
    list_display = ("name", "action", "schedule_kind", "enabled", "updated_at")
    list_filter = ("action", "schedule_kind", "enabled")


class RunItemInline(admin.TabularInline):
    model = RunItem
    extra = 0
    can_delete = False
    fields = ("vm_name", "status", "phase", "batch", "attempts", "note", "error")
    readonly_fields = fields


@admin.register(MaintenanceRun)
class MaintenanceRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "task", "status", "trigger", "created_at", "finished_at")
    list_filter = ("status",)
    inlines = [RunItemInline]
