"""Reads of the maintenance app: which VMs a task targets, whether a VM is in use,
and a run's progress as the run page and the API show it."""

from django.db.models import Count, Q, QuerySet

from allocation.models import ACTIVE_BINDING, AllocatorPool, Binding, DesktopSession, Terminal
from pools.choices import ALIVE_STATES, VMState
from pools.models import VM

from .choices import ACTIVE_RUN_STATUSES, ItemStatus, MaintenanceAction
from .models import MaintenanceRun, MaintenanceTask, RunItem

# The VMs a guest command or a power action can work on: booted, with a server.
WORKABLE_STATES = (VMState.READY, VMState.IN_USE)


def allocator_vms(allocators) -> Q:
    """The VMs the allocators serve: every VM bound under one of them (an active
    binding), and the idle (ready, unbound) VMs of the pools they draw from."""
    bound = Binding.objects.filter(ACTIVE_BINDING, allocator__in=allocators).values("vm_id")
    pools = AllocatorPool.objects.filter(allocator__in=allocators).values("pool_id")
    idle = Q(pool__in=pools, state=VMState.READY) & ~Q(
        pk__in=Binding.objects.filter(ACTIVE_BINDING).values("vm_id")
    )
    return Q(pk__in=bound) | idle


def terminal_tag_vms(tags: list[str]) -> Q:
    """The VMs used at terminals carrying any of `tags`: bound to such a terminal
    (an active binding) or with an open desktop session at one. Tags are matched
    here rather than in SQL (SQLite has no JSON containment), over the terminals
    in use only."""
    wanted = set(tags)
    in_use = (
        Terminal.objects.filter(
            Q(bindings__released_at__isnull=True) | Q(sessions__ended_at__isnull=True)
        )
        .distinct()
        .values_list("pk", "tags")
    )
    terminals = [
        pk
        for pk, terminal_tags in in_use
        if isinstance(terminal_tags, list)
        and wanted & {tag for tag in terminal_tags if isinstance(tag, str)}
    ]
    bound = Binding.objects.filter(ACTIVE_BINDING, terminal__in=terminals).values("vm_id")
    seated = DesktopSession.objects.filter(ended_at__isnull=True, terminal__in=terminals).values(
        "vm_id"
    )
    return Q(pk__in=bound) | Q(pk__in=seated)


def task_target_vms(task: MaintenanceTask) -> QuerySet[VM]:
    """The VMs a run of `task` would take, now. A roll-out takes every VM of its
    pool that holds a server (booting ones too: they are rolled once ready); the
    other actions take the booted VMs of the target pools, of the target hosts
    (by host name, in any region), the listed VMs, the VMs the target allocators
    serve (`allocator_vms`) and those used at terminals with a target tag
    (`terminal_tag_vms`)."""
    if task.action == MaintenanceAction.REBUILD:
        return VM.objects.filter(pool_id=task.pool_id, state__in=ALIVE_STATES).order_by("name")
    wanted = Q(pk__in=task.target_vms.values("pk")) | Q(pool__in=task.target_pools.all())
    if task.target_hosts:
        wanted |= Q(host_name__in=task.target_hosts)
    if task.target_allocators.exists():
        wanted |= allocator_vms(task.target_allocators.all())
    if task.target_tags:
        wanted |= terminal_tag_vms(task.target_tags)
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
