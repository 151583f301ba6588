"""The audit trail pages: every recorded change, who made it, when, from where,
with the object's state before and after."""

from django.shortcuts import get_object_or_404, render

from .links import object_url
from .listing import Column, Filter, Listing, listing_response
from .models import AuditEvent
from .roles import Role, role_required


def _distinct(field: str):
    def choices():
        values = AuditEvent.objects.order_by(field).values_list(field, flat=True).distinct()
        return [(value, value) for value in values]

    return choices


class AuditListing(Listing):
    title = "Audit trail"
    noun = "events"
    columns = [
        Column("created_at", "When", url=lambda e: e.get_absolute_url()),
        Column("actor", "Who"),
        Column("action", "What"),
        Column("object_type", "Object type"),
        Column("object_repr", "Object", url=lambda e: object_url(e.object_type, e.object_id)),
        Column("source_ip", "From"),
        Column("changes", "Before → after", sort=None, value=lambda e: e.changes()),
        Column("request_id", "Request", sort=None),
    ]
    filters = [
        Filter("action", "Action", _distinct("action")),
        Filter("object_type", "Object type", _distinct("object_type")),
    ]
    search_fields = ["actor", "object_repr", "object_id", "request_id", "action"]
    search_placeholder = "Actor, object, request id…"
    default_sort = "-created_at"
    time_field = "created_at"
    row_template = "portal/audit_row.html"
    csv_filename = "audit"

    def get_queryset(self):
        events = AuditEvent.objects.all()
        # Links from an object's page name it exactly.
        object_id = self.params.get("object_id", "")[:64]
        if object_id:
            events = events.filter(object_id=object_id)
        actor = self.params.get("actor", "")[:150]
        if actor:
            events = events.filter(actor=actor)
        return events


@role_required(Role.OPERATOR)
def audit_list(request):
    return listing_response(request, AuditListing)


@role_required(Role.OPERATOR)
def audit_detail(request, pk):
    event = get_object_or_404(AuditEvent, pk=pk)
    related = AuditEvent.objects.filter(
        object_type=event.object_type, object_id=event.object_id
    ).exclude(pk=event.pk)[:20]
    same_request = (
        AuditEvent.objects.filter(request_id=event.request_id).exclude(pk=event.pk)[:20]
        if event.request_id
        else []
    )
    context = {
        "event": event,
        "object_url": object_url(event.object_type, event.object_id),
        "related": related,
        "same_request": same_request,
    }
    return render(request, "portal/audit_detail.html", context)
