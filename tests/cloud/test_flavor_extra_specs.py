"""Flavor extra specs through the driver interface: the same contract against the
simulated cloud and against real Nova (tests/nova/serve.py), then what only real
Nova shows: it checks the values it knows, it wants an admin, and a server keeps
the specs its flavor had when it was booted.

Each real-Nova test makes a flavor of its own, so the specs it sets never reach
the servers other tests boot."""

import uuid

import pytest

from cloud.drivers import ServerSpec, driver_for
from cloud.drivers.openstack import OpenStackDriver
from cloud.errors import CloudError, CloudUnavailable
from cloud.models import SimulatedRegion
from pools.flavors import CPU_PERIOD, CPU_QUOTA, CPU_SHARES
from tests.cloud.test_driver_contract import wait_gone, wait_ready
from tests.factories import RegionFactory

FOREIGN = "deskops-test:keep"  # a key of someone else's, which must survive


def _nova_flavor(driver: OpenStackDriver) -> str:
    name = f"desk.fc-{uuid.uuid4().hex[:6]}"
    driver.connection.compute.create_flavor(name=name, ram=512, vcpus=1, disk=1)
    return name


def _drop_nova_flavor(driver: OpenStackDriver, name: str) -> None:
    flavor = driver.connection.compute.find_flavor(name)
    if flavor is not None:
        driver.connection.compute.delete_flavor(flavor.id)


@pytest.fixture(
    params=[
        pytest.param("simulated", id="simulated"),
        pytest.param("openstack", id="openstack", marks=pytest.mark.nova),
    ]
)
def flavor_target(request, db):
    """(driver, flavor name) of a flavor with no extra specs yet."""
    if request.param == "simulated":
        yield driver_for(RegionFactory(hosts=1)), "desk.medium"
        return
    driver = driver_for(request.getfixturevalue("nova_region"))
    name = _nova_flavor(driver)
    yield driver, name
    _drop_nova_flavor(driver, name)


def test_extra_specs_are_set_read_back_and_removed(flavor_target):
    driver, flavor = flavor_target
    assert driver.flavor_extra_specs(flavor) == {}

    after = driver.flavor_update_extra_specs(
        flavor,
        set_specs={CPU_SHARES: "3072", CPU_PERIOD: "100000", CPU_QUOTA: "50000", FOREIGN: "yes"},
    )
    wanted = {CPU_SHARES: "3072", CPU_PERIOD: "100000", CPU_QUOTA: "50000", FOREIGN: "yes"}
    assert after == wanted
    assert driver.flavor_extra_specs(flavor) == wanted

    # Uncapping: the quota and period go, the foreign key and the shares stay.
    after = driver.flavor_update_extra_specs(
        flavor, set_specs={CPU_SHARES: "1024"}, unset=[CPU_PERIOD, CPU_QUOTA]
    )
    assert after == {CPU_SHARES: "1024", FOREIGN: "yes"}
    assert driver.flavor_extra_specs(flavor) == after

    # Removing a key the flavor does not have is what was asked for, not an error.
    assert driver.flavor_update_extra_specs(flavor, set_specs={}, unset=[CPU_QUOTA]) == after


def test_the_simulated_cloud_keeps_each_flavor_apart_and_can_be_down(db):
    region = RegionFactory(hosts=1)
    driver = driver_for(region)
    driver.flavor_update_extra_specs("desk.medium", set_specs={CPU_SHARES: "2048"})
    driver.flavor_update_extra_specs("desk.large", set_specs={CPU_SHARES: "3072"})
    assert driver.flavor_extra_specs("desk.medium") == {CPU_SHARES: "2048"}
    assert driver.flavor_extra_specs("desk.large") == {CPU_SHARES: "3072"}
    # Another region's flavor of the same name is another flavor.
    assert driver_for(RegionFactory(hosts=1)).flavor_extra_specs("desk.medium") == {}

    SimulatedRegion.objects.filter(region=region).update(api_failure_rate=1.0)
    with pytest.raises(CloudUnavailable):
        driver.flavor_update_extra_specs("desk.medium", set_specs={CPU_SHARES: "1"})
    SimulatedRegion.objects.filter(region=region).update(api_failure_rate=0.0)
    assert driver.flavor_extra_specs("desk.medium") == {CPU_SHARES: "2048"}


