"""The audit trail in the ops API (read only, operators and up): every recorded
change, newest first, filtered by who, what, which object and when."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from portal.models import AuditEvent
from portal.roles import Role

from .resources import (
    DeferredJoinPagination,
    QueryFilters,
    portal_address,
    portal_page_url,
    query_filters,
)


class AuditEventSerializer(serializers.ModelSerializer):
    object_url = serializers.SerializerMethodField(
        help_text="The object's page in the portal; empty when it has none."
    )
    url = serializers.SerializerMethodField(help_text="The event's page in the portal.")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "object_url",
            "before",
            "after",
            "request_id",
            "source_ip",
            "url",
        ]
        read_only_fields = fields

    def get_object_url(self, event: AuditEvent) -> str:
        return portal_page_url(event.object_type, event.object_id)

    def get_url(self, event: AuditEvent) -> str:
        return portal_address(event.get_absolute_url())


class AuditFilters(QueryFilters):
    actor = serializers.CharField(
        required=False, max_length=150, help_text="Who: a user name, or a task's name."
    )
    action = serializers.CharField(
        required=False, max_length=64, help_text="What, exactly (e.g. `vmpool.update`)."
    )
    object_type = serializers.CharField(
        required=False, max_length=64, help_text="The object's kind, `app_label.model`."
    )
    object_id = serializers.CharField(required=False, max_length=64, help_text="The object's id.")
    since = serializers.DateTimeField(
        required=False,
        help_text="Events at or after this moment (ISO 8601; without a zone: the portal's).",
    )
    until = serializers.DateTimeField(
        required=False,
        help_text="Events before this moment (ISO 8601; without a zone: the portal's).",
    )

    def validate(self, attrs):
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and since >= until:
            raise serializers.ValidationError({"until": "Must be later than `since`."})
        return attrs


@extend_schema_view(
    list=extend_schema(summary="List audit events, newest first", parameters=[AuditFilters]),
    retrieve=extend_schema(summary="Read one audit event"),
)
class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail: who (a user or a task) did what to which object, with its
    state before and after and the request or task that did it."""

    read_role = Role.OPERATOR
    serializer_class = AuditEventSerializer
    # A late page skips hundreds of thousands of events: over their ids only.
    pagination_class = DeferredJoinPagination

    def get_queryset(self):
        events = AuditEvent.objects.order_by("-created_at", "-pk")
        if self.action != "list":
            return events
        wanted = query_filters(AuditFilters, self.request)
        for name in ("actor", "action", "object_type", "object_id"):
            if name in wanted:
                events = events.filter(**{name: wanted[name]})
        if "since" in wanted:
            events = events.filter(created_at__gte=wanted["since"])
        if "until" in wanted:
            events = events.filter(created_at__lt=wanted["until"])
        return events
