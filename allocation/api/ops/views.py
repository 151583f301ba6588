"""The ops API for allocation (staff only): allocator rules, the terminal registry
with enrollment and CSV import, and "explain"."""

from django.db import transaction
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from allocation.models import Allocator, AllocatorPool, Terminal
from allocation.selectors import allocator_explain
from allocation.services.allocators import allocator_delete, allocator_save
from allocation.services.terminals import terminal_enroll, terminal_save, terminals_import_csv
from portal.errors import ServiceError
from portal.roles import Role

from .serializers import (
    AllocatorSerializer,
    EnrollSerializer,
    ExplainQuerySerializer,
    ExplainSerializer,
    ImportReportSerializer,
    ImportSerializer,
    TerminalSerializer,
)


class AuditedViewSetMixin:
    """Who and which request, for the services' audit records."""

    def audit_context(self) -> dict:
        return {
            "actor": self.request.user.get_username(),
            "request_id": getattr(self.request._request, "id", ""),
        }


class AllocatorInUse(ServiceError):
    status_code = 409
    code = "allocator_in_use"
    default_detail = "Active bindings depend on this allocator; disable it instead."


class AllocatorViewSet(AuditedViewSetMixin, viewsets.ModelViewSet):
    read_role, write_role = Role.VIEWER, Role.ADMINISTRATOR
    """Allocator rules, in the order they are tried."""

    serializer_class = AllocatorSerializer
    queryset = Allocator.objects.prefetch_related(
        "groups",
        "sites",
        Prefetch("pool_links", queryset=AllocatorPool.objects.select_related("pool")),
    ).order_by("is_default", "priority", "name")

    def _save(self, serializer, instance):
        data = dict(serializer.validated_data)
        related = {key: data.pop(key) for key in ("groups", "sites", "pools") if key in data}
        serializer.instance = allocator_save(
            allocator=instance, fields=data, **related, **self.audit_context()
        )

    def perform_create(self, serializer):
        self._save(serializer, None)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        if instance.bindings.filter(released_at__isnull=True).exists():
            raise AllocatorInUse()
        allocator_delete(allocator=instance, **self.audit_context())


class TerminalViewSet(
    AuditedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """The terminal registry. Terminals are disabled rather than deleted, so their
    history stays."""

    read_role, write_role = Role.VIEWER, Role.OPERATOR
    serializer_class = TerminalSerializer
    queryset = Terminal.objects.select_related("site").order_by("serial")

    def get_queryset(self):
        terminals = super().get_queryset()
        wanted = self.request.query_params.get("status")
        return terminals.filter(status=wanted) if wanted else terminals

    def perform_create(self, serializer):
        serializer.instance = terminal_save(
            terminal=None, fields=dict(serializer.validated_data), **self.audit_context()
        )

    def perform_update(self, serializer):
        serializer.instance = terminal_save(
            terminal=serializer.instance,
            fields=dict(serializer.validated_data),
            **self.audit_context(),
        )

    @extend_schema(request=EnrollSerializer, responses=TerminalSerializer)
    @action(detail=True, methods=["post"])
    def enroll(self, request, pk=None):
        """Let a terminal (typically a pending one) get desktops."""
        data = EnrollSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        terminal = terminal_enroll(
            terminal=self.get_object(), **data.validated_data, **self.audit_context()
        )
        return Response(TerminalSerializer(terminal).data)

    @extend_schema(request=ImportSerializer, responses=ImportReportSerializer)
    @action(detail=False, methods=["post"], url_path="import")
    def import_csv(self, request):
        """Enroll terminals in bulk from CSV; the answer reports every row."""
        data = ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            report = terminals_import_csv(text=data.validated_data["csv"], **self.audit_context())
        body = {
            "created": report.count("created"),
            "updated": report.count("updated"),
            "refused": report.count("refused"),
            "rows": [vars(row) for row in report.rows],
        }
        return Response(body, status=status.HTTP_200_OK)


def explanation_data(explanation, *, user, terminal) -> dict:
    """An explanation as plain data, for the API and the page alike."""
    chosen = explanation.chosen
    return {
        "user": user.get_username(),
        "terminal": terminal.serial if terminal else None,
        "groups": sorted(explanation.facts.groups),
        "dn": explanation.facts.dn,
        "site": explanation.facts.site,
        "terminal_tags": sorted(explanation.facts.terminal_tags),
        "served_by": chosen.name if chosen else None,
        "pools": [link.pool.name for link in chosen.pool_links.select_related("pool")]
        if chosen
        else [],
        "rules": explanation.verdicts,
        "bindings": [
            {
                "allocator": b.allocator.name,
                "kind": b.kind,
                "vm": b.vm.name,
                "pool": b.vm.pool.name,
                "vm_state": b.vm.state,
                "since": b.created_at.isoformat(),
            }
            for b in explanation.bindings
        ],
    }


class ExplainView(APIView):
    read_role = Role.VIEWER

    @extend_schema(
        parameters=[
            OpenApiParameter("user", str, required=True),
            OpenApiParameter("terminal", str, required=False),
        ],
        responses=ExplainSerializer,
        summary="Which allocator serves a user (at a terminal), and why, rule by rule",
    )
    def get(self, request):
        query = ExplainQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        user, terminal = query.validated_data["user"], query.validated_data.get("terminal")
        explanation = allocator_explain(user=user, terminal=terminal)
        data = explanation_data(explanation, user=user, terminal=terminal)
        return Response(ExplainSerializer(data).data)