# -- real Nova only ------------------------------------------------------------


@pytest.fixture
def nova(nova_region) -> OpenStackDriver:
    return driver_for(nova_region)


@pytest.mark.nova
def test_nova_refuses_a_value_it_cannot_use_and_an_unknown_flavor(nova):
    flavor = _nova_flavor(nova)
    try:
        with pytest.raises(CloudError) as refused:
            nova.flavor_update_extra_specs(flavor, set_specs={CPU_SHARES: "lots"})
        assert not isinstance(refused.value, CloudUnavailable)
        assert nova.flavor_extra_specs(flavor) == {}
    finally:
        _drop_nova_flavor(nova, flavor)
    with pytest.raises(CloudError, match="no flavor"):
        nova.flavor_extra_specs("desk.no-such-flavor")


@pytest.mark.nova
def test_a_project_member_may_not_change_extra_specs(nova_member_region, nova):
    flavor = _nova_flavor(nova)
    try:
        member = driver_for(nova_member_region)
        with pytest.raises(CloudError) as refused:
            member.flavor_update_extra_specs(flavor, set_specs={CPU_SHARES: "2048"})
        assert not isinstance(refused.value, CloudUnavailable)
        assert nova.flavor_extra_specs(flavor) == {}
    finally:
        _drop_nova_flavor(nova, flavor)


def _server_flavor_specs(nova: OpenStackDriver, server_id: str) -> dict:
    """The extra specs the server carries (a copy made at boot; shown since 2.47)."""
    answer = nova.connection.compute.get(f"/servers/{server_id}", microversion="2.47")
    return answer.json()["server"]["flavor"].get("extra_specs", {})


@pytest.mark.nova
def test_a_server_keeps_the_specs_it_was_booted_with(nova, nova_harness):
    flavor = _nova_flavor(nova)
    servers = []

    def boot(name):
        spec = ServerSpec(
            name=f"{name}-{uuid.uuid4().hex[:6]}",
            flavor=flavor,
            vcpus=1,
            memory_mb=512,
            image="desk-win10",
            network=nova_harness.info["network"]["name"],
        )
        server_id = nova.create_server(spec)
        servers.append(server_id)
        wait_ready(nova, server_id)
        return server_id

    try:
        nova.flavor_update_extra_specs(flavor, set_specs={CPU_SHARES: "1024"})
        old = boot("before")
        assert _server_flavor_specs(nova, old) == {CPU_SHARES: "1024"}

        nova.flavor_update_extra_specs(
            flavor, set_specs={CPU_SHARES: "3072", CPU_PERIOD: "100000", CPU_QUOTA: "50000"}
        )
        # The running server keeps what it was booted with, through a hard reboot
        # and a rebuild too.
        assert _server_flavor_specs(nova, old) == {CPU_SHARES: "1024"}
        nova.reboot_server(old)
        wait_ready(nova, old, "reboot")
        assert _server_flavor_specs(nova, old) == {CPU_SHARES: "1024"}
        nova.rebuild_server(old, "desk-win11")
        wait_ready(nova, old, "rebuild")
        assert _server_flavor_specs(nova, old) == {CPU_SHARES: "1024"}

        new = boot("after")
        assert _server_flavor_specs(nova, new) == {
            CPU_SHARES: "3072",
            CPU_PERIOD: "100000",
            CPU_QUOTA: "50000",
        }
    finally:
        for server_id in servers:
            nova.delete_server(server_id)
        for server_id in servers:
            wait_gone(nova, server_id)
        _drop_nova_flavor(nova, flavor)
