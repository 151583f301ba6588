"""Runs of maintenance tasks: starting one, moving it on in rolling batches, and
the operator's retry, cancel and roll-back.

How a run moves on. The periodic job `runs_advance` (Celery beat, every
`MAINTENANCE_ADVANCE_INTERVAL` seconds) calls `run_advance` for each run with
work left. `run_advance` first follows the VMs being worked on (a cloud operation
polled through the driver, a rebuild followed through the VM's state, a guest
command whose worker reports back), then, with the run's row locked
(`SELECT … FOR UPDATE SKIP LOCKED`: a second advance at the same moment skips the
run rather than waiting for it), decides what starts next:

- nothing outside the window; a VM still in use when the window closes is
  skipped (it was waiting for its user to log off);
- batch by batch: the canary batch first (every VM of it must succeed), then
  batches of `batch_size`, at most `max_parallel` VMs at once, `pause_seconds`
  between two batches; at the end of each batch the run halts when more than
  `max_failure_percent` of the VMs done so far failed;
- a VM in use is skipped, waited for (until the window closes) or, after a
  notice to its user, worked on anyway, as the task says.

Starting a VM marks its item running (a conditional update) and, for a guest
command or a cloud call, queues `item_execute` once the transaction commits; the
Celery task claims the item with a second conditional update, so a task
delivered twice works once. Each step writes the item's status and a log line as
it goes, so the run page shows progress while the run is under way."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from allocation.choices import BindingPolicy
from cloud.drivers import driver_for
from cloud.errors import CloudError, CloudUnavailable, ServerNotFound
from pools.choices import ALIVE_STATES, BOOTING_STATES, VMState
from pools.models import VM, VMPool
from pools.services import vm_return_to_pool
from pools.services.maintenance import vm_hold_idle, vm_recycle_idle
from portal.errors import ServiceError
from portal.services import audit_record, model_update

from ..choices import (
    ACTIVE_RUN_STATUSES,
    GUEST_ACTIONS,
    InUsePolicy,
    ItemPhase,
    ItemStatus,
    MaintenanceAction,
    RunStatus,
)
from ..executors import ExecutorError, executor_for
from ..models import MaintenanceRun, MaintenanceTask, RunItem, RunLog
from ..policy import RunSpec, window_closes_at, window_is_open, window_opens_next
from ..selectors import (
    pool_active_rollout,
    task_active_run,
    task_target_vms,
    vm_active_binding,
    vm_busy_elsewhere,
    vm_in_use,
)

logger = logging.getLogger(__name__)

# A queued item whose worker has not picked it up after this long is queued again
# (the broker lost the message, or no worker was running).
REQUEUE_AFTER = timedelta(minutes=2)
# Extra time a guest command's worker gets past the command's own timeout before
# its item is failed as lost (the worker died).
WORKER_GRACE = timedelta(minutes=2)


class RunConflict(ServiceError):
    status_code = 409
    code = "run_conflict"
    default_detail = "The run cannot do that now."


def run_log(run: MaintenanceRun, message: str, *, item: RunItem | None = None, level="info"):
    """One line in the run's log (and in the process log)."""
    RunLog.objects.create(run=run, item=item, level=level, message=message[:2000])
    log = logger.warning if level in ("warning", "error") else logger.info
    log("run %s%s: %s", run.pk, f" {item.vm_name}" if item else "", message)


def _on_commit_queue(task, *args, **options) -> None:
    """Queue a Celery task after the commit; a broker that is down only delays the
    work (the periodic advance queues it again), so it is logged, not raised."""

    def send():
        try:
            task.apply_async(args=args, **options)
        except Exception as exc:  # any broker error: the next advance catches up
            logger.warning("could not queue %s%s: %s", task.name, args, exc)

    transaction.on_commit(send)


def _queue_advance(run: MaintenanceRun) -> None:
    from ..tasks import run_advance as run_advance_task

    _on_commit_queue(run_advance_task, run.pk)


def _queue_item(item: RunItem, spec: RunSpec) -> None:
    from ..tasks import item_execute

    # The worker's limits follow the command's own timeout, not the default.
    _on_commit_queue(
        item_execute,
        item.pk,
        soft_time_limit=spec.timeout_seconds + 60,
        time_limit=spec.timeout_seconds + 120,
    )


