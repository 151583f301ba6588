"""Template pieces shared by the detail pages."""

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from portal.models import AuditEvent
from portal.roles import Role, has_role

register = template.Library()


@register.inclusion_tag("includes/recent_events.html", takes_context=True)
def recent_events(context, obj, limit: int = 10):
    """The object's last audit entries, newest first, with a link to all of them
    on the audit trail page (for the roles that may read it)."""
    object_type, object_id = obj._meta.label_lower, str(obj.pk)
    events = list(AuditEvent.objects.filter(object_type=object_type, object_id=object_id)[:limit])
    user = context["request"].user
    all_url = ""
    if has_role(user, Role.OPERATOR):
        query = urlencode({"object_type": object_type, "object_id": object_id})
        all_url = f"{reverse('portal:audit-list')}?{query}"
    return {"events": events, "all_url": all_url}
