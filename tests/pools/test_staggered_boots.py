"""Staggered boots: every cap on concurrent boots holds, boots per minute are
limited, calendar targets raise and lower a pool, a failing pool pauses, a failing
host stops getting placements, and each VM records why its host was chosen."""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from cloud.models import Host, Region, SimServer, SimulatedRegion
from cloud.services import regions_sync_hosts
from pools.choices import BOOTING_STATES, VMState
from pools.models import VM, PoolSchedule, SchedulingPolicy
from pools.selectors import pool_target
from pools.services import (
    host_clear_failures,
    pool_refill,
    pool_resume,
    pools_refill_all,
    vms_poll_boots,
)
from tests.factories import RegionFactory, VMPoolFactory

pytestmark = pytest.mark.django_db


def slow_region(hosts=4, **simulation):
    region = RegionFactory(
        hosts=hosts,
        simulation__boot_seconds_min=600,
        simulation__boot_seconds_max=600,
        **{f"simulation__{k}": v for k, v in simulation.items()},
    )
    regions_sync_hosts()
    return region


def booting(**filters) -> int:
    return VM.objects.filter(state__in=BOOTING_STATES, **filters).count()


def policy(**values) -> SchedulingPolicy:
    current = SchedulingPolicy.current()
    for name, value in values.items():
        setattr(current, name, value)
    current.save()
    return current


def test_the_global_cap_holds_across_pools():
    policy(max_concurrent_boots=7, host_max_concurrent_boots=50)
    region = slow_region()
    for _ in range(3):
        VMPoolFactory(region=region, target_ready=10, max_concurrent_boots=10)
    pools_refill_all()
    pools_refill_all()
    assert booting() == 7


def test_the_region_cap_holds():
    policy(host_max_concurrent_boots=50)
    east, west = slow_region(), slow_region()
    Region.objects.filter(pk=east.pk).update(max_concurrent_boots=4)
    VMPoolFactory(region=east, target_ready=10, max_concurrent_boots=10)
    VMPoolFactory(region=west, target_ready=10, max_concurrent_boots=10)
    pools_refill_all()
    assert booting(pool__region=east) == 4
    assert booting(pool__region=west) == 10


def test_the_per_host_cap_spreads_a_burst_over_the_hosts():
    policy(host_max_concurrent_boots=2)
    region = slow_region(hosts=3)
    pool = VMPoolFactory(region=region, target_ready=20, max_concurrent_boots=20)
    assert pool_refill(pool_id=pool.pk) == 6  # 3 hosts x 2
    per_host = {
        h: VM.objects.filter(host_name=h).count()
        for h in Host.objects.values_list("name", flat=True)
    }
    assert sorted(per_host.values()) == [2, 2, 2]
    # The cloud put each server where DeskOps said.
    for vm in VM.objects.all():
        assert SimServer.objects.get(pk=vm.server_id).host.name == vm.host_name


def test_boots_per_minute_are_limited():
    policy(max_boots_per_minute=5, host_max_concurrent_boots=50)
    region = RegionFactory(hosts=4)  # instant boots: only the rate holds them back
    regions_sync_hosts()
    pool = VMPoolFactory(region=region, target_ready=20, max_concurrent_boots=20)
    for _ in range(3):
        pool_refill(pool_id=pool.pk)
        vms_poll_boots()
    assert VM.objects.count() == 5
    # A minute later, five more.
    VM.objects.update(requested_at=timezone.now() - timedelta(seconds=61))
    assert pool_refill(pool_id=pool.pk) == 5


def test_every_vm_records_why_its_host_was_chosen():
    region = slow_region(hosts=2)
    pool = VMPoolFactory(region=region, target_ready=1)
    pool_refill(pool_id=pool.pk)
    vm = VM.objects.get()
    assert vm.placement["host"] == vm.host_name
    candidates = {c["host"]: c for c in vm.placement["candidates"]}
    assert set(candidates) == set(Host.objects.values_list("name", flat=True))
    assert all(c["eligible"] and c["free_units"] > 0 for c in candidates.values())


