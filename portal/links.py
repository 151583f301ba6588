"""Where each kind of object has its page, so the audit trail and other lists can
link any object they name by type and id."""

from django.urls import NoReverseMatch, reverse

# The audit trail's object types (app_label.model) and their detail pages.
DETAIL_PAGES = {
    "allocation.allocator": "allocation:allocator-edit",
    "allocation.binding": "allocation:binding-detail",
    "allocation.terminal": "allocation:terminal-detail",
    "cloud.host": "pools:host-edit",
    "cloud.region": "pools:region-edit",
    "maintenance.guestcredential": "maintenance:credential-edit",
    "maintenance.maintenancerun": "maintenance:run-detail",
    "maintenance.maintenancetask": "maintenance:task-detail",
    "monitoring.alert": "monitoring:alert-detail",
    "monitoring.incident": "monitoring:incident-detail",
    "pools.featureclass": "pools:featureclass-edit",
    "pools.vm": "pools:vm-detail",
    "pools.vmpool": "pools:pool-detail",
}


def object_url(object_type: str, object_id: str) -> str:
    """The object's page, or "" when it has none (or the id is not a number)."""
    name = DETAIL_PAGES.get(object_type)
    if not name or not str(object_id).isdigit():
        return ""
    try:
        return reverse(name, args=[int(object_id)])
    except NoReverseMatch:
        return ""
