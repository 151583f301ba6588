"""Reads of the maintenance app: which VMs a task targets, whether a VM is in use,
and a run's progress as the run page and the API show it."""

from django.db.models import Count, Q, QuerySet

from allocation.models import Binding, DesktopSession
from pools.choices import ALIVE_STATES, VMState
from pools.models import VM

from .choices import ACTIVE_RUN_STATUSES, ItemStatus, MaintenanceAction
from .models import MaintenanceRun, MaintenanceTask, RunItem

# The VMs a guest command or a power action can work on: booted, with a server.
WORKABLE_STATES = (VMState.READY, VMState.IN_USE)


def task_target_vms(task: MaintenanceTask) -> QuerySet[VM]:
    """The VMs a run of `task` would take, now. A roll-out takes every VM of its
    pool that holds a server (booting ones too: they are rolled once ready); the
    other actions take the booted VMs of the target pools, of the target hosts
    (by host name, in any region) and the listed VMs."""
    if task.action == MaintenanceAction.REBUILD:
        return VM.objects.filter(pool_id=task.pool_id, state__in=ALIVE_STATES).order_by("name")
    wanted = Q(pk__in=task.target_vms.values("pk")) | Q(pool__in=task.target_pools.all())
    if task.target_hosts:
        wanted |= Q(host_name__in=task.target_hosts)
    return (
        VM.objects.filter(wanted, state__in=WORKABLE_STATES)
        .exclude(server_id="")
        .order_by("pool__name", "name")
        .distinct()
    )


def vm_in_use(vm: VM) -> bool:
    """Someone is working on the desktop: a thin client holds an open session."""
    return DesktopSession.objects.filter(vm=vm, ended_at__isnull=True).exists()


def vm_active_binding(vm: VM) -> Binding | None:
    return Binding.objects.filter(vm=vm, released_at__isnull=True).first()


def vm_busy_elsewhere(vm: VM, *, run: MaintenanceRun) -> MaintenanceRun | None:
    """Another run working on this VM right now (two runs never touch one VM at
    once: a reboot in the middle of a rebuild helps nobody)."""
    other = (
        RunItem.objects.filter(vm=vm, status=ItemStatus.RUNNING)
        .exclude(run=run)
        .select_related("run")
        .first()
    )
    return other.run if other else None


def task_active_run(task: MaintenanceTask) -> MaintenanceRun | None:
    return task.runs.filter(status__in=ACTIVE_RUN_STATUSES).first()


def pool_active_rollout(pool_id: int) -> MaintenanceRun | None:
    return MaintenanceRun.objects.filter(pool_id=pool_id, status__in=ACTIVE_RUN_STATUSES).first()


def run_counts(run: MaintenanceRun) -> dict[str, int]:
    counts = run.items.aggregate(
        total=Count("id"),
        **{status: Count("id", filter=Q(status=status)) for status in ItemStatus.values},
    )
    return counts


def run_progress(run: MaintenanceRun, *, log_lines: int = 50) -> dict:
    """Everything the run page refreshes: counts, the share done, each VM's row
    and the latest log lines. Plain data, for JSON."""
    counts = run_counts(run)
    finished = counts["succeeded"] + counts["failed"] + counts["skipped"]
    items = run.items.order_by("position", "pk")
    logs = list(run.logs.select_related("item").order_by("-created_at", "-pk")[:log_lines])
    return {
        "id": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "current_batch": run.current_batch,
        "next_batch_at": run.next_batch_at.isoformat() if run.next_batch_at else None,
        "halt_reason": run.halt_reason,
        "advanced_at": run.advanced_at.isoformat() if run.advanced_at else None,
        "counts": counts,
        "finished": finished,
        "percent": round(100 * finished / counts["total"]) if counts["total"] else 100,
        "pool_image": run.pool.image if run.pool_id else None,
        "items": [
            {
                "id": item.pk,
                "vm": item.vm_name,
                "vm_id": item.vm_id,
                "status": item.status,
                "phase": item.phase,
                "batch": item.batch,
                "attempts": item.attempts,
                "note": item.note,
                "error": item.error,
                "exit_code": item.exit_code,
            }
            for item in items
        ],
        "logs": [
            {
                "at": line.created_at.isoformat(),
                "level": line.level,
                "vm": line.item.vm_name if line.item_id else "",
                "message": line.message,
            }
            for line in reversed(logs)
        ],
    }