# -- starting a run -------------------------------------------------------------


def _history_entry(*, event: str, image: str, previous: str, actor: str) -> dict:
    return {
        "at": timezone.now().isoformat(),
        "event": event,
        "image": image,
        "previous": previous,
        "actor": actor,
    }


@transaction.atomic
def run_start(
    *, task: MaintenanceTask, actor: str, trigger: str = "manual", request_id: str = ""
) -> MaintenanceRun:
    """Start a run of `task` over the VMs it targets now. An image roll-out first
    gives its pool the new image (so every boot and every recycled desktop from
    now on gets it) and keeps the previous one on the run for a roll-back. Refused
    while the task, or the roll-out's pool, already has a run under way."""
    task = MaintenanceTask.objects.select_for_update().get(pk=task.pk)
    running = task_active_run(task)
    if running is not None:
        raise RunConflict(f"{task.name} is already running (run #{running.pk}).")
    spec = RunSpec.from_task(task)
    run = MaintenanceRun(
        task=task, trigger=trigger, started_by=actor, spec=spec.as_json(), status=RunStatus.WAITING
    )
    if task.action == MaintenanceAction.REBUILD:
        pool = VMPool.objects.select_for_update().get(pk=task.pool_id)
        other = pool_active_rollout(pool.pk)
        if other is not None:
            raise RunConflict(f"Pool {pool.name} is already being rolled out (run #{other.pk}).")
        run.pool = pool
        run.previous_image = pool.image
        run.new_image = task.image
        run.image_switched_at = timezone.now()
        run.image_history = [
            _history_entry(event="roll-out", image=task.image, previous=pool.image, actor=actor)
        ]
        run.save()
        if pool.image != task.image:
            model_update(obj=pool, fields={"image": task.image}, actor=actor, request_id=request_id)
    else:
        run.save()
    vms = list(task_target_vms(task))
    RunItem.objects.bulk_create(
        [RunItem(run=run, vm=vm, vm_name=vm.name, position=i) for i, vm in enumerate(vms)]
    )
    audit_record(
        action="maintenancerun.start",
        obj=run,
        actor=actor,
        after={
            "task": task.name,
            "action": task.action,
            "trigger": trigger,
            "vms": len(vms),
            **({"image": run.new_image, "previous_image": run.previous_image} if run.pool else {}),
        },
        request_id=request_id,
    )
    what = f"{len(vms)} VMs"
    if run.pool:
        what += f"; pool {run.pool.name} now boots {run.new_image} (was {run.previous_image})"
    run_log(run, f"Started by {actor} ({trigger}): {what}.")
    _queue_advance(run)
    return run


def task_fire(*, task_id: int) -> int | None:
    """What the task's periodic task (celery beat) calls: start a run, unless the
    task is disabled or its previous run is still under way (logged, not raised:
    the schedule simply comes round again)."""
    task = MaintenanceTask.objects.filter(pk=task_id).first()
    if task is None or not task.enabled:
        logger.info("maintenance task %s not started: missing or disabled", task_id)
        return None
    try:
        return run_start(task=task, actor="schedule", trigger="schedule").pk
    except RunConflict as exc:
        logger.warning("maintenance task %s not started by its schedule: %s", task.name, exc)
        return None


# -- following items ----------------------------------------------------------


def _item_finish(
    item: RunItem,
    status: str,
    *,
    note: str = "",
    error: str = "",
    exit_code: int | None = None,
    output: str = "",
) -> bool:
    """Record the outcome of a running item (once: a conditional update), and give
    an idle VM that was held for the work back to its pool."""
    done = RunItem.objects.filter(pk=item.pk, status=ItemStatus.RUNNING).update(
        status=status,
        phase="",
        finished_at=timezone.now(),
        note=note[:255],
        error=error[:255],
        exit_code=exit_code,
        output=output,
        vm_held=False,
    )
    if not done:
        return False
    if item.vm_held:
        vm_return_to_pool(vm=item.vm)
    level = "error" if status == ItemStatus.FAILED else "info"
    detail = error or note
    run_log(item.run, f"{status}{': ' + detail if detail else ''}", item=item, level=level)
    return True


