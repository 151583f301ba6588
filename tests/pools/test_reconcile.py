"""Reconciliation repairs what a killed worker or the cloud left behind: no orphan
server survives, no VM is counted twice, lost VMs are marked."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from cloud.drivers import ServerSpec, driver_for
from cloud.models import SimServer, SimulatedRegion
from pools.choices import ALIVE_STATES, VMState
from pools.models import VM
from pools.services import pool_refill, region_reconcile, vms_poll_boots
from pools.services.refill import _plan_boots
from portal.models import AuditEvent
from tests.factories import RegionFactory, VMPoolFactory

ROOT = Path(__file__).resolve().parents[2]


def spec_for(vm):
    pool = vm.pool
    return ServerSpec(
        name=vm.name, flavor=pool.flavor, vcpus=pool.vcpus, memory_mb=pool.memory_mb,
        image=pool.image,
    )  # fmt: skip


def assert_agreement(region, pool, target):
    """Every server belongs to exactly one alive VM and the pool holds its target."""
    servers = set(
        str(pk) for pk in SimServer.objects.filter(region=region).values_list("pk", flat=True)
    )
    alive = VM.objects.filter(pool=pool, state__in=ALIVE_STATES)
    assert servers == set(alive.values_list("server_id", flat=True))
    assert alive.count() == target


@pytest.mark.django_db
def test_a_server_created_by_a_worker_that_died_is_adopted_not_doubled(settings):
    settings.RECONCILE_GRACE_SECONDS = 0
    region = RegionFactory(simulation__boot_seconds_min=600)
    pool = VMPoolFactory(region=region, target_ready=3)
    # The worker planned three VMs, created the first server, and died before
    # saving its id.
    _, planned = _plan_boots(pool_id=pool.pk)
    driver_for(region).create_server(spec_for(planned[0]))

    report = region_reconcile(region=region)

    assert report.adopted == [planned[0].name] and report.deleted == []
    adopted = VM.objects.get(pk=planned[0].pk)
    assert adopted.state == VMState.BUILDING and adopted.server_id
    assert AuditEvent.objects.filter(action="vm.adopt").count() == 1
    # The other two rows still count as booting; a refill adds nothing, and the
    # rows that never reached the cloud end as errors, then get replaced.
    assert pool_refill(pool_id=pool.pk) == 0
    VM.objects.filter(state=VMState.REQUESTED).update(
        requested_at=adopted.requested_at.replace(year=2000)
    )
    vms_poll_boots()
    assert pool_refill(pool_id=pool.pk) == 2
    assert_agreement(region, pool, 3)


@pytest.mark.django_db
def test_unknown_servers_are_deleted_after_the_grace_period(settings):
    region = RegionFactory()
    pool = VMPoolFactory(region=region, target_ready=1)
    pool_refill(pool_id=pool.pk)
    stray = driver_for(region).create_server(spec_for(VM(name="someone-elses", pool=pool)))

    settings.RECONCILE_GRACE_SECONDS = 3600
    assert region_reconcile(region=region).deleted == []  # too young to judge
    settings.RECONCILE_GRACE_SECONDS = 0
    settings.RECONCILE_ORPHANS = "report"
    assert region_reconcile(region=region).orphans_left == ["someone-elses"]
    settings.RECONCILE_ORPHANS = "delete"
    assert region_reconcile(region=region).deleted == ["someone-elses"]
    assert not SimServer.objects.filter(pk=stray).exists()
    assert_agreement(region, pool, 1)


@pytest.mark.django_db
def test_vms_the_cloud_lost_are_marked_lost():
    region = RegionFactory()
    pool = VMPoolFactory(region=region, target_ready=2)
    pool_refill(pool_id=pool.pk)
    vms_poll_boots()
    gone = VM.objects.first()
    SimServer.objects.filter(pk=gone.server_id).delete()

    report = region_reconcile(region=region)

    assert report.lost == [gone.name]
    gone.refresh_from_db()
    assert gone.state == VMState.LOST
    assert AuditEvent.objects.filter(action="vm.lost", object_id=str(gone.pk)).exists()
    assert pool_refill(pool_id=pool.pk) == 1  # the lost VM is replaced


@pytest.mark.django_db
def test_a_cloud_that_is_down_is_left_alone():
    from cloud.errors import CloudUnavailable

    region = RegionFactory()
    pool = VMPoolFactory(region=region, target_ready=1)
    pool_refill(pool_id=pool.pk)
    SimulatedRegion.objects.filter(region=region).update(api_failure_rate=1.0)
    with pytest.raises(CloudUnavailable):
        region_reconcile(region=region)
    assert VM.objects.get().state == VMState.BUILDING


REFILL_IN_A_WORKER = """
import django
django.setup()
from pools.services import pool_refill
print("refilling", flush=True)
pool_refill(pool_id={pool_id})
print("done", flush=True)
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_killing_a_worker_mid_refill_leaves_no_orphan_and_no_double_count(settings):
    """A real process runs the refill against the test database and is killed
    with SIGKILL half-way through its cloud calls."""
    settings.RECONCILE_GRACE_SECONDS = 0
    region = RegionFactory(hosts=4, simulation__boot_seconds_min=600)
    SimulatedRegion.objects.filter(region=region).update(api_latency_ms=400)
    pool = VMPoolFactory(region=region, target_ready=8, max_concurrent_boots=8)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", REFILL_IN_A_WORKER.format(pool_id=pool.pk)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert worker.stdout.readline().strip() == "refilling"
    deadline = time.monotonic() + 30
    while SimServer.objects.filter(region=region).count() < 3:  # part-way through
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert VM.objects.filter(pool=pool, state=VMState.REQUESTED).exists()

    SimulatedRegion.objects.filter(region=region).update(api_latency_ms=0)
    region_reconcile(region=region)
    VM.objects.filter(pool=pool, state=VMState.REQUESTED, server_id="").update(
        requested_at=VM.objects.first().requested_at.replace(year=2000)
    )
    vms_poll_boots()
    pool_refill(pool_id=pool.pk)
    region_reconcile(region=region)

    assert_agreement(region, pool, 8)
