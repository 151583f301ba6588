"""One contract for every cloud driver, run against the simulated cloud and against
real Nova (tests/nova/serve.py), then what only the OpenStack driver does.

The contract is what the portal relies on: a server is ready when it is ACTIVE
with no task running, a full cloud says `NoValidHost`, a missing server is
`ServerNotFound` (and deleting one is harmless), hosts report their usage. The
waits poll, as the portal's boot poller does: on Nova every step takes time."""

import json
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from cloud.choices import DriverKind, HostState
from cloud.drivers import CloudDriver, ServerInfo, ServerSpec, driver_for
from cloud.drivers.openstack import OpenStackDriver, forget_connections
from cloud.errors import CloudError, CloudUnavailable, NoValidHost, ServerNotFound
from cloud.models import Region, SimHost
from tests.factories import RegionFactory

WAIT_SECONDS = 90


@dataclass
class Target:
    """A driver under test and what its cloud offers."""

    kind: str
    driver: CloudDriver
    image: str
    other_image: str
    network: str

    def spec(self, name: str, *, flavor="desk.medium", vcpus=2, memory_mb=2048, host=""):
        return ServerSpec(
            name=f"{name}-{uuid.uuid4().hex[:6]}",
            flavor=flavor,
            vcpus=vcpus,
            memory_mb=memory_mb,
            image=self.image,
            network=self.network,
            host=host,
        )

    def huge_spec(self, name: str) -> ServerSpec:
        # Larger than any host of either cloud, overcommit included.
        return self.spec(name, flavor="desk.huge", vcpus=64, memory_mb=262144)


def _simulated_target() -> Target:
    region = RegionFactory(hosts=2)  # boots are instant
    SimHost.objects.filter(region=region).update(vcpus=4, memory_mb=8192)
    return Target("simulated", driver_for(region), "desk-win10", "desk-win11", "private")


def _openstack_target(request) -> Target:
    harness = request.getfixturevalue("nova_harness")
    region = request.getfixturevalue("nova_region")
    network = harness.info["network"]["name"]
    return Target("openstack", driver_for(region), "desk-win10", "desk-win11", network)


@pytest.fixture(
    params=[
        pytest.param("simulated", id="simulated"),
        pytest.param("openstack", id="openstack", marks=pytest.mark.nova),
    ]
)
def target(request, db):
    if request.param == "simulated":
        return _simulated_target()
    return _openstack_target(request)


# -- waiting -------------------------------------------------------------------


