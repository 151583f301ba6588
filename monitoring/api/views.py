"""The monitoring ops API (staff only): alerts, with the operators' `acknowledge`
and `close` commands, and incidents with their timeline and `close`."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from portal.roles import Role

from ..alert_selectors import alert_list
from ..alerts import alert_acknowledge, alert_close
from ..choices import AlertKind, AlertSeverity, AlertStatus, IncidentStatus
from ..models import Incident
from ..recovery import incident_close
from .serializers import (
    AlertQuerySerializer,
    AlertSerializer,
    IncidentCloseSerializer,
    IncidentDetailSerializer,
    IncidentSerializer,
)


class AlertPagination(PageNumberPagination):
    # Alerts pile up over months, unlike the other resources: they come in pages.
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


def _choices(choices) -> str:
    return ", ".join(value for value, _ in choices)


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    read_role, write_role = Role.VIEWER, Role.OPERATOR
    """Alerts, newest first."""

    serializer_class = AlertSerializer
    pagination_class = AlertPagination
    queryset = alert_list()

    def audit_context(self) -> dict:
        return {
            "actor": self.request.user.get_username(),
            "request_id": getattr(self.request._request, "id", ""),
        }

    def get_queryset(self):
        if self.action != "list":
            return alert_list()
        query = AlertQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return alert_list(
            statuses=query.validated_data["status"],
            kinds=query.validated_data["kind"],
            severities=query.validated_data["severity"],
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description=f"Any of: {_choices(AlertStatus.choices)}"),
            OpenApiParameter("kind", str, description=f"Any of: {_choices(AlertKind.choices)}"),
            OpenApiParameter(
                "severity", str, description=f"Any of: {_choices(AlertSeverity.choices)}"
            ),
        ]
    )
    def list(self, request, *args, **kwargs):
        """Alerts, newest first; each filter takes one value or several,
        comma-separated (e.g. `status=open,acknowledged`)."""
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Someone is on it: the alert is not notified again. 409 unless it is open."""
        alert = alert_acknowledge(alert=self.get_object(), **self.audit_context())
        return Response(AlertSerializer(alert).data)

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Dealt with. A condition that still holds opens a new alert at the next
        evaluation. 409 when already closed."""
        alert = alert_close(alert=self.get_object(), **self.audit_context())
        return Response(AlertSerializer(alert).data)


class IncidentViewSet(viewsets.ReadOnlyModelViewSet):
    read_role, write_role = Role.VIEWER, Role.OPERATOR
    """Incidents (host failures and their recovery), newest first; one incident
    carries its timeline and the users it moved."""

    pagination_class = AlertPagination
    queryset = Incident.objects.select_related("region", "host")

    def get_serializer_class(self):
        return IncidentSerializer if self.action == "list" else IncidentDetailSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            return queryset.prefetch_related(
                "events", "swaps__binding__user", "swaps__old_vm", "swaps__new_vm"
            )
        wanted = self.request.query_params.get("status")
        if wanted is not None:
            if wanted not in IncidentStatus.values:
                raise serializers.ValidationError(
                    {"status": f"Any of: {_choices(IncidentStatus.choices)}"}
                )
            queryset = queryset.filter(status=wanted)
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", str, description=f"One of: {_choices(IncidentStatus.choices)}"
            )
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=IncidentCloseSerializer, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """The cause is dealt with. 409 when already closed."""
        incident = self.get_object()
        payload = IncidentCloseSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        closed = incident_close(
            incident=incident,
            note=payload.validated_data["note"],
            actor=request.user.get_username(),
            request_id=getattr(request._request, "id", ""),
        )
        if not closed:
            return Response(
                {"error": "incident_closed", "detail": "That incident was closed already."},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(IncidentDetailSerializer(self.get_queryset().get(pk=incident.pk)).data)