def _item_follow(item: RunItem, spec: RunSpec, now) -> None:
    """Check on one running item and record its outcome when there is one."""
    vm = item.vm
    if item.phase == ItemPhase.QUEUED:
        if item.queued_at and now - item.queued_at > REQUEUE_AFTER:
            RunItem.objects.filter(pk=item.pk, phase=ItemPhase.QUEUED).update(queued_at=now)
            run_log(
                item.run, "no worker picked it up yet; queued again", item=item, level="warning"
            )
            _queue_item(item, spec)
        return
    if item.phase == ItemPhase.GUEST:
        limit = timedelta(seconds=spec.timeout_seconds) + WORKER_GRACE
        if item.started_at and now - item.started_at > limit:
            _item_finish(
                item,
                ItemStatus.FAILED,
                error="No result from the worker in time (it may have died).",
            )
        return
    if item.phase == ItemPhase.RECYCLE:
        _follow_recycle(item, vm)
        return
    if item.phase == ItemPhase.CLOUD:
        _follow_cloud(item, spec, vm, now)


def _follow_recycle(item: RunItem, vm: VM) -> None:
    """An idle VM goes through the pool's recycling rebuild: it is done when it is
    ready again (or was handed to a user since), failed when the boot failed."""
    if vm.state in BOOTING_STATES:
        return
    if vm.state in (VMState.READY, VMState.IN_USE):
        # Ready again, or ready and handed to a user since.
        _item_finish(item, ItemStatus.SUCCEEDED, note="rebuilt to the new image")
    else:
        _item_finish(item, ItemStatus.FAILED, error=vm.error or f"the VM is {vm.state}")


def _follow_cloud(item: RunItem, spec: RunSpec, vm: VM, now) -> None:
    """A reboot, power-off or in-place rebuild the driver was asked for: poll the
    server until it is where the action leaves it."""
    driver = driver_for(vm.pool.region)
    try:
        info = driver.get_server(vm.server_id)
    except ServerNotFound:
        _item_finish(item, ItemStatus.FAILED, error="The server disappeared.")
        return
    except CloudUnavailable as exc:
        logger.warning("cannot follow %s yet: %s", vm.name, exc)
        return
    if spec.action == MaintenanceAction.POWER_OFF:
        done = info.status == "SHUTOFF" and not info.task_state
    else:
        done = info.is_ready
    if done:
        notes = {
            MaintenanceAction.POWER_OFF: "powered off",
            MaintenanceAction.REBOOT: "rebooted",
            MaintenanceAction.REBUILD: "rebuilt to the new image; its binding kept",
        }
        _item_finish(item, ItemStatus.SUCCEEDED, note=notes[spec.action])
    elif info.status == "ERROR":
        _item_finish(item, ItemStatus.FAILED, error=info.fault or "The cloud reported an error.")
    elif item.started_at and now - item.started_at > timedelta(seconds=settings.VM_BOOT_TIMEOUT):
        _item_finish(
            item,
            ItemStatus.FAILED,
            error=f"The server was not back within {settings.VM_BOOT_TIMEOUT} s.",
        )


# -- deciding what starts -------------------------------------------------------


