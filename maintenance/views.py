"""Staff pages of the maintenance app: tasks (list, form, detail with its runs),
the run page with its live progress, and guest credentials. Every change goes
through an audited service.

The run page refreshes itself by polling `run_progress_json` every two seconds
(a small script, `maintenance/run.js`), rather than over a websocket: the figures
come from the database either way (as the dashboard's consumer reads them), a
poll needs no ASGI routing and passes any proxy, and a run moves at the pace of
VM boots, not milliseconds."""

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.errors import ServiceError
from portal.models import AuditEvent
from portal.roles import Role, role_required

from .forms import CredentialForm, TaskForm
from .models import GuestCredential, MaintenanceRun, MaintenanceTask
from .selectors import run_progress, task_active_run, task_target_vms
from .services import (
    credential_save,
    run_cancel,
    run_retry_failed,
    run_rollback,
    run_start,
    task_save,
)


def _who(request) -> dict:
    return {"actor": request.user.get_username(), "request_id": getattr(request, "id", "")}


@role_required(Role.VIEWER, Role.OPERATOR)
def task_list(request):
    tasks = MaintenanceTask.objects.select_related("pool", "credential", "periodic_task")
    runs = MaintenanceRun.objects.select_related("task")[:20]
    return render(request, "maintenance/task_list.html", {"tasks": tasks, "runs": runs})


@role_required(Role.OPERATOR)
def task_edit(request, pk=None):
    task = get_object_or_404(MaintenanceTask, pk=pk) if pk else None
    form = TaskForm(request.POST or None, instance=task)
    if request.method == "POST" and form.is_valid():
        try:
            saved = task_save(task=task, **form.service_arguments(), **_who(request))
        except ServiceError as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, f"Saved {saved.name}.")
            return redirect("maintenance:task-detail", pk=saved.pk)
    return render(request, "maintenance/task_form.html", {"form": form, "task": task})


@role_required(Role.VIEWER, Role.OPERATOR)
def task_detail(request, pk):
    task = get_object_or_404(
        MaintenanceTask.objects.select_related("pool", "credential", "periodic_task"), pk=pk
    )
    context = {
        "task": task,
        "runs": task.runs.all()[:50],
        "active": task_active_run(task),
        "targets": task_target_vms(task).count(),
        "events": AuditEvent.objects.filter(
            object_type="maintenance.maintenancetask", object_id=str(task.pk)
        )[:20],
    }
    return render(request, "maintenance/task_detail.html", context)


@role_required(Role.OPERATOR)
@require_POST
def task_start(request, pk):
    task = get_object_or_404(MaintenanceTask, pk=pk)
    try:
        run = run_start(task=task, **_who(request))
    except ServiceError as exc:
        messages.error(request, exc.detail)
        return redirect("maintenance:task-detail", pk=pk)
    messages.success(request, f"Started run #{run.pk} of {task.name}.")
    return redirect("maintenance:run-detail", pk=run.pk)


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
        result = service(run=run, **_who(request))
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


@role_required(Role.ADMINISTRATOR)
def credential_list(request):
    credentials = GuestCredential.objects.all()
    return render(request, "maintenance/credential_list.html", {"credentials": credentials})


@role_required(Role.ADMINISTRATOR)
def credential_edit(request, pk=None):
    credential = get_object_or_404(GuestCredential, pk=pk) if pk else None
    form = CredentialForm(request.POST or None, instance=credential)
    if request.method == "POST" and form.is_valid():
        saved = credential_save(credential=credential, **form.service_arguments(), **_who(request))
        messages.success(request, f"Saved the credential {saved.name}.")
        return redirect("maintenance:credential-list")
    return render(
        request, "maintenance/credential_form.html", {"form": form, "credential": credential}
    )
