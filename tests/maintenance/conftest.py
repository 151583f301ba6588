"""Fixtures of the maintenance tests: a pool of booted VMs on the simulated cloud,
desktops in use, tasks built through the real service, and `drive`, which plays
the beat job, the Celery workers and the boot poller by calling their services."""

from datetime import timedelta

import pytest
from django.utils import timezone

from allocation.choices import BindingPolicy
from allocation.models import Binding, DesktopSession
from maintenance.choices import ACTIVE_RUN_STATUSES, ItemPhase, ItemStatus
from maintenance.models import MaintenanceRun, RunItem
from maintenance.services import credential_save, item_execute, run_advance, task_save
from pools.choices import VMState
from pools.models import VM
from pools.services import vms_poll_boots
from tests.factories import (
    AllocatorFactory,
    TerminalFactory,
    UserFactory,
    VMPoolFactory,
    fill_pool,
)


@pytest.fixture(autouse=True)
def _instant_guests(settings):
    settings.MAINTENANCE_SIM_SECONDS = 0
    settings.MAINTENANCE_SIM_FAILURE_RATE = 0.0


@pytest.fixture
def staff(db):
    return UserFactory(username="operator", role="administrator")


@pytest.fixture
def sim_credential(db):
    return credential_save(
        credential=None, fields={"name": "sim", "transport": "simulated"}, actor="test"
    )


@pytest.fixture
def warm_pool(db):
    """A pool of six ready VMs, booted on the simulated cloud."""
    pool = VMPoolFactory(name="agents", image="win10")
    fill_pool(pool, 6)
    return pool


def window_around_now(hours: float = 1) -> dict:
    """A window open now, in the portal's time zone."""
    now = timezone.localtime()
    start = (now - timedelta(hours=hours)).time().replace(microsecond=0)
    end = (now + timedelta(hours=hours)).time().replace(microsecond=0)
    return {"window_start": start, "window_end": end, "window_ends_next_day": end < start}


def window_closed_now() -> dict:
    """A window that opens in an hour and lasts an hour."""
    now = timezone.localtime()
    start = (now + timedelta(hours=1)).time().replace(microsecond=0)
    end = (now + timedelta(hours=2)).time().replace(microsecond=0)
    return {"window_start": start, "window_end": end, "window_ends_next_day": end < start}


def make_task(*, pools=(), vms=(), allocators=(), actor="test", **fields):
    values = {
        "name": "patch",
        "action": "script",
        "script": "echo patched",
        "batch_size": 2,
        "max_parallel": 2,
        "pause_seconds": 0,
        "canary_size": 0,
        "max_failure_percent": 50,
        "in_use_policy": "skip",
    }
    values.update(fields)
    return task_save(
        task=None,
        fields=values,
        target_pools=list(pools),
        target_vms=list(vms),
        target_allocators=list(allocators),
        actor=actor,
    )


def occupy(vm: VM, *, kind: str = BindingPolicy.USER, session: bool = True) -> Binding:
    """Hand a ready VM to a user as a connect would: in use, bound, and (with
    `session`) with an open desktop session."""
    VM.objects.filter(pk=vm.pk).update(state=VMState.IN_USE, assigned_at=timezone.now())
    user = UserFactory()
    allocator = AllocatorFactory(pools=[vm.pool], binding_policy=kind)
    binding = Binding.objects.create(allocator=allocator, kind=kind, user=user, vm=vm)
    if session:
        DesktopSession.objects.create(user=user, terminal=TerminalFactory(), vm=vm, binding=binding)
    return binding


def log_off(vm: VM) -> None:
    DesktopSession.objects.filter(vm=vm, ended_at__isnull=True).update(
        ended_at=timezone.now(), ended_reason="disconnect"
    )


def tick(run: MaintenanceRun) -> MaintenanceRun:
    """One pass of everything that moves a run: the advance job, the workers
    that pick up queued items, and the pool's boot poller."""
    run_advance(run_id=run.pk)
    queued = RunItem.objects.filter(run=run, status=ItemStatus.RUNNING, phase=ItemPhase.QUEUED)
    for item in queued:
        item_execute(item_id=item.pk)
    vms_poll_boots()
    run.refresh_from_db()
    return run


def drive(run: MaintenanceRun, *, ticks: int = 40) -> MaintenanceRun:
    """Tick until the run is final and nothing of it is running."""
    for _ in range(ticks):
        tick(run)
        busy = run.items.filter(status=ItemStatus.RUNNING).exists()
        if run.status not in ACTIVE_RUN_STATUSES and not busy:
            break
    return run


def statuses(run: MaintenanceRun) -> dict[str, str]:
    return dict(run.items.values_list("vm_name", "status"))
