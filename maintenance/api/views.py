"""The maintenance ops API (staff only): guest credentials, tasks with their
`start` command, and runs with `cancel`, `retry` and `rollback`, their VMs and
their log."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.errors import ServiceError
from portal.roles import Role

from ..models import GuestCredential, MaintenanceRun, MaintenanceTask
from ..services import (
    credential_save,
    run_cancel,
    run_retry_failed,
    run_rollback,
    run_start,
    task_delete,
    task_save,
)
from .serializers import (
    GuestCredentialSerializer,
    MaintenanceRunSerializer,
    MaintenanceTaskSerializer,
    RunItemSerializer,
    RunLogSerializer,
)


class AuditedMixin:
    def audit_context(self) -> dict:
        return {
            "actor": self.request.user.get_username(),
            "request_id": getattr(self.request._request, "id", ""),
        }


class TaskHasRuns(ServiceError):
    status_code = 409
    code = "task_has_runs"
    default_detail = "This task has runs; disable it instead, so their history stays."


class GuestCredentialViewSet(
    AuditedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """How DeskOps logs in to guests. Secrets are write-only: the answer says only
    whether each is set."""

    read_role, write_role = Role.ADMINISTRATOR, Role.ADMINISTRATOR
    serializer_class = GuestCredentialSerializer
    queryset = GuestCredential.objects.order_by("name")

    def _save(self, serializer, instance):
        data = dict(serializer.validated_data)
        password = data.pop("password", None) or None
        private_key = data.pop("private_key", None) or None
        serializer.instance = credential_save(
            credential=instance,
            fields=data,
            password=password,
            private_key=private_key,
            **self.audit_context(),
        )

    def perform_create(self, serializer):
        self._save(serializer, None)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)


class MaintenanceTaskViewSet(AuditedMixin, viewsets.ModelViewSet):
    read_role, write_role = Role.VIEWER, Role.OPERATOR
    """Maintenance tasks: what to do, to which VMs, when, and how carefully."""

    serializer_class = MaintenanceTaskSerializer
    queryset = MaintenanceTask.objects.select_related("pool", "credential").prefetch_related(
        "target_pools", "target_vms", "target_allocators"
    )

    def _save(self, serializer, instance):
        data = dict(serializer.validated_data)
        pools = data.pop("target_pools", None)
        vms = data.pop("target_vms", None)
        allocators = data.pop("target_allocators", None)
        serializer.instance = task_save(
            task=instance,
            fields=data,
            target_pools=pools,
            target_vms=vms,
            target_allocators=allocators,
            **self.audit_context(),
        )

    def perform_create(self, serializer):
        self._save(serializer, None)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        if instance.runs.exists():
            raise TaskHasRuns()
        task_delete(task=instance, **self.audit_context())

    @extend_schema(request=None, responses={201: MaintenanceRunSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Start a run now, whatever the schedule (the window still applies)."""
        run = run_start(task=self.get_object(), **self.audit_context())
        return Response(MaintenanceRunSerializer(run).data, status=status.HTTP_201_CREATED)


class MaintenanceRunViewSet(AuditedMixin, viewsets.ReadOnlyModelViewSet):
    read_role, write_role = Role.VIEWER, Role.OPERATOR
    """Runs of maintenance tasks, newest first, with their progress."""

    serializer_class = MaintenanceRunSerializer
    queryset = MaintenanceRun.objects.select_related("task", "pool")

    @extend_schema(
        parameters=[
            OpenApiParameter("task", int, required=False, description="Runs of this task."),
            OpenApiParameter("status", str, required=False),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        runs = super().get_queryset()
        params = self.request.query_params
        if params.get("task", "").isdigit():
            runs = runs.filter(task_id=int(params["task"]))
        if params.get("status"):
            runs = runs.filter(status=params["status"])
        return runs

    @extend_schema(responses=RunItemSerializer(many=True))
    @action(detail=True, methods=["get"])
    def items(self, request, pk=None):
        """Every VM of the run with its status and what the guest or cloud said."""
        items = self.get_object().items.order_by("position", "pk")
        return Response(RunItemSerializer(items, many=True).data)

    @extend_schema(responses=RunLogSerializer(many=True))
    @action(detail=True, methods=["get"])
    def logs(self, request, pk=None):
        """The run's log, oldest line first."""
        lines = self.get_object().logs.select_related("item")
        return Response(RunLogSerializer(lines, many=True).data)

    @extend_schema(request=None, responses=MaintenanceRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Skip the VMs not started; those being worked on finish."""
        run = run_cancel(run=self.get_object(), **self.audit_context())
        return Response(MaintenanceRunSerializer(run).data)

    @extend_schema(request=None, responses=MaintenanceRunSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Try the failed VMs again (a halted run goes on with the rest too)."""
        run = run_retry_failed(run=self.get_object(), **self.audit_context())
        return Response(MaintenanceRunSerializer(run).data)

    @extend_schema(request=None, responses={201: MaintenanceRunSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Image roll-outs: give the pool its previous image back; answers with the
        run that rebuilds the VMs carrying the rolled-out image."""
        rollback = run_rollback(run=self.get_object(), **self.audit_context())
        return Response(MaintenanceRunSerializer(rollback).data, status=status.HTTP_201_CREATED)