def _gate(item: RunItem, run: MaintenanceRun, spec: RunSpec, now) -> tuple[str, str]:
    """What to do with a pending item now: ("start", how), ("skip", why),
    ("wait", why), ("logoff", why) or ("notice", why)."""
    vm = item.vm
    other = vm_busy_elsewhere(vm, run=run)
    if other is not None:
        return "wait", f"busy with run #{other.pk}"
    if vm.state not in ALIVE_STATES or (not vm.server_id and vm.state != VMState.REQUESTED):
        return "skip", f"the VM is {vm.get_state_display().lower()}"
    rollout = spec.action == MaintenanceAction.REBUILD
    switched = run.image_switched_at
    booted_since = switched and (vm.boot_started_at or vm.requested_at) >= switched
    if rollout and booted_since and vm.state in (*BOOTING_STATES, VMState.READY):
        return "start", "follow"  # booted (or boots) from the new image already
    if vm.state in BOOTING_STATES:
        return "wait", "booting; its turn comes once it is ready"
    if vm.state == VMState.READY:
        if spec.action == MaintenanceAction.POWER_OFF:
            return "skip", "idle in its pool, which keeps its VMs booted"
        return "start", "recycle" if rollout else "hold"
    # In use: handed to a user (bound or floating), or held by other work.
    binding = vm_active_binding(vm)
    in_use = vm_in_use(vm)
    if binding is None:
        return "wait", "taken out of the pool by other work"
    if rollout and binding.kind == BindingPolicy.FLOATING:
        if spec.in_use_policy == InUsePolicy.SKIP:
            return "skip", "a floating desktop in use; it gets the new image when released"
        return "logoff", "a floating desktop in use; rebuilt to the new image when released"
    if not in_use:
        return "start", "in-place"
    if spec.in_use_policy == InUsePolicy.SKIP:
        return "skip", "in use"
    if spec.in_use_policy == InUsePolicy.FORCE and not rollout:
        if item.notice_sent_at is None:
            return "notice", "its user is being told"
        return "start", "in-place"  # the notice period has passed
    return "logoff", "waiting for its user to log off"


def _start(item: RunItem, run: MaintenanceRun, spec: RunSpec, how: str, now) -> bool:
    """Mark a pending item running in the current batch and set its work going.
    Returns False when the VM changed under it (the item stays pending)."""
    phase = ItemPhase.QUEUED
    held = False
    if how == "follow":
        phase = ItemPhase.RECYCLE
    elif how == "recycle":
        if not vm_recycle_idle(vm=item.vm):
            return False
        phase = ItemPhase.RECYCLE
    elif how == "hold":
        if not vm_hold_idle(vm=item.vm):
            return False
        held = True
    started = RunItem.objects.filter(pk=item.pk, status=ItemStatus.PENDING).update(
        status=ItemStatus.RUNNING,
        phase=phase,
        batch=run.current_batch,
        attempts=F("attempts") + 1,
        queued_at=now,
        started_at=now if phase == ItemPhase.RECYCLE else None,
        finished_at=None,
        not_before=None,
        note="taken out of its pool while worked on" if held else "",
        error="",
        vm_held=held,
    )
    if not started:
        if held:
            vm_return_to_pool(vm=item.vm)
        return False
    item.phase, item.vm_held = phase, held
    if phase == ItemPhase.QUEUED:
        _queue_item(item, spec)
    run_log(run, f"started in batch {run.current_batch + 1} ({how})", item=item)
    return True


def _notice(item: RunItem, run: MaintenanceRun, spec: RunSpec, now) -> None:
    """Tell the user, and come back when the notice period is over."""
    from ..tasks import item_notify

    go_at = now + timedelta(minutes=spec.notice_minutes)
    RunItem.objects.filter(pk=item.pk, status=ItemStatus.PENDING).update(
        phase=ItemPhase.NOTICE,
        notice_sent_at=now,
        not_before=go_at,
        note=f"user notified; goes ahead at {timezone.localtime(go_at):%H:%M}",
    )
    run_log(
        run, f"in use: user notified, work starts at {timezone.localtime(go_at):%H:%M}", item=item
    )
    _on_commit_queue(item_notify, item.pk)


def _failure_check(run: MaintenanceRun, spec: RunSpec, batch: int) -> str:
    """Why the run must halt after `batch`, or "" to go on."""
    items = run.items
    batch_failed = items.filter(batch=batch, status=ItemStatus.FAILED).count()
    if batch == 0 and spec.canary_size and batch_failed:
        started = items.filter(batch=0).count()
        return f"The canary batch failed on {batch_failed} of {started} VMs."
    failed = items.filter(status=ItemStatus.FAILED).count()
    done = failed + items.filter(status=ItemStatus.SUCCEEDED).count()
    if done and failed * 100 > spec.max_failure_percent * done:
        return (
            f"{failed} of {done} VMs failed ({100 * failed / done:.0f}%), more than the "
            f"{spec.max_failure_percent}% allowed."
        )
    return ""


