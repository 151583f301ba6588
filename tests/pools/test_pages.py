"""The pools pages: caps and calendars edited in the portal, a paused pool says why
and resumes, a VM's page shows why its host was chosen, hosts are cleared."""

import pytest

from cloud.models import Host, Region
from cloud.services import regions_sync_hosts
from pools.models import VM, PoolSchedule, SchedulingPolicy, VMPool
from pools.services import pool_refill, vms_poll_boots
from portal.models import AuditEvent
from tests.factories import RegionFactory, UserFactory, VMPoolFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="operator", role="administrator"))
    return client


def test_pages_need_staff(client, pool):
    client.force_login(UserFactory())
    for url in ["/pools/", f"/pools/{pool.pk}/", "/hosts/", "/scheduling/"]:
        assert client.get(url).status_code == 403, url


def test_edit_a_pools_caps_and_target(staff_client, pool):
    form = {
        "label": "Agents", "image": "win10-2026.12", "target_ready": 12, "min_ready": 3,
        "max_size": 50, "max_concurrent_boots": 4, "pause_after_errors": 5,
        "pause_window_minutes": 10, "enabled": "on",
    }  # fmt: skip
    response = staff_client.post(f"/pools/{pool.pk}/", form)
    assert response.status_code == 302
    pool.refresh_from_db()
    assert (pool.target_ready, pool.max_concurrent_boots, pool.image) == (12, 4, "win10-2026.12")
    event = AuditEvent.objects.get(action="vmpool.update")
    assert event.actor == "operator"
    assert event.before["target_ready"] == 3 and event.after["target_ready"] == 12
    bad = staff_client.post(f"/pools/{pool.pk}/", {**form, "target_ready": 99})
    assert "cannot be above the pool" in bad.content.decode()


def test_add_and_remove_a_calendar_window(staff_client, pool):
    staff_client.post(
        f"/pools/{pool.pk}/schedules/",
        {"label": "Morning shift", "starts": "07:00", "ends": "09:00", "target_ready": 40,
         "weekdays": ["1", "2", "3", "4", "5"]},
    )  # fmt: skip
    schedule = PoolSchedule.objects.get()
    assert (schedule.weekdays, schedule.target_ready) == ([1, 2, 3, 4, 5], 40)
    assert "Morning shift" in staff_client.get(f"/pools/{pool.pk}/").content.decode()
    staff_client.post(f"/pools/{pool.pk}/schedules/{schedule.pk}/delete/")
    assert not PoolSchedule.objects.exists()


def test_a_paused_pool_says_why_and_resumes(staff_client):
    region = RegionFactory(simulation__boot_failure_rate=1.0)
    pool = VMPoolFactory(region=region, target_ready=3, pause_after_errors=3)
    pool_refill(pool_id=pool.pk)
    vms_poll_boots()
    page = staff_client.get(f"/pools/{pool.pk}/").content.decode()
    assert "Refills are paused" in page and "3 boots failed in the last 10 minutes" in page
    staff_client.post(f"/pools/{pool.pk}/resume/")
    assert VMPool.objects.get(pk=pool.pk).paused_at is None


def test_no_valid_host_shows_on_the_pool_page(staff_client):
    region = RegionFactory(hosts=1)
    Host.objects.all().delete()
    region.sim_hosts.update(vcpus=1, memory_mb=1024)
    pool = VMPoolFactory(region=region, target_ready=1)
    pool_refill(pool_id=pool.pk)
    assert "No valid host" in staff_client.get(f"/pools/{pool.pk}/").content.decode()


def test_a_vms_page_shows_why_its_host_was_chosen(staff_client):
    region = RegionFactory(hosts=3)
    regions_sync_hosts()
    pool = VMPoolFactory(region=region, target_ready=1)
    pool_refill(pool_id=pool.pk)
    vm = VM.objects.get()
    page = staff_client.get(f"/vms/{vm.pk}/").content.decode()
    assert f"Placed on <strong>{vm.host_name}</strong>" in page
    for host in Host.objects.all():
        assert host.name in page


def test_clear_a_hosts_failures_and_edit_its_group(staff_client):
    RegionFactory(hosts=1)
    regions_sync_hosts()
    host = Host.objects.get()
    Host.objects.filter(pk=host.pk).update(boot_failures_in_row=4)
    assert "Clear" in staff_client.get("/hosts/").content.decode()
    staff_client.post(f"/hosts/{host.pk}/clear/")
    staff_client.post(
        f"/hosts/{host.pk}/", {"placement_group": "rack-b", "max_concurrent_boots": 2}
    )
    host.refresh_from_db()
    assert (host.boot_failures_in_row, host.placement_group, host.max_concurrent_boots) == (
        0, "rack-b", 2,
    )  # fmt: skip
    assert AuditEvent.objects.filter(action="host.clear_failures").exists()


def test_edit_the_scheduling_policy_and_a_regions_cap(staff_client, region):
    staff_client.post(
        "/scheduling/",
        {"policy-max_concurrent_boots": 80, "policy-max_boots_per_minute": 120,
         "policy-host_max_concurrent_boots": 4, "policy-response_time_factor": -0.1,
         "policy-max_boot_failures_in_row": 2},
    )  # fmt: skip
    policy = SchedulingPolicy.current()
    assert (policy.max_concurrent_boots, policy.response_time_factor) == (80, -0.1)
    staff_client.post(
        f"/regions/{region.pk}/",
        {"label": "East", "enabled": "on", "max_concurrent_boots": 30, "place_by_portal": "on"},
    )
    assert Region.objects.get(pk=region.pk).max_concurrent_boots == 30
    assert "DeskOps (dynamic priority)" in staff_client.get("/scheduling/").content.decode()