def wait_for(
    driver: CloudDriver, server_id: str, done: Callable[[ServerInfo], bool], what: str
) -> ServerInfo:
    """Poll the server until `done` holds; fail on ERROR or after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        info = driver.get_server(server_id)
        if done(info):
            return info
        assert info.status != "ERROR", f"{what}: server went to ERROR: {info.fault}"
        assert time.monotonic() < deadline, f"{what}: still {info} after {WAIT_SECONDS} s"
        time.sleep(0.2)


def wait_ready(driver: CloudDriver, server_id: str, what: str = "boot") -> ServerInfo:
    return wait_for(driver, server_id, lambda info: info.is_ready, what)


def wait_gone(driver: CloudDriver, server_id: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            info = driver.get_server(server_id)
        except ServerNotFound:
            return
        assert time.monotonic() < deadline, f"delete: still {info} after {WAIT_SECONDS} s"
        time.sleep(0.2)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {WAIT_SECONDS} s"
        time.sleep(0.2)


# -- the contract --------------------------------------------------------------


def test_a_server_lives_through_its_whole_lifecycle(target):
    driver = target.driver
    spec = target.spec("life")
    server_id = driver.create_server(spec)

    booted = wait_ready(driver, server_id)
    assert booted.name == spec.name
    assert booted.host and booted.ip_address
    assert booted.host_status == "UP"
    assert server_id in {server.id for server in driver.list_servers()}

    console = driver.spice_console(server_id)
    assert console.host and console.port > 0 and console.password
    assert console.expires_at > timezone.now()
    assert driver.spice_console(server_id).password != console.password  # fresh each time

    driver.stop_server(server_id)
    wait_for(driver, server_id, lambda i: i.status == "SHUTOFF" and not i.task_state, "stop")
    driver.start_server(server_id)
    wait_ready(driver, server_id, "start")

    driver.reboot_server(server_id)
    wait_ready(driver, server_id, "reboot")

    driver.rebuild_server(server_id, target.other_image)
    rebuilt = wait_ready(driver, server_id, "rebuild")
    assert rebuilt.id == server_id and rebuilt.name == spec.name

    driver.delete_server(server_id)
    wait_gone(driver, server_id)
    with pytest.raises(ServerNotFound):
        driver.get_server(server_id)


def test_a_server_too_big_for_any_host_is_no_valid_host(target):
    spec = target.huge_spec("huge")
    with pytest.raises(NoValidHost):
        target.driver.create_server(spec)
    wait_until(
        lambda: spec.name not in {server.name for server in target.driver.list_servers()},
        "the refused server is cleaned up",
    )


def test_host_usage_grows_with_a_server(target):
    driver = target.driver
    before = {host.name: host for host in driver.list_hosts()}
    assert len(before) >= 2
    assert all(host.state == HostState.UP for host in before.values())

    server_id = driver.create_server(target.spec("usage"))
    info = wait_ready(driver, server_id)
    after = {host.name: host for host in driver.list_hosts()}

    assert set(after) == set(before) and info.host in after
    grown, was = after[info.host], before[info.host]
    assert grown.vcpus_used - was.vcpus_used == 2
    assert grown.memory_mb_used - was.memory_mb_used == 2048
    assert grown.running_vms - was.running_vms == 1
    assert grown.vcpus > 0 and grown.memory_mb > 0
    assert grown.cpu_allocation_ratio >= 1 and grown.ram_allocation_ratio >= 1
    driver.delete_server(server_id)
    wait_gone(driver, server_id)


def test_a_server_can_be_put_on_a_named_host(target):
    driver = target.driver
    host = sorted(host.name for host in driver.list_hosts())[-1]
    server_id = driver.create_server(target.spec("pinned", host=host))
    assert wait_ready(driver, server_id).host == host
    driver.delete_server(server_id)
    wait_gone(driver, server_id)


def test_an_unknown_server_is_not_found(target):
    for server_id in (str(uuid.uuid4()), "not-a-server-id"):
        with pytest.raises(ServerNotFound):
            target.driver.get_server(server_id)


def test_deleting_a_missing_server_is_not_an_error(target):
    target.driver.delete_server(str(uuid.uuid4()))
    server_id = target.driver.create_server(target.spec("twice"))
    target.driver.delete_server(server_id)
    target.driver.delete_server(server_id)
    wait_gone(target.driver, server_id)
    target.driver.delete_server(server_id)


# -- OpenStack only, against real Nova -------------------------------------------


@pytest.fixture
def nova(nova_region) -> OpenStackDriver:
    return driver_for(nova_region)


def _boot(nova: OpenStackDriver, harness, name: str, host: str = "") -> str:
    spec = ServerSpec(
        name=f"{name}-{uuid.uuid4().hex[:6]}",
        flavor="desk.small",
        vcpus=1,
        memory_mb=1024,
        image="desk-win10",
        network=harness.info["network"]["name"],
        host=host,
    )
    server_id = nova.create_server(spec)
    wait_ready(nova, server_id)
    return server_id


def _compute_service(nova: OpenStackDriver, host: str) -> dict:
    answer = nova.connection.compute.get(
        "/os-services", params={"binary": "nova-compute", "host": host}, microversion="2.53"
    )
    return answer.json()["services"][0]


def _force_down(nova: OpenStackDriver, host: str, down: bool) -> int:
    """What an operator does once a host is known dead (Nova refuses to evacuate
    from a host whose compute service still reports up)."""
    service = _compute_service(nova, host)
    answer = nova.connection.compute.put(
        f"/os-services/{service['id']}", json={"forced_down": down}, microversion="2.53"
    )
    return answer.status_code


@pytest.mark.nova
def test_the_driver_class_is_registered(nova):
    assert isinstance(nova, OpenStackDriver)
    assert nova.region.driver == DriverKind.OPENSTACK


@pytest.mark.nova
def test_spice_direct_console_comes_from_the_token_nova_issued(nova, nova_harness):
    server_id = _boot(nova, nova_harness, "spice")
    console = nova.spice_console(server_id)
    # Nova's fake virt driver serves every display at this address.
    assert (console.host, console.port, console.tls_port) == ("fakespiceconsole.com", 6969, 6970)
    resolved = nova.connection.compute.get(
        f"/os-console-auth-tokens/{console.password}", microversion="2.99"
    ).json()["console"]
    assert resolved["instance_uuid"] == server_id

    url = nova.browser_console_url(server_id)
    assert "spice" in url and "token=" in url
    nova.delete_server(server_id)


@pytest.mark.nova
def test_rebuild_replaces_the_image(nova, nova_harness):
    server_id = _boot(nova, nova_harness, "rebuild")
    images = nova_harness.info["images"]
    nova.rebuild_server(server_id, "desk-win11")
    wait_ready(nova, server_id, "rebuild")
    assert nova.connection.compute.get_server(server_id).image.id == images["desk-win11"]
    # An image may be named by id as well.
    nova.rebuild_server(server_id, images["desk-win10"])
    wait_ready(nova, server_id, "rebuild by id")
    wait_until(
        lambda: nova.connection.compute.get_server(server_id).image.id == images["desk-win10"],
        "image by id",
    )
    nova.delete_server(server_id)


@pytest.mark.nova
def test_unknown_flavor_image_or_network_is_refused_before_nova_is_asked(nova, nova_harness):
    base = ServerSpec(name="x", flavor="desk.small", vcpus=1, memory_mb=1024, image="desk-win10")
    for field, value in (("flavor", "no.such"), ("image", "no-such"), ("network", "no-such")):
        spec = ServerSpec(**{**base.__dict__, field: value})
        with pytest.raises(CloudError, match="has no"):
            nova.create_server(spec)


@pytest.mark.nova
def test_a_refused_boot_shows_nova_fault_when_the_driver_does_not_wait(nova_region, nova_harness):
    nova = OpenStackDriver(nova_region, schedule_timeout=0)
    spec = ServerSpec(
        name="huge-nowait", flavor="desk.huge", vcpus=64, memory_mb=262144, image="desk-win10"
    )
    server_id = nova.create_server(spec)
    failed = wait_for(nova, server_id, lambda i: i.status == "ERROR", "schedule")
    assert failed.fault.startswith("No valid host was found")
    assert failed.host == "" and failed.created_at is not None
    nova.delete_server(server_id)
    wait_gone(nova, server_id)


@pytest.mark.nova
def test_ratios_come_from_placement(nova, nova_harness):
    hosts = nova.list_hosts()
    assert sorted(host.name for host in hosts) == sorted(nova_harness.info["hosts"])
    for host in hosts:
        assert host.cpu_allocation_ratio == nova_harness.info["cpu_allocation_ratio"]
        assert host.ram_allocation_ratio == nova_harness.info["ram_allocation_ratio"]
        assert (host.vcpus, host.memory_mb) == (
            nova_harness.info["host_vcpus"],
            nova_harness.info["host_memory_mb"],
        )


@pytest.mark.nova
def test_a_disabled_compute_service_is_reported(nova, nova_harness):
    host = nova_harness.info["hosts"][0]
    service = _compute_service(nova, host)
    path = f"/os-services/{service['id']}"
    nova.connection.compute.put(path, json={"status": "disabled"}, microversion="2.53")
    try:
        states = {h.name: h.state for h in nova.list_hosts()}
        assert states[host] == HostState.DISABLED
    finally:
        nova.connection.compute.put(path, json={"status": "enabled"}, microversion="2.53")
    assert {h.name: h.state for h in nova.list_hosts()}[host] == HostState.UP


@pytest.mark.nova
def test_live_migration_moves_a_running_server(nova, nova_harness):
    first, _, third = nova_harness.info["hosts"][:3]
    server_id = _boot(nova, nova_harness, "migrate", host=first)

    nova.live_migrate(server_id)
    moved = wait_for(nova, server_id, lambda i: i.host != first and i.is_ready, "live-migrate")
    assert moved.status == "ACTIVE"

    target = third if moved.host != third else first
    nova.live_migrate(server_id, host=target)
    assert wait_for(nova, server_id, lambda i: i.host == target and i.is_ready, "to host").host
    nova.delete_server(server_id)
    wait_gone(nova, server_id)


@pytest.mark.nova
def test_evacuation_rebuilds_a_server_of_a_dead_host_elsewhere(nova, nova_harness):
    dead = nova_harness.info["hosts"][0]
    server_id = _boot(nova, nova_harness, "evacuate", host=dead)

    with pytest.raises(CloudError):  # Nova will not evacuate from a live host
        nova.evacuate(server_id)

    assert _force_down(nova, dead, True) == 200
    try:
        assert {h.name: h.state for h in nova.list_hosts()}[dead] == HostState.DOWN
        nova.evacuate(server_id)
        moved = wait_for(nova, server_id, lambda i: i.host != dead and not i.task_state, "evacuate")
        # Since microversion 2.95 an evacuated server is left stopped.
        assert moved.status == "SHUTOFF"
        nova.start_server(server_id)
        assert wait_ready(nova, server_id, "start after evacuation").host == moved.host
        nova.delete_server(server_id)
        wait_gone(nova, server_id)
    finally:
        # Nova lets a host back up once no evacuation from it is pending.
        wait_until(lambda: _force_down(nova, dead, False) == 200, "host back up")
    assert {h.name: h.state for h in nova.list_hosts()}[dead] == HostState.UP


@pytest.mark.nova
def test_volumes_attach_and_detach(nova, nova_harness):
    server_id = _boot(nova, nova_harness, "volume")
    volume = nova_harness.info["volumes"][0]

    nova.attach_volume(server_id, volume)
    assert nova.list_volume_attachments(server_id) == [volume]
    nova.detach_volume(server_id, volume)
    wait_until(lambda: nova.list_volume_attachments(server_id) == [], "detach")
    nova.detach_volume(server_id, volume)  # not attached: nothing to do

    nova.delete_server(server_id)
    wait_gone(nova, server_id)
    with pytest.raises(ServerNotFound):
        nova.detach_volume(server_id, volume)


@pytest.mark.nova
def test_catalog_names_are_listed(nova, nova_harness):
    assert {"desk.small", "desk.medium", "desk.huge"} <= set(nova.list_flavors())
    assert {"desk-win10", "desk-win11"} <= set(nova.list_images())
    assert nova_harness.info["network"]["name"] in nova.list_networks()


@pytest.mark.nova
def test_an_account_without_admin_rights_gets_clear_refusals(nova_member_region, nova_harness):
    member = driver_for(nova_member_region)
    with pytest.raises(CloudError) as refused:
        member.list_hosts()
    assert not isinstance(refused.value, CloudUnavailable)
    spec = ServerSpec(
        name="pinned-by-member",
        flavor="desk.small",
        vcpus=1,
        memory_mb=1024,
        image="desk-win10",
        network=nova_harness.info["network"]["name"],
        host=nova_harness.info["hosts"][0],
    )
    with pytest.raises(CloudError) as refused:
        member.create_server(spec)
    assert not isinstance(refused.value, CloudUnavailable)


# -- OpenStack errors and retries, against a scripted fake --------------------------


class _FakeCloud(ThreadingHTTPServer):
    """Keystone, compute and image endpoints on the loopback whose answers a test
    scripts per (method, path); it records every request it gets."""

    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _FakeCloudHandler)
        self.answers: dict[tuple[str, str], deque] = defaultdict(deque)
        self.requests: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def script(self, method: str, path: str, *answers: tuple[int, dict] | tuple[int, dict, float]):
        self.answers[(method, path)].extend(answers)

    def count(self, method: str, path: str) -> int:
        return self.requests.count((method, path))

    def handle_error(self, request, client_address):
        """A client that gave up (the timeout test) is expected: say nothing."""


SERVER = {
    "id": "b1",
    "name": "desk-1",
    "status": "ACTIVE",
    "OS-EXT-STS:task_state": None,
    "OS-EXT-SRV-ATTR:host": "cmp-1",
    "addresses": {"private": [{"version": 4, "addr": "10.1.0.7", "OS-EXT-IPS:type": "fixed"}]},
    "host_status": "UP",
    "created": "2026-01-01T00:00:00Z",
    "flavor": {},
    "image": {},
}


class _FakeCloudHandler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the standard library's name
        pass

    def _send(self, status: int, body: dict, headers: dict | None = None):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _discovery(self, path: str) -> tuple[int, dict, dict] | None:
        base = self.server.url
        if path in ("/identity", "/identity/", "/identity/v3", "/identity/v3/"):
            return 200, {"version": _version("v3.14", f"{base}/identity/v3/")}, {}
        if path == "/identity/v3/auth/tokens":
            return 201, _token(base), {"X-Subject-Token": "fake-token"}
        if path in ("/compute", "/compute/", "/compute/v2.1", "/compute/v2.1/"):
            version = _version("v2.1", f"{base}/compute/v2.1/")
            return 200, {"version": {**version, "version": "2.100", "min_version": "2.1"}}, {}
        if path in ("/image", "/image/"):
            return 200, {"versions": [_version("v2.16", f"{base}/image/v2/")]}, {}
        return None

    def _answer(self):
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        known = self._discovery(path)
        if known is not None:
            return self._send(*known)
        self.server.requests.append((self.command, path))
        queue = self.server.answers.get((self.command, path))
        if not queue:
            return self._send(404, {"itemNotFound": {"code": 404, "message": "not scripted"}})
        status, body, *delay = queue.popleft() if len(queue) > 1 else queue[0]
        if delay:
            time.sleep(delay[0])
        return self._send(status, body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server's names


def _version(version_id: str, href: str) -> dict:
    return {
        "id": version_id,
        "status": "CURRENT",
        "updated": "2024-01-01T00:00:00Z",
        "links": [{"rel": "self", "href": href}],
    }


def _token(base: str) -> dict:
    def service(kind: str, path: str) -> dict:
        endpoint = {"id": kind, "interface": "public", "region": "R", "region_id": "R"}
        return {"id": kind, "type": kind, "endpoints": [{**endpoint, "url": base + path}]}

    return {
        "token": {
            "methods": ["password"],
            "expires_at": "2999-01-01T00:00:00.000000Z",
            "issued_at": "2020-01-01T00:00:00.000000Z",
            "user": {"id": "u", "name": "admin", "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p", "name": "p", "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "admin", "name": "admin"}],
            "catalog": [
                service("identity", "/identity/v3"),
                service("compute", "/compute/v2.1"),
                service("image", "/image"),
            ],
        }
    }


def _write_clouds_yaml(path, auth_url: str) -> None:
    cloud = {
        "auth": {
            "auth_url": auth_url,
            "username": "admin",
            "password": "secret",
            "project_name": "p",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": "R",
        "identity_api_version": 3,
    }
    path.write_text(json.dumps({"clouds": {"scripted": cloud}}))


@pytest.fixture
def fake_cloud(tmp_path, monkeypatch, db):
    server = _FakeCloud()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    clouds_yaml = tmp_path / "clouds.yaml"
    _write_clouds_yaml(clouds_yaml, f"{server.url}/identity/v3")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds_yaml))
    yield server
    forget_connections()
    server.shutdown()
    server.server_close()


def _scripted_driver(backoff=0.25, retries=3, **options):
    region = Region.objects.create(
        name=f"scripted-{uuid.uuid4().hex[:6]}",
        driver=DriverKind.OPENSTACK,
        openstack_cloud="scripted",
    )
    sleeps: list[float] = []
    driver = OpenStackDriver(
        region, retries=retries, backoff=backoff, sleep=sleeps.append, **options
    )
    return driver, sleeps


def test_a_server_error_is_retried_with_growing_backoff(fake_cloud):
    fake_cloud.script(
        "GET", "/compute/v2.1/servers/b1", (503, {}), (500, {}), (200, {"server": SERVER})
    )
    driver, sleeps = _scripted_driver()
    info = driver.get_server("b1")
    assert (info.status, info.host, info.ip_address) == ("ACTIVE", "cmp-1", "10.1.0.7")
    assert fake_cloud.count("GET", "/compute/v2.1/servers/b1") == 3
    assert sleeps == [0.25, 0.5]


def test_retries_are_bounded(fake_cloud):
    fake_cloud.script("GET", "/compute/v2.1/servers/b1", (503, {}))
    driver, sleeps = _scripted_driver(retries=2)
    with pytest.raises(CloudUnavailable):
        driver.get_server("b1")
    assert fake_cloud.count("GET", "/compute/v2.1/servers/b1") == 3
    assert sleeps == [0.25, 0.5]


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, CloudError), (403, CloudError), (404, ServerNotFound), (409, CloudError)],
)
def test_a_client_error_is_never_retried(fake_cloud, status, error):
    fake_cloud.script(
        "POST",
        "/compute/v2.1/servers/b1/action",
        (status, {"conflictingRequest": {"code": status, "message": "no"}}),
    )
    driver, sleeps = _scripted_driver()
    with pytest.raises(error) as raised:
        driver.stop_server("b1")
    assert not isinstance(raised.value, CloudUnavailable)
    assert fake_cloud.count("POST", "/compute/v2.1/servers/b1/action") == 1
    assert sleeps == []


def test_no_valid_host_in_an_answer_is_no_valid_host(fake_cloud):
    message = "No valid host was found. There are not enough hosts available."
    fake_cloud.script(
        "POST",
        "/compute/v2.1/servers/b1/action",
        (400, {"badRequest": {"code": 400, "message": message}}),
    )
    driver, _ = _scripted_driver()
    with pytest.raises(NoValidHost):
        driver.live_migrate("b1")


def _script_lookups(fake_cloud):
    flavor = {"id": "f1", "name": "desk.medium", "vcpus": 2, "ram": 2048, "disk": 1}
    fake_cloud.script("GET", "/compute/v2.1/flavors/desk.medium", (200, {"flavor": flavor}))
    image = {"id": "i1", "name": "desk-win10", "status": "active"}
    fake_cloud.script("GET", "/image/v2/images/desk-win10", (200, image))


def _create(driver):
    spec = ServerSpec(
        name="desk-1", flavor="desk.medium", vcpus=2, memory_mb=2048, image="desk-win10"
    )
    return driver.create_server(spec)


def test_a_create_is_not_retried_once_nova_may_have_acted(fake_cloud):
    _script_lookups(fake_cloud)
    fake_cloud.script("POST", "/compute/v2.1/servers", (500, {}))
    driver, sleeps = _scripted_driver(schedule_timeout=0)
    with pytest.raises(CloudUnavailable):
        _create(driver)
    assert fake_cloud.count("POST", "/compute/v2.1/servers") == 1
    assert sleeps == []


def test_a_create_is_retried_when_a_gateway_answered_for_nova(fake_cloud):
    _script_lookups(fake_cloud)
    fake_cloud.script("POST", "/compute/v2.1/servers", (503, {}), (202, {"server": {"id": "b1"}}))
    driver, sleeps = _scripted_driver(schedule_timeout=0)
    assert _create(driver) == "b1"
    assert fake_cloud.count("POST", "/compute/v2.1/servers") == 2
    assert sleeps == [0.25]


def test_a_slow_answer_times_out_as_cloud_unavailable(fake_cloud, settings):
    settings.OPENSTACK_API_TIMEOUT = 0.5
    fake_cloud.script("GET", "/compute/v2.1/servers/b1", (200, {"server": SERVER}, 3.0))
    driver, _ = _scripted_driver(retries=0)
    started = time.monotonic()
    with pytest.raises(CloudUnavailable):
        driver.get_server("b1")
    assert time.monotonic() - started < 2.5


def test_an_unreachable_cloud_is_cloud_unavailable_after_bounded_retries(tmp_path, monkeypatch, db):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clouds_yaml = tmp_path / "clouds.yaml"
    _write_clouds_yaml(clouds_yaml, f"http://127.0.0.1:{port}/identity/v3")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds_yaml))
    driver, sleeps = _scripted_driver(retries=2, backoff=0.01)
    try:
        with pytest.raises(CloudUnavailable):
            driver.get_server("b1")
        with pytest.raises(CloudUnavailable):
            driver.list_hosts()
    finally:
        forget_connections()
    assert sleeps == [0.01, 0.02, 0.01, 0.02]


def test_a_region_without_a_clouds_yaml_entry_is_a_clear_error(db, tmp_path, monkeypatch):
    clouds_yaml = tmp_path / "clouds.yaml"
    clouds_yaml.write_text(json.dumps({"clouds": {}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds_yaml))
    for cloud in ("", "missing"):
        region = Region.objects.create(
            name=f"r-{cloud or 'blank'}", driver=DriverKind.OPENSTACK, openstack_cloud=cloud
        )
        with pytest.raises(CloudError, match="clouds.yaml") as raised:
            driver_for(region).get_server("b1")
        assert not isinstance(raised.value, CloudUnavailable)
    forget_connections()
