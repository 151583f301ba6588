"""The simulated cloud behaves like a small Nova: capacity under overcommit,
boots that take time, and the faults it is told to inject."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cloud.choices import HostState
from cloud.drivers import ServerSpec, driver_for
from cloud.errors import CloudUnavailable, NoValidHost, ServerNotFound
from cloud.models import SimServer, SimulatedRegion
from tests.factories import RegionFactory

pytestmark = pytest.mark.django_db


def spec(name="vm", vcpus=2, memory_mb=4096, host=""):
    return ServerSpec(
        name=name, flavor="desk.medium", vcpus=vcpus, memory_mb=memory_mb, image="win10", host=host
    )


def test_capacity_follows_the_overcommit_ratios():
    # One host of 4 vCPU / 10,000 MB: CPU 1:2 gives 8 vCPU, memory 1:1.2 gives 12,000 MB.
    region = RegionFactory(hosts=1)
    host = region.sim_hosts.get()
    host.vcpus, host.memory_mb = 4, 10000
    host.save()
    cloud = driver_for(region)

    for index in range(3):  # 3 x 4,000 MB = 12,000 MB: exactly full
        cloud.create_server(spec(f"vm-{index}", vcpus=2, memory_mb=4000))
    with pytest.raises(NoValidHost):
        cloud.create_server(spec("one-too-many", vcpus=1, memory_mb=1))

    (reported,) = cloud.list_hosts()
    assert (reported.vcpus_used, reported.memory_mb_used, reported.running_vms) == (6, 12000, 3)


def test_servers_go_to_the_host_with_most_free_memory():
    region = RegionFactory(hosts=2)
    cloud = driver_for(region)
    first = cloud.get_server(cloud.create_server(spec("a", memory_mb=8192))).host
    second = cloud.get_server(cloud.create_server(spec("b", memory_mb=4096))).host
    assert first != second


def test_a_down_host_gets_no_servers():
    region = RegionFactory(hosts=2)
    down, up = region.sim_hosts.order_by("name")
    down.state = HostState.DOWN
    down.save()
    cloud = driver_for(region)
    hosts = {cloud.get_server(cloud.create_server(spec(f"vm-{i}"))).host for i in range(4)}
    assert hosts == {up.name}
    assert {h.name: h.state for h in cloud.list_hosts()}[down.name] == "down"


def test_a_boot_finishes_when_its_boot_time_has_passed():
    region = RegionFactory(simulation__boot_seconds_min=30, simulation__boot_seconds_max=30)
    cloud = driver_for(region)
    server_id = cloud.create_server(spec())

    building = cloud.get_server(server_id)
    assert (building.status, building.is_ready, building.ip_address) == ("BUILD", False, None)

    SimServer.objects.filter(pk=server_id).update(ready_at=timezone.now() - timedelta(seconds=1))
    booted = cloud.get_server(server_id)
    assert booted.status == "ACTIVE" and booted.is_ready
    assert booted.ip_address.startswith("10.")


def test_boot_times_are_drawn_from_the_region_range():
    region = RegionFactory(simulation__boot_seconds_min=20, simulation__boot_seconds_max=40)
    cloud = driver_for(region)
    before = timezone.now()
    for index in range(20):
        cloud.create_server(spec(f"vm-{index}", memory_mb=512))
    delays = [(s.ready_at - before).total_seconds() for s in SimServer.objects.all()]
    assert all(19.9 <= d <= 41 for d in delays)
    assert max(delays) - min(delays) > 1  # drawn, not constant


def test_injected_boot_failures_end_in_error():
    region = RegionFactory(simulation__boot_failure_rate=1.0)
    cloud = driver_for(region)
    info = cloud.get_server(cloud.create_server(spec()))
    assert info.status == "ERROR"
    assert "boot failure" in info.fault


def test_injected_api_failures_raise_cloud_unavailable():
    region = RegionFactory()
    cloud = driver_for(region)
    server_id = cloud.create_server(spec())
    SimulatedRegion.objects.filter(region=region).update(api_failure_rate=1.0)
    with pytest.raises(CloudUnavailable):
        cloud.get_server(server_id)
    with pytest.raises(CloudUnavailable):
        cloud.create_server(spec("another"))


def test_spice_console_gives_distinct_ports_and_fresh_passwords():
    region = RegionFactory(hosts=1)
    cloud = driver_for(region)
    a, b = cloud.create_server(spec("a")), cloud.create_server(spec("b"))
    console_a, console_b = cloud.spice_console(a), cloud.spice_console(b)
    assert console_a.host == region.sim_hosts.get().address
    assert console_a.port != console_b.port
    assert console_a.tls_port == console_a.port + 1
    assert console_a.password != cloud.spice_console(a).password
    assert console_a.expires_at > timezone.now()


def test_a_console_is_one_read_and_still_pays_for_the_injected_faults():
    region = RegionFactory(hosts=1)
    cloud = driver_for(region)
    server_id = cloud.create_server(spec("a"))
    cloud.get_server(server_id)  # booted: the boot is over and written down

    with CaptureQueriesContext(connection) as queries:
        cloud.spice_console(server_id)
    assert len(queries) == 1

    SimulatedRegion.objects.filter(region=region).update(api_failure_rate=1.0)
    with pytest.raises(CloudUnavailable):
        cloud.spice_console(server_id)
    with pytest.raises(CloudUnavailable):  # an unknown server fails the same way first
        cloud.spice_console("00000000-0000-0000-0000-000000000000")
    SimulatedRegion.objects.filter(region=region).update(api_failure_rate=0)
    with pytest.raises(ServerNotFound):
        cloud.spice_console("00000000-0000-0000-0000-000000000000")
    with pytest.raises(ServerNotFound):
        cloud.spice_console("not-a-uuid")


def test_unknown_servers_are_not_found_and_delete_is_idempotent():
    cloud = driver_for(RegionFactory())
    with pytest.raises(ServerNotFound):
        cloud.get_server("not-a-uuid")
    server_id = cloud.create_server(spec())
    cloud.delete_server(server_id)
    cloud.delete_server(server_id)
    with pytest.raises(ServerNotFound):
        cloud.get_server(server_id)


def test_stop_and_start():
    cloud = driver_for(RegionFactory())
    server_id = cloud.create_server(spec())
    cloud.stop_server(server_id)
    assert cloud.get_server(server_id).status == "SHUTOFF"
    cloud.start_server(server_id)
    assert cloud.get_server(server_id).status == "ACTIVE"
