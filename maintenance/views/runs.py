"""The maintenance run pages: every run as a list, one run with its live progress,
and the operators' Cancel, Retry and Roll back buttons.

The run page refreshes itself by polling `run_progress_json` every two seconds
(a small script, `maintenance/run.js`), rather than over a websocket: the figures
come from the database either way (as the dashboard's consumer reads them), a
poll needs no ASGI routing and passes any proxy, and a run moves at the pace of
VM boots, not milliseconds."""

from django.contrib import messages
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from portal.errors import ServiceError
from portal.listing import Column, Filter, Listing, listing_response
from portal.roles import Role, role_required

from ..choices import ItemStatus, RunStatus
from ..models import MaintenanceRun, MaintenanceTask
from ..selectors import run_progress
from ..services import run_cancel, run_retry_failed, run_rollback
from . import who

TRIGGERS = [("manual", "by hand"), ("schedule", "schedule"), ("rollback", "roll-back")]


def _task_choices():
    return MaintenanceTask.objects.order_by("name").values_list("pk", "name")


def _item_count(status: str | None = None) -> Count:
    return Count("items", filter=Q(items__status=status) if status else None)


class RunListing(Listing):
    title = "Maintenance runs"
    noun = "runs"
    columns = [
        Column(
            "pk",
            "Run",
            sort="id",
            value=lambda r: f"#{r.pk}",
            url=lambda r: reverse("maintenance:run-detail", args=[r.pk]),
        ),
        Column(
            "task.name",
            "Task",
            url=lambda r: reverse("maintenance:task-detail", args=[r.task_id]),
        ),
        Column("status", "State"),
        Column("trigger", "Trigger"),
        Column("started_by", "Started by"),
        Column("created_at", "Created"),
        Column("started_at", "Started"),
        Column("finished_at", "Finished"),
        Column("item_total", "VMs"),
        Column("item_succeeded", "Done"),
        Column("item_failed", "Failed"),
        Column("item_skipped", "Skipped"),
    ]
    filters = [
        Filter("task", "Task", _task_choices, lookup="task_id"),
        Filter("state", "State", RunStatus.choices, lookup="status"),
        Filter("trigger", "Trigger", TRIGGERS),
    ]
    search_fields = ["task__name", "started_by", "halt_reason"]
    search_placeholder = "Task, who started it, halt reason"
    default_sort = "-created_at"
    time_field = "created_at"
    row_template = "maintenance/includes/run_row.html"
    csv_filename = "maintenance-runs"

    def get_queryset(self):
        return MaintenanceRun.objects.select_related("task").annotate(
            item_total=_item_count(),
            item_succeeded=_item_count(ItemStatus.SUCCEEDED),
            item_failed=_item_count(ItemStatus.FAILED),
            item_skipped=_item_count(ItemStatus.SKIPPED),
        )


@role_required(Role.VIEWER, Role.OPERATOR)
@require_safe
def run_list(request):
    return listing_response(request, RunListing, template="maintenance/run_list.html")


@role_required(Role.VIEWER, Role.OPERATOR)
def run_detail(request, pk):
    run = get_object_or_404(
        MaintenanceRun.objects.select_related("task", "pool", "rollback_of"), pk=pk
    )
    context = {"run": run, "progress": run_progress(run), "rollbacks": run.rollbacks.all()}
    return render(request, "maintenance/run_detail.html", context)


@role_required(Role.VIEWER)
def run_progress_json(request, pk):
    run = get_object_or_404(MaintenanceRun.objects.select_related("pool"), pk=pk)
    return JsonResponse(run_progress(run))


def _run_command(request, pk, service, done: str):
    run = get_object_or_404(MaintenanceRun, pk=pk)
    try:
        result = service(run=run, **who(request))
    except ServiceError as exc:
        messages.error(request, exc.detail)
        return redirect("maintenance:run-detail", pk=pk)
    messages.success(request, done)
    return redirect("maintenance:run-detail", pk=result.pk)


@role_required(Role.OPERATOR)
@require_POST
def run_cancel_view(request, pk):
    return _run_command(request, pk, run_cancel, "Cancelled: VMs not started are skipped.")


@role_required(Role.OPERATOR)
@require_POST
def run_retry_view(request, pk):
    return _run_command(request, pk, run_retry_failed, "The failed VMs go again.")


@role_required(Role.OPERATOR)
@require_POST
def run_rollback_view(request, pk):
    return _run_command(
        request, pk, run_rollback, "Rolled back: the pool boots its previous image again."
    )