def _finish_if_done(run: MaintenanceRun, now) -> None:
    left = run.items.filter(status__in=[ItemStatus.PENDING, ItemStatus.RUNNING]).exists()
    if left:
        return
    failed = run.items.filter(status=ItemStatus.FAILED).count()
    run.status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
    run.finished_at = now
    run.next_batch_at = None
    run.save(update_fields=["status", "finished_at", "next_batch_at"])
    counts = {s: run.items.filter(status=s).count() for s in ItemStatus.values}
    run_log(
        run,
        f"Finished: {counts['succeeded']} succeeded, {counts['failed']} failed, "
        f"{counts['skipped']} skipped.",
        level="warning" if failed else "info",
    )
    audit_record(action="maintenancerun.finish", obj=run, after={"status": run.status, **counts})


def _plan(run: MaintenanceRun, spec: RunSpec, now) -> None:
    """Under the run's row lock: the window, the batch boundaries and what starts."""
    pending = run.items.filter(status=ItemStatus.PENDING)
    if not window_is_open(spec, now):
        waited = pending.filter(phase=ItemPhase.LOGOFF)
        for item in waited:
            RunItem.objects.filter(pk=item.pk, status=ItemStatus.PENDING).update(
                status=ItemStatus.SKIPPED,
                phase="",
                finished_at=now,
                note="still in use when the window closed",
            )
            run_log(run, "skipped: still in use when the window closed", item=item)
        # Notices given for a window that closed are given again in the next one.
        pending.filter(phase=ItemPhase.NOTICE).update(
            phase="", notice_sent_at=None, not_before=None
        )
        if run.status == RunStatus.RUNNING:
            run.status = RunStatus.WAITING
            run.save(update_fields=["status"])
            opens = window_opens_next(spec, now)
            run_log(run, f"The window closed; work goes on at {timezone.localtime(opens):%H:%M}.")
        if not run.items.filter(status=ItemStatus.RUNNING).exists():
            _finish_if_done(run, now)
        return
    if run.status == RunStatus.WAITING:
        run.status = RunStatus.RUNNING
        run.started_at = run.started_at or now
        run.save(update_fields=["status", "started_at"])
        closes = window_closes_at(spec, now)
        run_log(
            run,
            "The window is open"
            + (f" until {timezone.localtime(closes):%H:%M}." if closes else " (no window)."),
        )
    if run.next_batch_at:
        if now < run.next_batch_at:
            return  # the pause between two batches
        run.next_batch_at = None
        run.save(update_fields=["next_batch_at"])

    batch = run.current_batch
    capacity = spec.batch_capacity(batch)
    in_batch = run.items.filter(batch=batch)
    started_in_batch = in_batch.count()
    running_total = run.items.filter(status=ItemStatus.RUNNING).count()
    slots = min(capacity - started_in_batch, spec.max_parallel - running_total)

    started_now = 0
    if slots > 0:
        candidates = (
            pending.filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .select_related("vm__pool__region")
            .order_by("position", "pk")
        )
        for item in candidates:
            if started_now >= slots:
                break
            decision, why = _gate(item, run, spec, now)
            if decision == "start":
                started_now += _start(item, run, spec, why, now)
            elif decision == "skip":
                RunItem.objects.filter(pk=item.pk, status=ItemStatus.PENDING).update(
                    status=ItemStatus.SKIPPED, phase="", finished_at=now, note=why
                )
                run_log(run, f"skipped: {why}", item=item)
            elif decision == "notice":
                _notice(item, run, spec, now)
            elif decision == "logoff":
                if item.phase != ItemPhase.LOGOFF:
                    RunItem.objects.filter(pk=item.pk).update(phase=ItemPhase.LOGOFF, note=why)
                    run_log(run, why, item=item)
            elif item.note != why or item.phase:
                RunItem.objects.filter(pk=item.pk).update(phase="", note=why)

    # The batch is over when every VM in it has finished and no more can start:
    # it is full, or the VMs left are all waiting (in use, booting, busy).
    if in_batch.filter(status=ItemStatus.RUNNING).exists():
        return
    if in_batch.exists():
        _close_batch(run, spec, batch, now)
        return
    _finish_if_done(run, now)


