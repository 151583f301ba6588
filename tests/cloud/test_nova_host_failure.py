"""Host-failure recovery against real Nova: desktops booted by the pool refill on
the harness's computes, users connected through the thin-client API, then one
nova-compute service stopped and forced down (as a fencing agent does). DeskOps
must see the host down at its next sync, take it out of placement, mark its VMs
lost and give every affected user a fresh desktop that Nova booted elsewhere."""

import time
from collections import Counter

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from allocation.choices import BindingPolicy
from allocation.models import Binding
from allocation.services.helpdesk import swaps_complete_pending
from cloud.choices import HostState
from cloud.drivers import driver_for
from cloud.models import Host
from cloud.services import regions_sync_hosts
from monitoring.choices import IncidentStatus
from monitoring.models import Incident
from monitoring.recovery import host_return_to_service, hosts_recover_failed, incidents_follow
from pools.choices import VMState
from pools.models import VM, SchedulingPolicy, VMPool
from pools.services import pool_refill, pools_refill_all, vms_poll_boots
from tests.factories import PASSWORD, AllocatorFactory, TerminalFactory, UserFactory, VMPoolFactory

pytestmark = [pytest.mark.nova, pytest.mark.django_db(transaction=True)]
API = "/api/thin-client/v1"
WAIT_SECONDS = 120


def wait_until(condition, what: str, step=None) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {WAIT_SECONDS} s"
        if step:
            step()
        time.sleep(0.3)


def compute_service(driver, host: str) -> dict:
    answer = driver.connection.compute.get(
        "/os-services", params={"binary": "nova-compute", "host": host}, microversion="2.53"
    )
    return answer.json()["services"][0]


def force_down(driver, host: str, down: bool) -> int:
    service = compute_service(driver, host)
    return driver.connection.compute.put(
        f"/os-services/{service['id']}", json={"forced_down": down}, microversion="2.53"
    ).status_code


def harness_control(driver, harness, host: str, action: str) -> None:
    url = f"{harness.info['base_url']}/harness/computes/{host}/{action}"
    answer = driver.connection.session.post(url, raise_exc=False)
    assert answer.status_code == 200, answer.text


def follow_boots() -> None:
    vms_poll_boots()
    swaps_complete_pending()
    incidents_follow()


@override_settings(HOST_FAILURE_THRESHOLD=0)
def test_users_of_a_stopped_compute_get_desktops_nova_booted_elsewhere(nova_region, nova_harness):
    SchedulingPolicy.objects.update_or_create(
        pk=1, defaults={"max_concurrent_boots": 50, "host_max_concurrent_boots": 50}
    )
    driver = driver_for(nova_region)
    regions_sync_hosts()
    pool = VMPoolFactory(
        region=nova_region,
        flavor="desk.small",
        vcpus=1,
        memory_mb=1024,
        image="desk-win10",
        network=nova_harness.info["network"]["name"],
        target_ready=6,
        max_concurrent_boots=6,
    )
    pool_refill(pool_id=pool.pk)
    wait_until(
        lambda: VM.objects.filter(pool=pool, state=VMState.READY).count() == 6,
        "six desktops ready",
        step=vms_poll_boots,
    )
    AllocatorFactory(is_default=True, pools=[pool], binding_policy=BindingPolicy.USER)
    terminal = TerminalFactory()
    client = APIClient()
    users = [UserFactory() for _ in range(4)]
    for user in users:
        body = {"username": user.username, "password": PASSWORD, "terminal": terminal.serial}
        assert client.post(f"{API}/connect", body, format="json").status_code == 200

    bound = Counter(VM.objects.filter(state=VMState.IN_USE).values_list("host_name", flat=True))
    victim = bound.most_common(1)[0][0]
    affected = set(
        Binding.objects.filter(released_at=None, vm__host_name=victim).values_list(
            "user_id", flat=True
        )
    )
    assert affected

    harness_control(driver, nova_harness, victim, "stop")
    assert force_down(driver, victim, True) == 200
    try:
        regions_sync_hosts()
        assert Host.objects.get(region=nova_region, name=victim).state == HostState.DOWN
        assert hosts_recover_failed() == {victim: len(affected)}
        VMPool.objects.filter(pk=pool.pk).update(target_ready=2)
        wait_until(
            lambda: not Incident.objects.filter(status=IncidentStatus.OPEN).exists(),
            "every affected user re-served",
            step=lambda: (pools_refill_all(), follow_boots()),
        )
        incident = Incident.objects.get()
        assert incident.status == IncidentStatus.RECOVERED
        assert incident.users_affected == len(affected)
        assert incident.recovery_seconds < 300
        bindings = Binding.objects.filter(released_at=None).select_related("vm")
        vm_ids = [b.vm_id for b in bindings]
        assert len(vm_ids) == len(set(vm_ids)) == len(users)
        for binding in bindings:
            server = driver.get_server(binding.vm.server_id)
            assert server.host != victim and server.is_ready, (binding.user_id, server)
        assert not VM.objects.filter(host_name=victim, state__in=[VMState.READY, VMState.IN_USE])
    finally:
        harness_control(driver, nova_harness, victim, "start")
        wait_until(lambda: force_down(driver, victim, False) == 200, "compute back up")
        host = Host.objects.get(region=nova_region, name=victim)
        host_return_to_service(host=host, actor="test")
        for vm in VM.objects.filter(pool=pool).exclude(server_id=""):
            driver.delete_server(vm.server_id)
