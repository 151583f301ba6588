"""The inventory API: regions, hosts, pools and VMs are readable by every role,
filtered by validated query parameters, never written, and a page costs the same
queries whatever its size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from allocation.models import Binding
from cloud.models import Host, Region
from pools.models import VM, PoolSchedule, VMPool
from tests.factories import (
    AllocatorFactory,
    FeatureClassFactory,
    RegionFactory,
    UserFactory,
    VMFactory,
    VMPoolFactory,
)

pytestmark = pytest.mark.django_db

ENDPOINTS = ["/api/v1/regions/", "/api/v1/hosts/", "/api/v1/pools/", "/api/v1/vms/"]


def client_for(role: str | None) -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(role=role))
    return client


@pytest.fixture
def viewer():
    return client_for("viewer")


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


def queries_for_page(client, url: str, size: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"page_size": size})
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == size
    return len(captured)


def assert_fixed_queries(client, url: str) -> None:
    client.get(url)  # the caller's role is read once and kept
    assert queries_for_page(client, url, 10) == queries_for_page(client, url, 100)


@pytest.fixture
def world():
    """Two regions; east has three hosts (one down, one failed) and two pools."""
    east = RegionFactory(name="east", hosts=0, openstack_cloud="east-admin-cloud")
    west = RegionFactory(name="west", hosts=0)
    Host.objects.create(region=east, name="e-cmp-1")
    Host.objects.create(region=east, name="e-cmp-2", state="down")
    Host.objects.create(region=east, name="e-cmp-3", failed_at=timezone.now())
    Host.objects.create(region=west, name="w-cmp-1")
    agents = VMPoolFactory(name="agents-east", region=east)
    vip = VMPoolFactory(
        name="vip-east", region=east, paused_at=timezone.now(), pause_reason="5 failed boots"
    )
    VMPoolFactory(name="agents-west", region=west)
    for state in ["ready", "ready", "building", "recycling", "in_use", "error"]:
        VMFactory(pool=agents, state=state, host_name="e-cmp-1")
    VMFactory(pool=vip, name="vip-1", state="ready", host_name="e-cmp-2", ip_address="10.9.8.7")
    return {"east": east, "west": west, "agents": agents, "vip": vip}


# Roles and methods


@pytest.mark.parametrize("url", ENDPOINTS)
def test_anonymous_callers_are_asked_to_authenticate(url):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_user_without_a_portal_role_is_refused(url):
    response = client_for(None).get(url)
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"


@pytest.mark.parametrize("url", ENDPOINTS)
def test_the_inventory_is_read_only(url, viewer):
    assert viewer.post(url, {}, format="json").status_code == 403
    administrator = client_for("administrator")
    response = administrator.post(url, {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_an_unknown_id_is_a_json_404(viewer, world):
    for url in ["/api/v1/vms/999999/", "/api/v1/hosts/not-a-number/"]:
        response = viewer.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"] == "not_found"


# Regions


def test_regions_list_their_hosts_and_pools_but_no_credentials(viewer, world):
    response = viewer.get("/api/v1/regions/")
    assert names(response) == ["east", "west"]
    east = response.json()["results"][0]
    assert (east["host_count"], east["pool_count"], east["driver"]) == (3, 2, "simulated")
    assert "openstack_cloud" not in east
    assert "east-admin-cloud" not in response.content.decode()
    assert east["url"].endswith(f"/regions/{world['east'].pk}/")

    one = viewer.get(f"/api/v1/regions/{world['west'].pk}/").json()
    assert (one["name"], one["host_count"], one["pool_count"]) == ("west", 1, 1)


def test_a_page_of_regions_costs_the_same_whatever_its_size(viewer):
    regions = Region.objects.bulk_create(Region(name=f"r-{n:03d}") for n in range(105))
    Host.objects.bulk_create(Host(region=r, name="cmp-0") for r in regions)
    assert_fixed_queries(viewer, "/api/v1/regions/")


# Hosts


def test_hosts_are_listed_and_read(viewer, world):
    response = viewer.get("/api/v1/hosts/")
    assert names(response) == ["e-cmp-1", "e-cmp-2", "e-cmp-3", "w-cmp-1"]
    failed = response.json()["results"][2]
    assert (failed["region"], failed["failed"], failed["state"]) == ("east", True, "up")
    host = Host.objects.get(name="w-cmp-1")
    body = viewer.get(f"/api/v1/hosts/{host.pk}/").json()
    assert (body["name"], body["region"], body["failed"]) == ("w-cmp-1", "west", False)


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"region": "west"}, ["w-cmp-1"]),
        ({"state": "down"}, ["e-cmp-2"]),
        ({"state": "down,up", "region": "east"}, ["e-cmp-1", "e-cmp-2", "e-cmp-3"]),
        ({"failed": "true"}, ["e-cmp-3"]),
        ({"failed": "false", "region": "east"}, ["e-cmp-1", "e-cmp-2"]),
        ({"region": ""}, ["e-cmp-1", "e-cmp-2", "e-cmp-3", "w-cmp-1"]),
    ],
)
def test_hosts_are_filtered(viewer, world, query, expected):
    assert names(viewer.get("/api/v1/hosts/", query)) == expected


@pytest.mark.parametrize(
    "query, field",
    [
        ({"region": "nowhere"}, "region"),
        ({"state": "up,sideways"}, "state"),
        ({"failed": "maybe"}, "failed"),
    ],
)
def test_a_bad_host_filter_is_a_400_naming_it(viewer, world, query, field):
    response = viewer.get("/api/v1/hosts/", query)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert list(body["fields"]) == [field]


def test_a_page_of_hosts_costs_the_same_whatever_its_size(viewer, region):
    Host.objects.bulk_create(Host(region=region, name=f"cmp-{n:03d}") for n in range(105))
    assert_fixed_queries(viewer, "/api/v1/hosts/")


# Pools


def test_pools_count_their_vms_by_state(viewer, world):
    response = viewer.get("/api/v1/pools/")
    assert names(response) == ["agents-east", "agents-west", "vip-east"]
    agents = response.json()["results"][0]
    counts = [agents[f"{s}_count"] for s in ("ready", "booting", "in_use", "error")]
    assert counts == [2, 2, 1, 1]
    assert (agents["region"], agents["paused"]) == ("east", False)


def test_a_pool_shows_its_calendar(viewer, world):
    pool = world["agents"]
    PoolSchedule.objects.create(
        pool=pool, starts="00:00", ends="23:59:59", target_ready=40, label="all day"
    )
    body = viewer.get(f"/api/v1/pools/{pool.pk}/").json()
    assert body["schedules"][0]["label"] == "all day"
    assert body["target_ready_now"] == 40
    assert body["ready_count"] == 2


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"region": "west"}, ["agents-west"]),
        ({"paused": "true"}, ["vip-east"]),
        ({"paused": "false", "region": "east"}, ["agents-east"]),
    ],
)
def test_pools_are_filtered(viewer, world, query, expected):
    assert names(viewer.get("/api/v1/pools/", query)) == expected


@pytest.mark.parametrize("query", [{"region": "nowhere"}, {"paused": "perhaps"}])
def test_a_bad_pool_filter_is_a_400(viewer, world, query):
    response = viewer.get("/api/v1/pools/", query)
    assert response.status_code == 400
    assert set(response.json()["fields"]) == set(query)


def test_a_page_of_pools_costs_the_same_whatever_its_size(viewer, region):
    feature_class = FeatureClassFactory()
    pools = VMPool.objects.bulk_create(
        VMPool(
            name=f"p-{n:03d}",
            region=region,
            feature_class=feature_class,
            flavor="desk.small",
            vcpus=2,
            memory_mb=4096,
            image="win10",
        )
        for n in range(105)
    )
    VM.objects.bulk_create(VM(pool=p, name=f"{p.name}-vm", state="ready") for p in pools)
    assert_fixed_queries(viewer, "/api/v1/pools/")


# VMs


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"pool": "vip-east"}, ["vip-1"]),
        ({"region": "west"}, []),
        ({"host": "e-cmp-2"}, ["vip-1"]),
        ({"state": "ready", "pool": "vip-east"}, ["vip-1"]),
        ({"q": "10.9.8"}, ["vip-1"]),
        ({"q": "VIP-"}, ["vip-1"]),
    ],
)
def test_vms_are_filtered_and_searched(viewer, world, query, expected):
    assert names(viewer.get("/api/v1/vms/", query)) == expected


def test_vms_filter_by_several_states(viewer, world):
    found = viewer.get("/api/v1/vms/", {"state": "in_use,error", "pool": "agents-east"})
    states = sorted(row["state"] for row in found.json()["results"])
    assert states == ["error", "in_use"]
    assert len(viewer.get("/api/v1/vms/").json()["results"]) == 7


@pytest.mark.parametrize(
    "query",
    [{"pool": "nope"}, {"region": "nowhere"}, {"state": "sleeping"}, {"q": "x" * 300}],
)
def test_a_bad_vm_filter_is_a_400(viewer, world, query):
    response = viewer.get("/api/v1/vms/", query)
    assert response.status_code == 400
    assert set(response.json()["fields"]) == set(query)


def test_a_vm_says_who_holds_it(viewer, world):
    vm = VM.objects.get(name="vip-1")
    allocator = AllocatorFactory(name="VIP agents", pools=[world["vip"]])
    Binding.objects.create(
        allocator=allocator, kind="user", user=UserFactory(username="erin"), vm=vm
    )
    body = viewer.get(f"/api/v1/vms/{vm.pk}/").json()
    assert (body["pool"], body["region"], body["host"]) == ("vip-east", "east", "e-cmp-2")
    assert body["binding"]["user"] == "erin"
    assert body["binding"]["allocator"] == "VIP agents"
    free = VM.objects.filter(pool=world["agents"]).first()
    assert viewer.get(f"/api/v1/vms/{free.pk}/").json()["binding"] is None


def test_a_page_of_vms_costs_the_same_whatever_its_size(viewer, pool):
    VM.objects.bulk_create(VM(pool=pool, name=f"vm-{n:03d}", state="ready") for n in range(105))
    assert_fixed_queries(viewer, "/api/v1/vms/")


# Schema


def test_the_schema_documents_the_inventory_filters(client):
    client.force_login(UserFactory(role="viewer"))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    expected = {
        "/api/v1/regions/": {"page", "page_size"},
        "/api/v1/hosts/": {"region", "state", "failed"},
        "/api/v1/pools/": {"region", "paused"},
        "/api/v1/vms/": {"pool", "region", "host", "state", "q"},
    }
    for path, parameters in expected.items():
        operation = schema["paths"][path]["get"]
        assert operation["summary"], path
        assert parameters <= {p["name"] for p in operation["parameters"]}, path
        assert "post" not in schema["paths"][path]
