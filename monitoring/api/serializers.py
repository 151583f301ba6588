"""Serializers of the monitoring ops API."""

from rest_framework import serializers

from ..alert_notifications import alert_url
from ..choices import AlertKind, AlertSeverity, AlertStatus
from ..models import Alert, Incident, IncidentEvent


class AlertSerializer(serializers.ModelSerializer):
    firing = serializers.SerializerMethodField(
        help_text="Whether the condition held at the last evaluation."
    )
    url = serializers.SerializerMethodField(help_text="The alert's page in the portal.")

    class Meta:
        model = Alert
        fields = [
            "id",
            "kind",
            "key",
            "severity",
            "status",
            "message",
            "firing",
            "opened_at",
            "last_seen_at",
            "cleared_at",
            "acknowledged_at",
            "acknowledged_by",
            "closed_at",
            "closed_by",
            "notified_at",
            "notify_error",
            "incident",
            "url",
        ]
        read_only_fields = fields

    def get_firing(self, alert: Alert) -> bool:
        return alert.cleared_at is None and alert.status != AlertStatus.CLOSED

    def get_url(self, alert: Alert) -> str:
        return alert_url(alert)


def _choice_list(choices):
    return serializers.ListField(
        child=serializers.ChoiceField(choices=choices), required=False, default=list
    )


class AlertQuerySerializer(serializers.Serializer):
    """The list's filters; each takes one value or several, comma-separated."""

    status = _choice_list(AlertStatus.choices)
    kind = _choice_list(AlertKind.choices)
    severity = _choice_list(AlertSeverity.choices)

    def to_internal_value(self, data):
        split = {
            name: [v for value in data.getlist(name) for v in value.split(",") if v]
            for name in ("status", "kind", "severity")
            if name in data
        }
        return super().to_internal_value(split)


class IncidentEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidentEvent
        fields = ["at", "message", "data"]
        read_only_fields = fields


class IncidentSwapSerializer(serializers.Serializer):
    """A user moved off the failed host."""

    user = serializers.CharField(source="binding.user.username", default="")
    old_vm = serializers.CharField(source="old_vm.name")
    new_vm = serializers.CharField(source="new_vm.name", default=None)
    status = serializers.CharField()
    seconds = serializers.FloatField(allow_null=True)


class IncidentSerializer(serializers.ModelSerializer):
    region = serializers.CharField(source="region.name", default=None)
    host = serializers.CharField(source="host.name", default=None)
    recovery_seconds = serializers.FloatField(allow_null=True, read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id",
            "kind",
            "title",
            "status",
            "region",
            "host",
            "opened_at",
            "recovered_at",
            "recovery_seconds",
            "closed_at",
            "closed_by",
            "vms_affected",
            "users_affected",
        ]
        read_only_fields = fields


class IncidentDetailSerializer(IncidentSerializer):
    events = IncidentEventSerializer(many=True, read_only=True)
    swaps = IncidentSwapSerializer(many=True, read_only=True)

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "events", "swaps"]
        read_only_fields = fields


class IncidentCloseSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=400, required=False, allow_blank=True, default="")
