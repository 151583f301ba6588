"""Refill keeps each pool at its target of ready VMs, within its caps."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from cloud.models import SimServer, SimulatedRegion
from pools.choices import VMState
from pools.models import VM
from pools.services import pool_refill, pools_refill_all, vms_poll_boots
from tests.factories import RegionFactory, VMPoolFactory


def states(pool):
    counts = {}
    for state in VM.objects.filter(pool=pool).values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    return counts


@pytest.mark.django_db
def test_refill_never_boots_more_than_the_cap_at_once():
    region = RegionFactory(simulation__boot_seconds_min=60, simulation__boot_seconds_max=60)
    pool = VMPoolFactory(region=region, target_ready=10, max_concurrent_boots=4)

    assert pool_refill(pool_id=pool.pk) == 4
    assert pool_refill(pool_id=pool.pk) == 0  # still booting: the cap is full
    assert states(pool) == {VMState.BUILDING: 4}
    assert SimServer.objects.filter(region=region).count() == 4


@pytest.mark.django_db
def test_refill_reaches_the_target_as_boots_finish():
    pool = VMPoolFactory(target_ready=5, max_concurrent_boots=2)
    for _ in range(3):
        pool_refill(pool_id=pool.pk)
        vms_poll_boots()
    assert states(pool) == {VMState.READY: 5}
    assert pool_refill(pool_id=pool.pk) == 0  # at target: nothing more


@pytest.mark.django_db
def test_refill_respects_the_pool_maximum_size():
    pool = VMPoolFactory(target_ready=10, max_concurrent_boots=10, max_size=3)
    pool_refill(pool_id=pool.pk)
    assert VM.objects.filter(pool=pool).count() == 3


@pytest.mark.django_db
def test_a_disabled_pool_is_not_refilled():
    pool = VMPoolFactory(enabled=False)
    assert pools_refill_all() == {}
    assert pool_refill(pool_id=pool.pk) == 0


@pytest.mark.django_db
def test_failed_boots_are_marked_and_their_servers_deleted():
    region = RegionFactory(simulation__boot_failure_rate=1.0)
    pool = VMPoolFactory(region=region, target_ready=2)
    pool_refill(pool_id=pool.pk)
    assert vms_poll_boots()["failed"] == 2
    assert states(pool) == {VMState.ERROR: 2}
    assert not SimServer.objects.filter(region=region).exists()
    # Failed VMs do not count: the next pass boots replacements.
    SimulatedRegion.objects.filter(region=region).update(boot_failure_rate=0)
    assert pool_refill(pool_id=pool.pk) == 2


@pytest.mark.django_db
def test_no_valid_host_stops_the_pass_and_shows_on_the_pool():
    region = RegionFactory(hosts=1)
    host = region.sim_hosts.get()
    host.vcpus, host.memory_mb = 2, 8192  # room for 2 VMs of 4,096 MB (1.2 x 8,192)
    host.save()
    pool = VMPoolFactory(region=region, target_ready=5, max_concurrent_boots=5)

    assert pool_refill(pool_id=pool.pk) == 2
    pool.refresh_from_db()
    assert "No valid host" in pool.last_error
    # One VM row records the refusal; the unsent rest do not linger as "booting".
    assert states(pool) == {VMState.BUILDING: 2, VMState.ERROR: 1}


@pytest.mark.django_db
def test_cloud_down_during_poll_leaves_boots_alone_until_it_answers():
    region = RegionFactory(simulation__boot_seconds_min=0)
    pool = VMPoolFactory(region=region, target_ready=2)
    pool_refill(pool_id=pool.pk)
    SimulatedRegion.objects.filter(region=region).update(api_failure_rate=1.0)
    vms_poll_boots()
    assert states(pool) == {VMState.BUILDING: 2}
    SimulatedRegion.objects.filter(region=region).update(api_failure_rate=0)
    vms_poll_boots()
    assert states(pool) == {VMState.READY: 2}


@pytest.mark.django_db
def test_stuck_boots_time_out(settings):
    settings.VM_BOOT_TIMEOUT = 60
    region = RegionFactory(simulation__boot_seconds_min=3600, simulation__boot_seconds_max=3600)
    pool = VMPoolFactory(region=region, target_ready=1)
    pool_refill(pool_id=pool.pk)
    VM.objects.update(boot_started_at=timezone.now() - timedelta(seconds=61))
    vms_poll_boots()
    assert states(pool) == {VMState.ERROR: 1}
    assert not SimServer.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_refills_at_once_boot_each_vm_once():
    region = RegionFactory(simulation__boot_seconds_min=60, simulation__boot_seconds_max=60)
    pool = VMPoolFactory(region=region, target_ready=6, max_concurrent_boots=6)
    barrier = threading.Barrier(4)
    started = []

    def refill():
        try:
            barrier.wait()
            started.append(pool_refill(pool_id=pool.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=refill) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(started) == 6
    assert VM.objects.filter(pool=pool).count() == 6
    assert SimServer.objects.filter(region=region).count() == 6
