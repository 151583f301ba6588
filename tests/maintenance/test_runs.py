"""Runs of maintenance tasks: rolling batches, the canary, halting on failures,
VMs in use (skip, wait for logoff, notify and force), the window, retry, cancel,
and the image roll-out with its roll-back."""

from datetime import timedelta

import pytest
from django.utils import timezone

from allocation.choices import BindingPolicy
from allocation.models import Binding
from cloud.models import SimServer
from maintenance.choices import ItemPhase, ItemStatus, RunStatus
from maintenance.executors import CommandResult, GuestExecutor
from maintenance.models import RunItem
from maintenance.policy import RunSpec
from maintenance.services import (
    RunConflict,
    item_execute,
    run_advance,
    run_cancel,
    run_retry_failed,
    run_rollback,
    run_start,
    runs_advance,
    task_fire,
)
from pools.choices import VMState
from pools.models import VM
from portal.models import AuditEvent
from tests.factories import VMPoolFactory, fill_pool

from .conftest import (
    drive,
    log_off,
    make_task,
    occupy,
    statuses,
    tick,
    window_around_now,
    window_closed_now,
)

pytestmark = pytest.mark.django_db


class ScriptedGuests(GuestExecutor):
    """Guests that fail on the addresses listed (once each, or always), and record
    every command and notice."""

    def __init__(self, fail: set[str] | None = None, fail_once: set[str] | None = None):
        self.fail = fail or set()
        self.fail_once = set(fail_once or ())
        self.calls: list[str] = []
        self.notices: list[tuple[str, str]] = []

    def run_script(self, *, address, script, timeout):
        self.calls.append(address)
        if address in self.fail or address in self.fail_once:
            self.fail_once.discard(address)
            return CommandResult(exit_code=2, stderr="patch failed")
        return CommandResult(exit_code=0, stdout="ok")

    def install_package(self, *, address, package, timeout):
        return self.run_script(address=address, script=package, timeout=timeout)

    def notify_users(self, *, address, message):
        self.notices.append((address, message))


@pytest.fixture
def guests(monkeypatch):
    scripted = ScriptedGuests()
    monkeypatch.setattr("maintenance.services.runs.executor_for", lambda credential: scripted)
    return scripted


def vms_of(pool):
    return list(VM.objects.filter(pool=pool).order_by("name"))


def address(vm):
    vm.refresh_from_db()
    return vm.ip_address


def test_a_run_goes_batch_by_batch_canary_first_never_past_max_parallel(
    warm_pool, sim_credential, guests
):
    task = make_task(
        pools=[warm_pool], credential=sim_credential, canary_size=1, batch_size=3, max_parallel=2
    )
    run = run_start(task=task, actor="operator")
    assert run.items.count() == 6

    most_running = 0
    for _ in range(30):
        run_advance(run_id=run.pk)
        running = run.items.filter(status=ItemStatus.RUNNING).count()
        most_running = max(most_running, running)
        for item in run.items.filter(status=ItemStatus.RUNNING, phase=ItemPhase.QUEUED):
            item_execute(item_id=item.pk)
        run.refresh_from_db()
        if run.status == RunStatus.SUCCEEDED:
            break

    assert run.status == RunStatus.SUCCEEDED
    batches = list(run.items.order_by("position").values_list("batch", flat=True))
    # The canary alone, then batches of three, in the targets' order.
    assert batches == [0, 1, 1, 1, 2, 2]
    assert most_running == 2
    assert len(guests.calls) == 6
    # Idle VMs were taken out of the pool while patched, and given back.
    assert VM.objects.filter(pool=warm_pool, state=VMState.READY).count() == 6
    assert run.logs.filter(message__contains="canary batch is done").exists()


def test_a_failed_canary_halts_the_run_before_anything_else_starts(
    warm_pool, sim_credential, guests
):
    first = vms_of(warm_pool)[0]
    guests.fail = {address(first)}
    task = make_task(pools=[warm_pool], credential=sim_credential, canary_size=1)

    run = drive(run_start(task=task, actor="operator"))

    assert run.status == RunStatus.HALTED
    assert "canary" in run.halt_reason
    assert statuses(run)[first.name] == ItemStatus.FAILED
    assert run.items.filter(status=ItemStatus.PENDING).count() == 5
    assert guests.calls == [address(first)]
    assert AuditEvent.objects.filter(action="maintenancerun.halt", object_id=str(run.pk)).exists()