def test_a_host_whose_boots_keep_failing_gets_no_placements_until_cleared():
    policy(max_boot_failures_in_row=2, host_max_concurrent_boots=50)
    region = RegionFactory(hosts=2)
    regions_sync_hosts()
    bad, good = Host.objects.order_by("name")
    Host.objects.filter(pk=bad.pk).update(boot_failures_in_row=2)
    pool = VMPoolFactory(region=region, target_ready=4, max_concurrent_boots=4)
    pool_refill(pool_id=pool.pk)
    assert set(VM.objects.values_list("host_name", flat=True)) == {good.name}
    bad.refresh_from_db()
    host_clear_failures(host=bad, actor="operator")
    VM.objects.all().delete()
    pool_refill(pool_id=pool.pk)
    assert set(VM.objects.values_list("host_name", flat=True)) == {good.name, bad.name}


def test_failed_boots_count_against_their_host_and_a_success_clears_it():
    region = RegionFactory(hosts=1, simulation__boot_failure_rate=1.0)
    regions_sync_hosts()
    pool = VMPoolFactory(region=region, target_ready=2, pause_after_errors=0)
    pool_refill(pool_id=pool.pk)
    vms_poll_boots()
    assert Host.objects.get().boot_failures_in_row == 2
    SimulatedRegion.objects.filter(region=region).update(boot_failure_rate=0)
    SchedulingPolicy.objects.update(max_boot_failures_in_row=0)  # 0: never skip
    pool_refill(pool_id=pool.pk)
    vms_poll_boots()
    assert Host.objects.get().boot_failures_in_row == 0


def test_a_pool_pauses_after_n_errors_in_m_minutes_and_says_why():
    region = RegionFactory(hosts=2, simulation__boot_failure_rate=1.0)
    pool = VMPoolFactory(region=region, target_ready=3, pause_after_errors=3)
    pool_refill(pool_id=pool.pk)
    vms_poll_boots()
    pool.refresh_from_db()
    assert pool.paused_at is not None
    assert pool.pause_reason.startswith("3 boots failed in the last 10 minutes")
    assert "simulated boot failure" in pool.pause_reason
    assert pool_refill(pool_id=pool.pk) == 0
    SimulatedRegion.objects.filter(region=region).update(boot_failure_rate=0)
    pool_resume(pool=pool, actor="operator")
    assert pool_refill(pool_id=pool.pk) == 3


def test_old_errors_do_not_pause_a_pool():
    region = RegionFactory(hosts=2, simulation__boot_failure_rate=1.0)
    pool = VMPoolFactory(region=region, target_ready=2, pause_after_errors=3)
    pool_refill(pool_id=pool.pk)
    vms_poll_boots()
    VM.objects.update(updated_at=timezone.now() - timedelta(minutes=11))
    pool_refill(pool_id=pool.pk)
    vms_poll_boots()
    pool.refresh_from_db()
    assert pool.paused_at is None  # 2 recent failures, 2 old ones


@pytest.mark.parametrize(
    "moment, expected",
    [
        ("2026-11-23 07:30", 40),  # Monday, ahead of the morning shift
        ("2026-11-23 12:00", 25),  # Monday midday: the day window
        ("2026-11-23 23:30", 2),  # night window, Monday evening
        ("2026-11-24 03:00", 2),  # past midnight: still Monday's night window
        ("2026-11-28 07:30", 10),  # Saturday: no morning window, usual target
    ],
)
def test_calendar_targets(moment, expected, settings):
    from datetime import datetime

    pool = VMPoolFactory(target_ready=10)
    weekdays = [1, 2, 3, 4, 5]
    PoolSchedule.objects.create(
        pool=pool, weekdays=weekdays, starts=time(7), ends=time(9), target_ready=40
    )
    PoolSchedule.objects.create(
        pool=pool, weekdays=weekdays, starts=time(8), ends=time(18), target_ready=25
    )
    PoolSchedule.objects.create(
        pool=pool, weekdays=weekdays, starts=time(22), ends=time(5), target_ready=2
    )
    at = timezone.make_aware(datetime.fromisoformat(moment))
    assert pool_target(pool, at=at) == expected


def test_refill_follows_the_calendar():
    pool = VMPoolFactory(target_ready=1, max_concurrent_boots=10)
    now = timezone.localtime()
    PoolSchedule.objects.create(
        pool=pool,
        starts=(now - timedelta(minutes=1)).time(),
        ends=(now + timedelta(minutes=5)).time(),
        target_ready=6,
    )
    assert pool_refill(pool_id=pool.pk) == 6
    assert VM.objects.filter(state=VMState.BUILDING).count() == 6
