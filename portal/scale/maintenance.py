"""Maintenance history of a generated world: tasks of every action and schedule,
their runs in every status, each run's VMs and log lines."""

from datetime import timedelta

from maintenance.choices import ItemStatus, MaintenanceAction, RunStatus, ScheduleKind
from maintenance.models import GuestCredential, MaintenanceRun, MaintenanceTask, RunItem, RunLog
from maintenance.policy import RunSpec

from .context import Context, insert

ACTIONS = [
    MaintenanceAction.REBOOT,
    MaintenanceAction.SCRIPT,
    MaintenanceAction.PACKAGE,
    MaintenanceAction.REBUILD,
    MaintenanceAction.POWER_OFF,
]
RUN_STATUSES = [
    (RunStatus.SUCCEEDED, 70),
    (RunStatus.FAILED, 10),
    (RunStatus.HALTED, 4),
    (RunStatus.CANCELLED, 6),
    (RunStatus.ROLLED_BACK, 2),
    (RunStatus.WAITING, 4),
    (RunStatus.RUNNING, 4),
]
# The statuses a run's VMs can be in, by the run's status.
ITEM_STATUSES = {
    RunStatus.SUCCEEDED: [ItemStatus.SUCCEEDED],
    RunStatus.FAILED: [ItemStatus.SUCCEEDED, ItemStatus.FAILED],
    RunStatus.HALTED: [ItemStatus.FAILED, ItemStatus.PENDING],
    RunStatus.CANCELLED: [ItemStatus.SUCCEEDED, ItemStatus.SKIPPED],
    RunStatus.ROLLED_BACK: [ItemStatus.SUCCEEDED],
    RunStatus.WAITING: [ItemStatus.PENDING],
    RunStatus.RUNNING: [ItemStatus.SUCCEEDED, ItemStatus.RUNNING, ItemStatus.PENDING],
}


def _tasks(ctx: Context) -> list[MaintenanceTask]:
    size, p = ctx.size, ctx.prefix
    credentials = insert(
        GuestCredential,
        [GuestCredential(name=f"{p}-guest-{i}", username="Administrator") for i in range(3)],
    )
    tasks = []
    for i in range(size.tasks):
        action = ACTIONS[i % len(ACTIONS)]
        kind = [ScheduleKind.MANUAL, ScheduleKind.ONCE, ScheduleKind.CRON][i % 3]
        guest = action in (MaintenanceAction.SCRIPT, MaintenanceAction.PACKAGE)
        rebuild = action == MaintenanceAction.REBUILD
        tasks.append(
            MaintenanceTask(
                name=f"{p}-task-{i:03d}",
                description=f"Maintenance {i}",
                action=action,
                script="Restart-Service Spooler" if action == MaintenanceAction.SCRIPT else "",
                package="7zip" if action == MaintenanceAction.PACKAGE else "",
                image="win10-2024.07" if rebuild else "",
                pool=ctx.pools[i % size.pools] if rebuild else None,
                credential=credentials[i % len(credentials)] if guest else None,
                schedule_kind=kind,
                run_at=ctx.now + timedelta(days=1) if kind == ScheduleKind.ONCE else None,
                cron="0 22 * * 1-5" if kind == ScheduleKind.CRON else "",
                enabled=i % 9 != 4,
                created_by="ops-anna",
                created_at=ctx.ago(),
                updated_at=ctx.ago(days=3),
            )
        )
    insert(MaintenanceTask, tasks)
    insert(
        MaintenanceTask.target_pools.through,
        [
            MaintenanceTask.target_pools.through(
                maintenancetask=task, vmpool=ctx.pools[i % size.pools]
            )
            for i, task in enumerate(tasks)
            if task.action != MaintenanceAction.REBUILD
        ],
    )
    return tasks


def build_maintenance(ctx: Context) -> None:
    size = ctx.size
    tasks = _tasks(ctx)
    run_statuses, weights = zip(*RUN_STATUSES, strict=True)
    runs = []
    for i in range(size.runs):
        task = tasks[i % size.tasks]
        status = ctx.rng.choices(run_statuses, weights)[0]
        created = ctx.ago()
        started = None if status == RunStatus.WAITING else created + timedelta(seconds=5)
        active = status in (RunStatus.WAITING, RunStatus.RUNNING)
        runs.append(
            MaintenanceRun(
                task=task,
                status=status,
                trigger="schedule" if i % 2 else "manual",
                started_by="" if i % 2 else "ops-anna",
                spec=RunSpec.from_task(task).as_json(),
                pool=task.pool,
                previous_image="win10-2024.06" if task.pool else "",
                new_image=task.image,
                current_batch=ctx.rng.randint(0, 3),
                halt_reason="Over 10% of the VMs failed" if status == RunStatus.HALTED else "",
                created_at=created,
                started_at=started,
                finished_at=None if active else created + timedelta(minutes=40),
                advanced_at=created + timedelta(minutes=1),
            )
        )
    insert(MaintenanceRun, runs)
    items = []
    for i, run in enumerate(runs):
        first = (i * size.items_per_run) % len(ctx.vms)
        for position in range(size.items_per_run):
            vm = ctx.vms[(first + position) % len(ctx.vms)]
            status = ctx.rng.choice(ITEM_STATUSES[run.status])
            done = status not in (ItemStatus.PENDING, ItemStatus.RUNNING)
            items.append(
                RunItem(
                    run=run,
                    vm=vm,
                    vm_name=vm.name,
                    position=position,
                    status=status,
                    batch=position // 5,
                    attempts=1,
                    finished_at=run.created_at + timedelta(minutes=position) if done else None,
                    exit_code=(1 if status == ItemStatus.FAILED else 0) if done else None,
                    error="exit code 1" if status == ItemStatus.FAILED else "",
                )
            )
    insert(RunItem, items)
    insert(
        RunLog,
        [
            RunLog(run=run, created_at=run.created_at + timedelta(seconds=step), message=text)
            for run in runs
            for step, text in enumerate(["Run started", "Batch 1 queued"])
        ],
    )
    ctx.tasks, ctx.runs = tasks, runs
    ctx.count("maintenance tasks", len(tasks))
    ctx.count("maintenance runs", len(runs))