def _close_batch(run: MaintenanceRun, spec: RunSpec, batch: int, now) -> None:
    items = run.items.filter(batch=batch)
    ok = items.filter(status=ItemStatus.SUCCEEDED).count()
    failed = items.filter(status=ItemStatus.FAILED).count()
    label = "canary batch" if batch == 0 and spec.canary_size else f"batch {batch + 1}"
    run_log(run, f"The {label} is done: {ok} succeeded, {failed} failed.")
    run.current_batch = batch + 1
    left = run.items.filter(status=ItemStatus.PENDING).exists()
    reason = _failure_check(run, spec, batch) if left else ""
    if reason:
        run.status = RunStatus.HALTED
        run.halt_reason = reason[:255]
        run.next_batch_at = None
        run.save(update_fields=["current_batch", "status", "halt_reason", "next_batch_at"])
        run_log(run, f"Halted: {reason}", level="error")
        audit_record(action="maintenancerun.halt", obj=run, after={"reason": reason})
        return
    run.next_batch_at = now + timedelta(seconds=spec.pause_seconds) if left else None
    run.save(update_fields=["current_batch", "next_batch_at"])
    if not left:
        _finish_if_done(run, now)


def run_advance(*, run_id: int) -> str:
    """Move one run on: follow its running VMs, then decide what starts (see the
    module's docstring). Safe to call from several workers at once."""
    run = MaintenanceRun.objects.filter(pk=run_id).first()
    if run is None:
        return "gone"
    spec = run.run_spec
    now = timezone.now()
    running = run.items.filter(status=ItemStatus.RUNNING).select_related("vm__pool__region", "run")
    for item in running:
        _item_follow(item, spec, now)

    with transaction.atomic():
        run = MaintenanceRun.objects.select_for_update(skip_locked=True).filter(pk=run_id).first()
        if run is None:
            return "busy"  # another worker is advancing it right now
        run.advanced_at = now
        run.save(update_fields=["advanced_at"])
        if run.status in ACTIVE_RUN_STATUSES:
            _plan(run, spec, now)
        return run.status