def test_the_run_halts_when_the_failure_rate_passes_the_limit(warm_pool, sim_credential, guests):
    vms = vms_of(warm_pool)
    guests.fail = {address(vms[0]), address(vms[2])}
    task = make_task(
        pools=[warm_pool], credential=sim_credential, batch_size=2, max_failure_percent=30
    )

    run = drive(run_start(task=task, actor="operator"))

    # Batch 1: one of two failed (50% > 30%): halt before batch 2.
    assert run.status == RunStatus.HALTED
    assert "1 of 2 VMs failed (50%)" in run.halt_reason
    assert run.items.filter(status=ItemStatus.PENDING).count() == 4


def test_below_the_limit_the_run_goes_on_and_finishes_with_failures(
    warm_pool, sim_credential, guests
):
    guests.fail = {address(vms_of(warm_pool)[5])}
    task = make_task(pools=[warm_pool], credential=sim_credential, max_failure_percent=20)

    run = drive(run_start(task=task, actor="operator"))

    assert run.status == RunStatus.FAILED
    counts = list(statuses(run).values())
    assert counts.count(ItemStatus.SUCCEEDED) == 5 and counts.count(ItemStatus.FAILED) == 1
    failed = run.items.get(status=ItemStatus.FAILED)
    assert failed.exit_code == 2 and "patch failed" in failed.output


def test_retry_runs_the_failed_vms_again_in_a_new_batch(warm_pool, sim_credential, guests):
    vm = vms_of(warm_pool)[1]
    guests.fail_once = {address(vm)}
    task = make_task(pools=[warm_pool], credential=sim_credential)
    run = drive(run_start(task=task, actor="operator"))
    assert run.status == RunStatus.FAILED

    run_retry_failed(run=run, actor="operator")
    run = drive(run)

    assert run.status == RunStatus.SUCCEEDED
    item = run.items.get(vm=vm)
    assert item.attempts == 2 and item.status == ItemStatus.SUCCEEDED
    assert item.batch == 3  # after the three first batches of two
    assert AuditEvent.objects.filter(action="maintenancerun.retry", actor="operator").exists()
    with pytest.raises(RunConflict):
        run_retry_failed(run=run, actor="operator")


def test_cancel_skips_what_has_not_started_and_lets_running_vms_finish(
    warm_pool, sim_credential, guests
):
    task = make_task(pools=[warm_pool], credential=sim_credential, batch_size=2)
    run = run_start(task=task, actor="operator")
    run_advance(run_id=run.pk)  # the first two are queued
    assert run.items.filter(status=ItemStatus.RUNNING).count() == 2

    run_cancel(run=run, actor="operator")
    run = drive(run)

    assert run.status == RunStatus.CANCELLED
    assert list(statuses(run).values()).count(ItemStatus.SKIPPED) == 4
    assert list(statuses(run).values()).count(ItemStatus.SUCCEEDED) == 2
    assert AuditEvent.objects.filter(action="maintenancerun.cancel").exists()
    with pytest.raises(RunConflict):
        run_cancel(run=run, actor="operator")


def test_a_vm_in_use_is_skipped_when_the_task_says_skip(warm_pool, sim_credential, guests):
    busy = vms_of(warm_pool)[0]
    occupy(busy)
    task = make_task(pools=[warm_pool], credential=sim_credential, in_use_policy="skip")

    run = drive(run_start(task=task, actor="operator"))

    item = run.items.get(vm=busy)
    assert item.status == ItemStatus.SKIPPED and item.note == "in use"
    assert address(busy) not in guests.calls
    assert run.status == RunStatus.SUCCEEDED


def test_wait_for_logoff_works_on_the_vm_once_its_user_leaves(warm_pool, sim_credential, guests):
    busy = vms_of(warm_pool)[0]
    binding = occupy(busy)
    task = make_task(
        pools=[warm_pool], credential=sim_credential, in_use_policy="wait", **window_around_now()
    )
    run = drive(run_start(task=task, actor="operator"), ticks=8)
    item = run.items.get(vm=busy)
    assert (item.status, item.phase) == (ItemStatus.PENDING, ItemPhase.LOGOFF)
    assert run.status == RunStatus.RUNNING  # the others are done; it waits

    log_off(busy)
    run = drive(run)

    item.refresh_from_db()
    assert item.status == ItemStatus.SUCCEEDED
    assert run.status == RunStatus.SUCCEEDED
    binding.refresh_from_db()
    assert binding.released_at is None  # a bound desktop stays bound


def test_a_vm_still_in_use_when_the_window_closes_is_skipped(warm_pool, sim_credential, guests):
    busy = vms_of(warm_pool)[0]
    occupy(busy)
    task = make_task(
        pools=[warm_pool], credential=sim_credential, in_use_policy="wait", **window_around_now()
    )
    run = drive(run_start(task=task, actor="operator"), ticks=8)
    assert run.items.get(vm=busy).phase == ItemPhase.LOGOFF

    # The window closes (the run keeps its own copy of the task's parameters).
    closed = {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in window_closed_now().items()
    }
    run.spec = {**run.spec, **closed}
    run.save(update_fields=["spec"])
    run = drive(run)

    item = run.items.get(vm=busy)
    assert item.status == ItemStatus.SKIPPED
    assert item.note == "still in use when the window closed"
    assert run.status == RunStatus.SUCCEEDED


def test_force_notifies_the_user_then_goes_ahead_after_the_notice(
    warm_pool, sim_credential, guests
):
    busy = vms_of(warm_pool)[0]
    binding = occupy(busy)
    task = make_task(
        pools=[warm_pool], credential=sim_credential, in_use_policy="force", notice_minutes=5
    )
    run = run_start(task=task, actor="operator")
    tick(run)
    item = run.items.get(vm=busy)
    assert item.phase == ItemPhase.NOTICE and item.status == ItemStatus.PENDING
    assert item.not_before > timezone.now() + timedelta(minutes=4)
    from maintenance.services import item_notify

    item_notify(item_id=item.pk)
    assert guests.notices and "5 minutes" in guests.notices[0][1]

    run = drive(run, ticks=5)
    assert run.items.get(vm=busy).status == ItemStatus.PENDING  # still in its notice

    RunItem.objects.filter(pk=item.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    run = drive(run)
    item.refresh_from_db()
    assert item.status == ItemStatus.SUCCEEDED
    assert address(busy) in guests.calls
    binding.refresh_from_db()
    assert binding.released_at is None
    assert VM.objects.get(pk=busy.pk).state == VMState.IN_USE


def test_nothing_starts_outside_the_window(warm_pool, sim_credential, guests):
    task = make_task(pools=[warm_pool], credential=sim_credential, **window_closed_now())
    run = drive(run_start(task=task, actor="operator"), ticks=5)

    assert run.status == RunStatus.WAITING
    assert not guests.calls
    assert run.items.filter(status=ItemStatus.PENDING).count() == 6


def test_the_window_opening_lets_the_run_start(warm_pool, sim_credential, guests):
    task = make_task(pools=[warm_pool], credential=sim_credential, **window_around_now())
    run = drive(run_start(task=task, actor="operator"))
    assert run.status == RunStatus.SUCCEEDED
    assert run.started_at is not None


def test_the_pause_between_batches_is_kept(warm_pool, sim_credential, guests):
    task = make_task(pools=[warm_pool], credential=sim_credential, batch_size=3, pause_seconds=600)
    run = drive(run_start(task=task, actor="operator"), ticks=6)

    assert run.items.filter(status=ItemStatus.SUCCEEDED).count() == 3
    assert run.next_batch_at > timezone.now() + timedelta(seconds=500)
    assert run.items.filter(status=ItemStatus.PENDING).count() == 3


def test_a_second_advance_or_a_duplicate_worker_does_no_work_twice(
    warm_pool, sim_credential, guests
):
    task = make_task(pools=[warm_pool], credential=sim_credential, batch_size=2, max_parallel=2)
    run = run_start(task=task, actor="operator")
    run_advance(run_id=run.pk)
    run_advance(run_id=run.pk)
    assert run.items.filter(status=ItemStatus.RUNNING).count() == 2

    item = run.items.filter(status=ItemStatus.RUNNING).first()
    assert item_execute(item_id=item.pk) == "succeeded"
    assert item_execute(item_id=item.pk) == "not queued"
    assert len(guests.calls) == 1


def test_runs_advance_moves_every_active_run_and_a_task_does_not_run_twice(
    warm_pool, sim_credential, guests
):
    task = make_task(pools=[warm_pool], credential=sim_credential)
    run = run_start(task=task, actor="operator")
    with pytest.raises(RunConflict):
        run_start(task=task, actor="operator")
    assert task_fire(task_id=task.pk) is None  # the schedule comes round while it runs

    assert runs_advance() == {"running": 1}
    assert run.items.filter(status=ItemStatus.RUNNING).count() == 2


def test_power_off_leaves_idle_vms_to_their_pool_and_stops_bound_ones(warm_pool, guests):
    vms = vms_of(warm_pool)
    occupy(vms[0], session=False)  # bound, user logged off
    task = make_task(pools=[warm_pool], action="power_off", script="")

    run = drive(run_start(task=task, actor="operator"))

    assert run.status == RunStatus.SUCCEEDED
    item = run.items.get(vm=vms[0])
    assert item.status == ItemStatus.SUCCEEDED and item.note == "powered off"
    assert SimServer.objects.get(pk=vms[0].server_id).status == "SHUTOFF"
    assert run.items.filter(status=ItemStatus.SKIPPED).count() == 5


def test_reboot_holds_an_idle_vm_out_of_the_pool_until_it_is_back(warm_pool, guests):
    vm = vms_of(warm_pool)[0]
    task = make_task(vms=[vm], action="reboot", script="")
    run = run_start(task=task, actor="operator")
    run_advance(run_id=run.pk)
    vm.refresh_from_db()
    assert vm.state == VMState.IN_USE  # held: no login gets a rebooting desktop

    run = drive(run)

    assert run.status == RunStatus.SUCCEEDED
    vm.refresh_from_db()
    assert vm.state == VMState.READY


def rollout_world(pool):
    """The pool's VMs: four idle, one bound to a user who logged off, one
    floating desktop in use."""
    vms = vms_of(pool)
    bound = occupy(vms[4], kind=BindingPolicy.USER, session=False)
    floating = occupy(vms[5], kind=BindingPolicy.FLOATING, session=True)
    return vms, bound, floating


def server_image(vm) -> str:
    vm.refresh_from_db()
    return SimServer.objects.get(pk=vm.server_id).image


def test_an_image_rollout_replaces_idle_vms_and_rebuilds_bound_ones_in_place(warm_pool):
    vms, bound, floating = rollout_world(warm_pool)
    task = make_task(
        name="win11",
        action="rebuild",
        script="",
        image="win11",
        pool=warm_pool,
        canary_size=1,
        batch_size=2,
    )

    run = run_start(task=task, actor="operator")
    warm_pool.refresh_from_db()
    assert warm_pool.image == "win11"  # new boots and recycled desktops get it now
    assert run.previous_image == "win10" and run.new_image == "win11"
    run = drive(run)

    assert run.status == RunStatus.SUCCEEDED
    for vm in vms[:5]:
        assert server_image(vm) == "win11", vm.name
    # The idle ones went back to the pool; the bound one is still its user's.
    assert VM.objects.filter(pk__in=[vm.pk for vm in vms[:4]], state=VMState.READY).count() == 4
    bound.refresh_from_db()
    assert bound.released_at is None and bound.vm.state == VMState.IN_USE
    # The floating desktop in use is left to its release (recycling rebuilds it).
    item = run.items.get(vm=vms[5])
    assert item.status == ItemStatus.SKIPPED and "when released" in item.note
    assert server_image(vms[5]) == "win10"
    assert AuditEvent.objects.filter(action="vmpool.update", object_id=str(warm_pool.pk)).exists()


def test_a_bound_vm_in_use_is_rebuilt_only_after_its_user_logs_off(warm_pool):
    vms = vms_of(warm_pool)
    binding = occupy(vms[0], kind=BindingPolicy.SEAT, session=True)
    task = make_task(
        action="rebuild",
        script="",
        image="win11",
        pool=warm_pool,
        in_use_policy="wait",
        **window_around_now(),
    )
    run = drive(run_start(task=task, actor="operator"), ticks=8)
    assert run.items.get(vm=vms[0]).phase == ItemPhase.LOGOFF
    assert server_image(vms[0]) == "win10"

    log_off(vms[0])
    run = drive(run)

    assert run.items.get(vm=vms[0]).status == ItemStatus.SUCCEEDED
    assert server_image(vms[0]) == "win11"
    binding.refresh_from_db()
    assert binding.released_at is None


def test_rollback_restores_the_previous_image_and_rebuilds_the_rolled_vms(warm_pool):
    vms, bound, _ = rollout_world(warm_pool)
    task = make_task(action="rebuild", script="", image="win11-broken", pool=warm_pool)
    run = drive(run_start(task=task, actor="operator"))
    # A VM booted after the switch carries the new image too.
    fill_pool(warm_pool, 5)  # four ready already, one more boots
    newcomer = VM.objects.filter(pool=warm_pool).exclude(pk__in=[vm.pk for vm in vms]).get()
    assert server_image(newcomer) == "win11-broken"

    rollback = run_rollback(run=run, actor="operator")
    warm_pool.refresh_from_db()
    assert warm_pool.image == "win10"
    run.refresh_from_db()
    assert run.status == RunStatus.ROLLED_BACK
    assert [h["event"] for h in run.image_history] == ["roll-out", "roll-back"]
    assert run.image_history[-1]["image"] == "win10"
    assert rollback.rollback_of == run and rollback.new_image == "win10"
    rolled = {item.vm_id for item in rollback.items.all()}
    assert rolled == {vm.pk for vm in vms[:5]} | {newcomer.pk}

    rollback = drive(rollback)

    assert rollback.status == RunStatus.SUCCEEDED
    for vm in [*vms[:5], newcomer]:
        assert server_image(vm) == "win10", vm.name
    bound.refresh_from_db()
    assert bound.released_at is None
    assert AuditEvent.objects.filter(action="maintenancerun.rollback", actor="operator").exists()
    with pytest.raises(RunConflict):
        run_rollback(run=run, actor="operator")
    with pytest.raises(RunConflict):
        run_rollback(run=rollback, actor="operator")


def test_only_a_rollout_rolls_back_and_one_pool_rolls_out_once_at_a_time(warm_pool, sim_credential):
    script_run = run_start(
        task=make_task(pools=[warm_pool], credential=sim_credential), actor="operator"
    )
    with pytest.raises(RunConflict):
        run_rollback(run=script_run, actor="operator")
    first = make_task(name="a", action="rebuild", script="", image="win11", pool=warm_pool)
    second = make_task(name="b", action="rebuild", script="", image="win12", pool=warm_pool)
    run_start(task=first, actor="operator")
    with pytest.raises(RunConflict):
        run_start(task=second, actor="operator")


def test_a_run_keeps_the_parameters_it_started_with(warm_pool, sim_credential, guests):
    from maintenance.services import task_save

    task = make_task(pools=[warm_pool], credential=sim_credential, batch_size=2)
    run = run_start(task=task, actor="operator")
    task_save(task=task, fields={"batch_size": 6}, actor="operator")

    assert RunSpec.from_json(run.spec).batch_size == 2
    run_advance(run_id=run.pk)
    assert run.items.filter(status=ItemStatus.RUNNING).count() == 2


def test_a_vm_gone_before_its_turn_is_skipped(warm_pool, sim_credential, guests):
    vm = vms_of(warm_pool)[0]
    task = make_task(vms=[vm], credential=sim_credential)
    run = run_start(task=task, actor="operator")
    VM.objects.filter(pk=vm.pk).update(state=VMState.ERROR)

    run = drive(run)

    assert run.items.get().status == ItemStatus.SKIPPED
    assert run.status == RunStatus.SUCCEEDED


def test_a_run_of_a_pool_in_another_region_only_takes_its_targets(sim_credential, guests):
    pool = VMPoolFactory(name="west")
    fill_pool(pool, 2)
    other = VMPoolFactory(name="east")
    fill_pool(other, 2)
    task = make_task(pools=[pool], credential=sim_credential)
    run = drive(run_start(task=task, actor="operator"))
    assert set(run.items.values_list("vm__pool__name", flat=True)) == {"west"}
    assert Binding.objects.count() == 0