def runs_advance() -> dict[str, int]:
    """The periodic job: advance every run that has work left (an active run, or
    a halted or cancelled one whose last VMs are still being worked on)."""
    ids = list(
        MaintenanceRun.objects.filter(
            Q(status__in=ACTIVE_RUN_STATUSES) | Q(items__status=ItemStatus.RUNNING)
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    tally: dict[str, int] = {}
    for run_id in ids:
        try:
            outcome = run_advance(run_id=run_id)
        except Exception:
            # One broken run must not stop the others; the next pass tries again.
            logger.exception("advancing maintenance run %s failed", run_id)
            outcome = "error"
        tally[outcome] = tally.get(outcome, 0) + 1
    return tally


# -- the work on one VM (Celery) ------------------------------------------------


def item_execute(*, item_id: int) -> str:
    """Do the work on one VM: run the guest command to its end, or ask the cloud
    for the reboot, power-off or in-place rebuild (the advance job follows it).
    Claims the item first, so a task delivered twice works once."""
    item = RunItem.objects.select_related("run", "vm__pool__region").filter(pk=item_id).first()
    if item is None:
        return "gone"
    spec = item.run.run_spec
    guest = spec.action in GUEST_ACTIONS
    claimed = RunItem.objects.filter(
        pk=item.pk, status=ItemStatus.RUNNING, phase=ItemPhase.QUEUED
    ).update(phase=ItemPhase.GUEST if guest else ItemPhase.CLOUD, started_at=timezone.now())
    if not claimed:
        return "not queued"
    item.refresh_from_db()
    vm = item.vm
    if guest:
        return _execute_guest(item, spec, vm)
    driver = driver_for(vm.pool.region)
    try:
        if spec.action == MaintenanceAction.REBOOT:
            driver.reboot_server(vm.server_id)
        elif spec.action == MaintenanceAction.POWER_OFF:
            driver.stop_server(vm.server_id)
        elif spec.action == MaintenanceAction.REBUILD:
            # A bound desktop, rebuilt where it is: it stays in use and bound, so
            # its user gets it back, on the new image, at the next connect.
            driver.rebuild_server(vm.server_id, item.run.new_image)
    except CloudError as exc:
        _item_finish(item, ItemStatus.FAILED, error=f"The cloud refused: {exc}")
        return "failed"
    run_log(item.run, f"{spec.action} requested from the cloud", item=item)
    return "started"


def _execute_guest(item: RunItem, spec: RunSpec, vm: VM) -> str:
    credential = item.run.task.credential
    if not vm.ip_address:
        _item_finish(item, ItemStatus.FAILED, error="The VM has no address.")
        return "failed"
    try:
        executor = executor_for(credential)
        if spec.action == MaintenanceAction.SCRIPT:
            result = executor.run_script(
                address=vm.ip_address, script=spec.script, timeout=spec.timeout_seconds
            )
        else:
            result = executor.install_package(
                address=vm.ip_address, package=spec.package, timeout=spec.timeout_seconds
            )
    except (ExecutorError, ValueError) as exc:
        _item_finish(item, ItemStatus.FAILED, error=str(exc))
        return "failed"
    if result.succeeded:
        _item_finish(item, ItemStatus.SUCCEEDED, exit_code=0, output=result.output, note="done")
        return "succeeded"
    _item_finish(
        item,
        ItemStatus.FAILED,
        exit_code=result.exit_code,
        output=result.output,
        error=f"exit code {result.exit_code}: {(result.stderr or result.stdout).strip()[-200:]}",
    )
    return "failed"


def item_notify(*, item_id: int) -> None:
    """Tell the user of a desktop in use that the work is coming (best effort,
    through the task's credential; without one the run log says so)."""
    item = RunItem.objects.select_related("run__task__credential", "vm").filter(pk=item_id).first()
    if item is None:
        return
    spec = item.run.run_spec
    credential = item.run.task.credential
    message = spec.notice_message.replace("{minutes}", str(spec.notice_minutes))
    if credential is None or not item.vm.ip_address:
        run_log(item.run, "no credential to show a notice with; the work goes ahead", item=item)
        return
    try:
        executor_for(credential).notify_users(address=item.vm.ip_address, message=message)
    except (ExecutorError, ValueError) as exc:
        run_log(item.run, f"the notice could not be shown: {exc}", item=item, level="warning")
        return
    run_log(item.run, "notice shown to the user", item=item)


# -- the operator's commands ------------------------------------------------------


@transaction.atomic
def run_cancel(*, run: MaintenanceRun, actor: str, request_id: str = "") -> MaintenanceRun:
    """Stop a run: VMs not started are skipped; the VMs being worked on finish
    (a command half-run in a guest or a rebuild under way cannot be taken back)."""
    run = MaintenanceRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in (*ACTIVE_RUN_STATUSES, RunStatus.HALTED):
        raise RunConflict(f"A run that is {run.get_status_display().lower()} cannot be cancelled.")
    before = {"status": run.status}
    skipped = run.items.filter(status=ItemStatus.PENDING).update(
        status=ItemStatus.SKIPPED, phase="", finished_at=timezone.now(), note="cancelled"
    )
    run.status = RunStatus.CANCELLED
    run.finished_at = timezone.now()
    run.next_batch_at = None
    run.save(update_fields=["status", "finished_at", "next_batch_at"])
    audit_record(
        action="maintenancerun.cancel",
        obj=run,
        actor=actor,
        before=before,
        after={"status": run.status, "skipped": skipped},
        request_id=request_id,
    )
    run_log(run, f"Cancelled by {actor}: {skipped} VMs not started are skipped.", level="warning")
    return run


@transaction.atomic
def run_retry_failed(*, run: MaintenanceRun, actor: str, request_id: str = "") -> MaintenanceRun:
    """Try the failed VMs again, in a new batch; a halted run goes on with the
    VMs it had not started too."""
    run = MaintenanceRun.objects.select_for_update().get(pk=run.pk)
    if run.status in (RunStatus.CANCELLED, RunStatus.ROLLED_BACK):
        raise RunConflict(f"A run that is {run.get_status_display().lower()} cannot be retried.")
    failed = run.items.filter(status=ItemStatus.FAILED)
    names = list(failed.values_list("vm_name", flat=True))
    if not names and run.status != RunStatus.HALTED:
        raise RunConflict("No VM of this run has failed.")
    failed.update(status=ItemStatus.PENDING, phase="", batch=None, note="", not_before=None)
    before = {"status": run.status, "halt_reason": run.halt_reason}
    # The retried VMs form a fresh batch, which starts at once.
    if run.items.filter(batch=run.current_batch).exists():
        run.current_batch += 1
    run.status = RunStatus.WAITING
    run.halt_reason = ""
    run.finished_at = None
    run.next_batch_at = None
    run.save(
        update_fields=["current_batch", "status", "halt_reason", "finished_at", "next_batch_at"]
    )
    audit_record(
        action="maintenancerun.retry",
        obj=run,
        actor=actor,
        before=before,
        after={"status": run.status, "retried": names},
        request_id=request_id,
    )
    run_log(run, f"Retry by {actor}: {len(names)} failed VMs go again.")
    _queue_advance(run)
    return run


@transaction.atomic
def run_rollback(*, run: MaintenanceRun, actor: str, request_id: str = "") -> MaintenanceRun:
    """Undo an image roll-out: the pool goes back to its previous image at once
    (every boot and recycled desktop gets it again), and a new run rebuilds, with
    the same batches and care for VMs in use, every VM that may carry the rolled-out
    image: those this run rebuilt and those booted since the switch. VMs not
    started are skipped. Returns the roll-back run."""
    run = MaintenanceRun.objects.select_for_update().get(pk=run.pk)
    if not run.pool_id or not run.previous_image:
        raise RunConflict("Only an image roll-out can be rolled back.")
    if run.rollback_of_id:
        raise RunConflict("This run is a roll-back itself; roll the image out again instead.")
    if run.status == RunStatus.ROLLED_BACK:
        raise RunConflict("This roll-out was rolled back already.")
    pool = VMPool.objects.select_for_update().get(pk=run.pool_id)
    now = timezone.now()
    run.items.filter(status=ItemStatus.PENDING).update(
        status=ItemStatus.SKIPPED, phase="", finished_at=now, note="rolled back"
    )
    rolled_image = pool.image
    if pool.image != run.previous_image:
        model_update(
            obj=pool, fields={"image": run.previous_image}, actor=actor, request_id=request_id
        )
    entry = _history_entry(
        event="roll-back", image=run.previous_image, previous=rolled_image, actor=actor
    )
    spec = RunSpec.from_json({**run.spec, "image": run.previous_image, "canary_size": 0})
    rollback = MaintenanceRun.objects.create(
        task=run.task,
        trigger="rollback",
        started_by=actor,
        spec=spec.as_json(),
        rollback_of=run,
        pool=pool,
        previous_image=rolled_image,
        new_image=run.previous_image,
        image_switched_at=now,
        image_history=[*run.image_history, entry],
        status=RunStatus.WAITING,
    )
    touched = run.items.filter(status__in=[ItemStatus.SUCCEEDED, ItemStatus.RUNNING]).values("vm")
    since = run.image_switched_at or run.created_at
    vms = (
        VM.objects.filter(pool=pool, state__in=ALIVE_STATES)
        .filter(Q(pk__in=touched) | Q(boot_started_at__gte=since) | Q(requested_at__gte=since))
        .order_by("name")
    )
    RunItem.objects.bulk_create(
        [RunItem(run=rollback, vm=vm, vm_name=vm.name, position=i) for i, vm in enumerate(vms)]
    )
    before = {"status": run.status}
    run.status = RunStatus.ROLLED_BACK
    run.finished_at = run.finished_at or now
    run.next_batch_at = None
    run.image_history = [*run.image_history, entry]
    run.save(update_fields=["status", "finished_at", "next_batch_at", "image_history"])
    audit_record(
        action="maintenancerun.rollback",
        obj=run,
        actor=actor,
        before={**before, "image": rolled_image},
        after={"status": run.status, "image": run.previous_image, "rollback_run": rollback.pk},
        request_id=request_id,
    )
    run_log(
        run,
        f"Rolled back by {actor}: pool {pool.name} boots {run.previous_image} again; "
        f"run #{rollback.pk} rebuilds {len(vms)} VMs.",
        level="warning",
    )
    run_log(
        rollback,
        f"Roll-back of run #{run.pk} by {actor}: {len(vms)} VMs go back to {run.previous_image}.",
    )
    _queue_advance(rollback)
    return rollback
