"""The cloud's object lists and detail pages: regions, hosts, pools and VMs.

Each list filters, searches, sorts, pages and exports CSV; a query string that
makes no sense still answers with the page; the number of queries does not grow
with the page size. Detail pages show the objects around the one they are
about, and hide the forms a role cannot use."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from allocation.choices import BindingPolicy
from allocation.models import Binding, DesktopSession
from cloud.choices import DriverKind, HostState
from cloud.models import Host, Region
from pools.choices import VMState
from pools.models import VM, FeatureClass, PoolSchedule, VMPool
from portal.links import object_url
from portal.models import AuditEvent
from tests.factories import (
    AllocatorFactory,
    RegionFactory,
    TerminalFactory,
    UserFactory,
    VMFactory,
    VMPoolFactory,
)

pytestmark = pytest.mark.django_db


def login(client, role: str):
    client.force_login(UserFactory(username=f"{role}-user", role=role))
    return client


def csv_rows(client, url: str) -> list[dict]:
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def host(region: Region, name: str, **fields) -> Host:
    defaults = {"vcpus": 32, "memory_mb": 131072, "state": HostState.UP}
    return Host.objects.create(region=region, name=name, **{**defaults, **fields})


def same_queries_for_any_page_size(client, url: str) -> None:
    """The list costs as many queries for 200 rows as for 25."""
    separator = "&" if "?" in url else "?"
    client.get(f"{url}{separator}per_page=25")  # warm caches (session, policy row)
    counts = []
    for size in (25, 200):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"{url}{separator}per_page={size}")
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


# -- regions --------------------------------------------------------------------------


@pytest.fixture
def two_regions():
    east = RegionFactory(name="east", label="East", shared_storage=True)
    west = RegionFactory(
        name="west", driver=DriverKind.OPENSTACK, openstack_cloud="west-cloud", reachable=False
    )
    for index in range(3):
        host(east, f"east-cmp-{index}")
    host(east, "east-cmp-dead", state=HostState.DOWN)
    host(west, "west-cmp-0")
    first = VMPoolFactory(name="agents-east", region=east)
    VMPoolFactory(name="vip-east", region=east)
    VMPoolFactory(name="agents-west", region=west)
    VMFactory(pool=first, state=VMState.READY)
    VMFactory(pool=first, state=VMState.IN_USE)
    VMFactory(pool=first, state=VMState.DELETED)
    return east, west


def test_region_list_counts_hosts_pools_and_vms(client, two_regions):
    login(client, "viewer")
    rows = {row["Region"]: row for row in csv_rows(client, "/regions/?format=csv")}
    assert rows["east"]["Hosts"] == "4"
    assert rows["east"]["Hosts in service"] == "3"
    assert rows["east"]["Pools"] == "2"
    assert rows["east"]["VMs alive"] == "2"
    assert rows["east"]["Shared storage"] == "yes"
    assert rows["west"]["Driver"] == "OpenStack"
    assert rows["west"]["Cloud answering"] == "no"
    assert (rows["west"]["Hosts"], rows["west"]["Pools"], rows["west"]["VMs alive"]) == (
        "1",
        "1",
        "0",
    )


def test_region_list_filters_searches_and_sorts(client, two_regions):
    login(client, "viewer")
    east, west = two_regions
    html = page(client, "/regions/?driver=openstack")
    assert f'href="/regions/{west.pk}/"' in html and f'href="/regions/{east.pk}/"' not in html
    only_east = csv_rows(client, "/regions/?format=csv&reachable=yes")
    assert [row["Region"] for row in only_east] == ["east"]
    assert [row["Region"] for row in csv_rows(client, "/regions/?format=csv&q=west-cloud")] == [
        "west"
    ]
    by_hosts = csv_rows(client, "/regions/?format=csv&sort=-host_count")
    assert [row["Region"] for row in by_hosts] == ["east", "west"]
    by_hosts = csv_rows(client, "/regions/?format=csv&sort=host_count")
    assert [row["Region"] for row in by_hosts] == ["west", "east"]


def test_region_list_pages_and_survives_nonsense(client):
    login(client, "viewer")
    Region.objects.bulk_create(Region(name=f"r-{index:03d}") for index in range(30))
    first = page(client, "/regions/?per_page=25")
    assert "30 regions" in first and "r-000" in first and "r-025" not in first
    second = page(client, "/regions/?per_page=25&page=2")
    assert "r-025" in second and "r-000" not in second
    for query in ["sort=bogus", "page=999", "driver=nonsense", "per_page=7", "enabled=maybe"]:
        assert client.get(f"/regions/?{query}").status_code == 200, query


def test_region_list_queries_do_not_grow_with_the_page(client):
    login(client, "viewer")
    Region.objects.bulk_create(Region(name=f"r-{index:03d}") for index in range(210))
    same_queries_for_any_page_size(client, "/regions/")


def test_region_page_shows_its_hosts_and_pools(client, two_regions):
    login(client, "viewer")
    east, _ = two_regions
    html = page(client, f"/regions/{east.pk}/")
    for name in ["east-cmp-0", "east-cmp-dead", "agents-east", "vip-east"]:
        assert name in html
    assert "west-cmp-0" not in html and "agents-west" not in html
    dead = Host.objects.get(name="east-cmp-dead")
    assert f'href="/hosts/{dead.pk}/"' in html
    assert f'href="/pools/{VMPool.objects.get(name="vip-east").pk}/"' in html
    assert "Recent events" in html


def test_only_administrators_see_and_use_the_region_form(client, region):
    login(client, "operator")
    html = page(client, f"/regions/{region.pk}/")
    assert 'name="max_concurrent_boots"' not in html
    assert client.post(f"/regions/{region.pk}/", {"label": "x"}).status_code == 403
    login(client, "administrator")
    assert 'name="max_concurrent_boots"' in page(client, f"/regions/{region.pk}/")
    response = client.post(
        f"/regions/{region.pk}/",
        {"label": "East", "enabled": "on", "max_concurrent_boots": 12, "place_by_portal": "on"},
    )
    assert response.status_code == 302 and response["Location"] == f"/regions/{region.pk}/"
    assert Region.objects.get(pk=region.pk).max_concurrent_boots == 12
    assert AuditEvent.objects.filter(action="region.update", object_id=str(region.pk)).exists()


def test_a_refused_region_change_keeps_the_stored_facts(client, region):
    login(client, "administrator")
    response = client.post(f"/regions/{region.pk}/", {"max_concurrent_boots": "-4"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="error"' in html
    assert Region.objects.get(pk=region.pk).max_concurrent_boots is None


def test_cloud_credentials_never_reach_the_region_or_host_pages(
    client, tmp_path, monkeypatch, settings
):
    """A region names its clouds.yaml entry; the credentials stay in that file and
    the host agents' token stays in the settings: neither is ever on a page."""
    password = "s3cret-Keystone-pw-4242"
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  west-cloud:\n    auth:\n      auth_url: https://keystone.example/v3\n"
        f"      username: deskops\n      password: {password}\n      project_name: vdi\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    settings.HOST_AGENT_TOKEN = "agent-token-9f8e7d"
    region = RegionFactory(driver=DriverKind.OPENSTACK, openstack_cloud="west-cloud")
    node = host(region, "west-cmp-0", agent_url="http://10.0.0.11:9180/")
    login(client, "administrator")
    pages = [
        page(client, f"/regions/{region.pk}/"),
        page(client, "/regions/"),
        page(client, f"/hosts/{node.pk}/"),
        page(client, "/hosts/"),
    ]
    assert "west-cloud" in pages[0]  # the entry's name is shown, not what it holds
    for html in pages:
        assert password not in html
        assert settings.HOST_AGENT_TOKEN not in html


# -- hosts ----------------------------------------------------------------------------


@pytest.fixture
def hosts_world():
    east, west = RegionFactory(name="east", hosts=0), RegionFactory(name="west", hosts=0)
    hosts = {
        "fast": host(
            east,
            "east-fast",
            response_ms=5,
            vcpus_used=10,
            memory_mb_used=1000,
            load_1m=0.5,
            agent_url="http://10.0.0.1:9180/",
            agent_reported_at=timezone.now(),
        ),  # fmt: skip
        "slow": host(
            east,
            "east-slow",
            response_ms=80,
            vcpus_used=40,
            placement_group="rack-b",
            load_1m=7.5,
            agent_url="http://10.0.0.2:9180/",
            agent_reported_at=timezone.now(),
        ),  # fmt: skip
        "down": host(east, "east-down", state=HostState.DOWN, down_since=timezone.now()),
        "failed": host(
            west,
            "west-failed",
            failed_at=timezone.now(),
            boot_failures_in_row=4,
            response_ms=30,
            memory_mb_used=120000,
        ),
    }
    return east, west, hosts


def test_host_list_filters(client, hosts_world):
    login(client, "viewer")
    east, west, hosts = hosts_world

    def names(query):
        return {row["Host"] for row in csv_rows(client, f"/hosts/?format=csv&{query}")}

    assert names(f"region={west.pk}") == {"west-failed"}
    assert names("state=down") == {"east-down"}
    assert names("failed=yes") == {"west-failed"}
    assert names("failed=no") == {"east-fast", "east-slow", "east-down"}
    assert names("group=rack-b") == {"east-slow"}
    assert names("q=fast") == {"east-fast"}
    assert names("q=west") == {"west-failed"}  # the region's name
    html = page(client, f"/hosts/?region={east.pk}")
    assert "east-slow" in html and "west-failed" not in html


def test_host_list_sorts_by_load_response_and_failures(client, hosts_world):
    login(client, "viewer")

    def order(sort):
        return [row["Host"] for row in csv_rows(client, f"/hosts/?format=csv&sort={sort}")]

    # Hosts never measured sort as the lowest, the same on every database.
    assert order("-response_ms") == ["east-slow", "west-failed", "east-fast", "east-down"]
    assert order("response_ms") == ["east-down", "east-fast", "west-failed", "east-slow"]
    assert order("-vcpus_used")[:2] == ["east-slow", "east-fast"]
    assert order("-memory_share")[0] == "west-failed"
    assert order("-boot_failures_in_row")[0] == "west-failed"
    assert order("-agent")[:2] == ["east-slow", "east-fast"]  # the busiest first
    assert order("name") == ["east-down", "east-fast", "east-slow", "west-failed"]


def test_host_list_exports_what_the_page_shows(client, hosts_world):
    login(client, "viewer")
    rows = {row["Host"]: row for row in csv_rows(client, "/hosts/?format=csv")}
    assert list(next(iter(rows.values())))[:4] == ["Host", "Region", "Group", "State"]
    assert rows["east-slow"]["Group"] == "rack-b"
    assert rows["east-fast"]["Group"] == "east"  # no group: the region is the group
    assert rows["east-slow"]["vCPU used / capacity"] == "40 / 64"
    assert rows["east-fast"]["Response"] == "5 ms"
    assert rows["west-failed"]["Failed boots in a row"] == "4"
    assert rows["west-failed"]["Failed at"] != "" and rows["east-fast"]["Failed at"] == ""


def test_host_buttons_are_for_operators_only(client, hosts_world):
    login(client, "viewer")
    html = page(client, "/hosts/")
    assert "Return to service" not in html and ">Clear</button>" not in html
    failed = hosts_world[2]["failed"]
    assert client.post(f"/hosts/{failed.pk}/clear/").status_code == 403
    assert client.post(f"/hosts/{failed.pk}/", {"placement_group": "x"}).status_code == 403
    login(client, "operator")
    html = page(client, "/hosts/")
    assert f'action="/hosts/{failed.pk}/return/"' in html
    assert f'action="/hosts/{failed.pk}/clear/"' in html


def test_clear_from_the_list_comes_back_to_the_same_list(client, hosts_world):
    login(client, "operator")
    failed = hosts_world[2]["failed"]
    response = client.post(f"/hosts/{failed.pk}/clear/", {"next": "/hosts/?failed=yes"})
    assert response["Location"] == "/hosts/?failed=yes"
    assert Host.objects.get(pk=failed.pk).boot_failures_in_row == 0
    elsewhere = client.post(f"/hosts/{failed.pk}/clear/", {"next": "https://evil.example/"})
    assert elsewhere["Location"] == "/hosts/"


def test_filtering_swaps_only_the_table(client, hosts_world):
    login(client, "operator")
    response = client.get("/hosts/?failed=yes", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="listing")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<div id="listing"')
    assert "west-failed" in html and "east-fast" not in html
    assert "Return to service" in html  # the row's buttons come with the fragment


def test_host_list_pages_and_survives_nonsense(client):
    login(client, "viewer")
    region = RegionFactory(name="big", hosts=0)
    Host.objects.bulk_create(Host(region=region, name=f"h-{index:03d}") for index in range(30))
    assert "h-025" in page(client, "/hosts/?per_page=25&page=2")
    assert "h-025" not in page(client, "/hosts/?per_page=25")
    for query in ["sort=bogus", "page=999", "state=nonsense", "region=abc", "failed=perhaps"]:
        assert client.get(f"/hosts/?{query}").status_code == 200, query


def test_host_list_queries_do_not_grow_with_the_page(client):
    login(client, "viewer")
    region = RegionFactory(name="big", hosts=0)
    Host.objects.bulk_create(
        Host(region=region, name=f"h-{index:03d}", placement_group=f"g{index % 3}")
        for index in range(210)
    )
    same_queries_for_any_page_size(client, "/hosts/")


def test_host_page_lists_the_vms_on_it(client):
    east, west = RegionFactory(name="east", hosts=0), RegionFactory(name="west", hosts=0)
    node = host(east, "cmp-1")
    host(west, "cmp-1")  # the same name in another region: other VMs
    here = VMFactory(pool=VMPoolFactory(region=east), host_name="cmp-1", name="desk-here")
    VMFactory(pool=VMPoolFactory(region=west), host_name="cmp-1", name="desk-there")
    VMFactory(pool=here.pool, host_name="cmp-1", name="desk-gone", state=VMState.DELETED)
    login(client, "viewer")
    html = page(client, f"/hosts/{node.pk}/")
    assert f'href="/vms/{here.pk}/"' in html
    assert "desk-there" not in html and "desk-gone" not in html
    assert f'href="/vms/?host={node.pk}"' in html
    assert f'href="/regions/{east.pk}/"' in html
    assert 'name="placement_group"' not in html  # a viewer gets no form


def test_operator_edits_a_host_and_stays_on_its_page(client):
    node = host(RegionFactory(hosts=0), "cmp-1")
    login(client, "operator")
    response = client.post(f"/hosts/{node.pk}/", {"placement_group": "rack-a", "response_ms": ""})
    assert response.status_code == 302 and response["Location"] == f"/hosts/{node.pk}/"
    assert Host.objects.get(pk=node.pk).placement_group == "rack-a"
    refused = client.post(f"/hosts/{node.pk}/", {"max_concurrent_boots": "many"})
    assert refused.status_code == 200 and "Enter a whole number" in refused.content.decode()


# -- pools ----------------------------------------------------------------------------


@pytest.fixture
def pools_world():
    east, west = RegionFactory(name="east", hosts=0), RegionFactory(name="west", hosts=0)
    vip = FeatureClass.objects.create(name="vip", label="VIP agent", weight=3.0)
    full = VMPoolFactory(name="agents-east", region=east, min_ready=1)
    for _ in range(3):
        VMFactory(pool=full, state=VMState.READY)
    VMFactory(pool=full, state=VMState.IN_USE)
    VMFactory(pool=full, state=VMState.DELETED)
    short = VMPoolFactory(name="vip-east", region=east, feature_class=vip, min_ready=2)
    VMFactory(pool=short, state=VMState.BUILDING)
    paused = VMPoolFactory(
        name="agents-west", region=west, paused_at=timezone.now(), min_ready=0,
        pause_reason="3 boots failed", last_error="No valid host",
    )  # fmt: skip
    return {"full": full, "short": short, "paused": paused, "vip": vip, "east": east}


def test_pool_list_shows_levels_against_targets(client, pools_world):
    login(client, "viewer")
    rows = {row["Pool"]: row for row in csv_rows(client, "/pools/?format=csv")}
    assert rows["agents-east"]["Ready / target now"] == "3 / 3"
    assert rows["agents-east"]["In use"] == "1"
    assert rows["agents-east"]["VMs / max"] == "4 / 500"
    assert rows["vip-east"]["Booting / cap"] == "1 / 5"
    assert rows["agents-west"]["State"] == "paused"
    assert rows["agents-west"]["Last error"] == "No valid host"
    html = page(client, "/pools/")
    assert 'class="short"' in html  # vip-east is below its minimum


def test_pool_list_follows_the_calendar(client, pools_world):
    pool = pools_world["full"]
    PoolSchedule.objects.create(
        pool=pool, starts="00:00", ends="23:59:59", target_ready=9, label="all day"
    )
    login(client, "viewer")
    rows = {row["Pool"]: row for row in csv_rows(client, "/pools/?format=csv")}
    assert rows["agents-east"]["Ready / target now"] == "3 / 9"
    assert "(calendar)" in page(client, "/pools/")


def test_pool_list_filters_searches_and_sorts(client, pools_world):
    login(client, "viewer")

    def names(query):
        return [row["Pool"] for row in csv_rows(client, f"/pools/?format=csv&{query}")]

    assert sorted(names(f"region={pools_world['east'].pk}")) == ["agents-east", "vip-east"]
    assert names("paused=yes") == ["agents-west"]
    assert sorted(names("paused=no")) == ["agents-east", "vip-east"]
    assert names(f"feature_class={pools_world['vip'].pk}") == ["vip-east"]
    assert names("short=yes") == ["vip-east"]
    assert names("q=vip") == ["vip-east"]
    assert names("sort=-ready_count")[0] == "agents-east"
    assert names("sort=-name") == ["vip-east", "agents-west", "agents-east"]


def test_pool_list_pages_and_survives_nonsense(client):
    login(client, "viewer")
    region = RegionFactory(hosts=0)
    for index in range(30):
        VMPoolFactory(name=f"p-{index:03d}", region=region)
    assert "p-025" in page(client, "/pools/?per_page=25&page=2")
    assert "p-025" not in page(client, "/pools/?per_page=25")
    for query in ["sort=bogus", "page=999", "region=nonsense", "feature_class=0", "short=x"]:
        assert client.get(f"/pools/?{query}").status_code == 200, query


def test_pool_list_queries_do_not_grow_with_the_page(client):
    login(client, "viewer")
    region = RegionFactory(hosts=0)
    feature = FeatureClass.objects.create(name="agent", label="Agent")
    VMPool.objects.bulk_create(
        VMPool(name=f"p-{index:03d}", region=region, feature_class=feature, flavor="m",
               vcpus=2, memory_mb=4096, image="win10")
        for index in range(210)
    )  # fmt: skip
    pools = list(VMPool.objects.all()[:50])
    PoolSchedule.objects.bulk_create(
        PoolSchedule(pool=pool, starts="08:00", ends="09:00", target_ready=4) for pool in pools
    )
    VM.objects.bulk_create(VM(pool=pool, name=f"vm-{pool.pk}", state="ready") for pool in pools)
    same_queries_for_any_page_size(client, "/pools/")


def test_pool_page_links_its_vms_allocators_and_region(client, pools_world):
    pool = pools_world["full"]
    allocator = AllocatorFactory(name="Everyone else", pools=[pool])
    login(client, "viewer")
    html = page(client, f"/pools/{pool.pk}/")
    assert f'href="/vms/?pool={pool.pk}"' in html
    assert f'href="/allocators/{allocator.pk}/"' in html
    assert f'href="/regions/{pool.region_id}/"' in html
    assert "4 not deleted" in html
    assert "Recent events" in html


def test_viewers_get_no_pool_forms_and_cannot_post(client, pools_world):
    pool = pools_world["paused"]
    PoolSchedule.objects.create(pool=pool, starts="08:00", ends="09:00", target_ready=4)
    login(client, "viewer")
    html = page(client, f"/pools/{pool.pk}/")
    assert "Resume refills" not in html and "Add window" not in html
    assert 'name="target_ready"' not in html and ">Remove</button>" not in html
    schedule = pool.schedules.get()
    for url in [
        f"/pools/{pool.pk}/",
        f"/pools/{pool.pk}/resume/",
        f"/pools/{pool.pk}/schedules/",
        f"/pools/{pool.pk}/schedules/{schedule.pk}/delete/",
    ]:
        assert client.post(url, {"target_ready": 1}).status_code == 403, url
    assert VMPool.objects.get(pk=pool.pk).paused_at is not None
    login(client, "operator")
    html = page(client, f"/pools/{pool.pk}/")
    assert "Resume refills" in html and "Add window" in html


def test_a_bad_calendar_window_is_refused_with_a_message(client, pool):
    login(client, "operator")
    response = client.post(
        f"/pools/{pool.pk}/schedules/", {"starts": "8 o'clock", "ends": "", "target_ready": "-1"},
        follow=True,
    )  # fmt: skip
    assert response.status_code == 200
    assert "The window was not added" in response.content.decode()
    assert not PoolSchedule.objects.exists()


# -- VMs ------------------------------------------------------------------------------


@pytest.fixture
def vms_world():
    east, west = RegionFactory(name="east", hosts=0), RegionFactory(name="west", hosts=0)
    east_host = host(east, "cmp-1")
    host(west, "cmp-1")
    agents = VMPoolFactory(name="agents-east", region=east)
    west_pool = VMPoolFactory(name="agents-west", region=west)
    now = timezone.now()
    vms = {
        "bound": VMFactory(pool=agents, name="desk-bound", state=VMState.IN_USE,
                           host_name="cmp-1", ip_address="10.1.0.5", server_id="srv-aaa"),
        "ready": VMFactory(pool=agents, name="desk-ready", state=VMState.READY,
                           host_name="cmp-2", ip_address="10.1.0.6", server_id="srv-bbb"),
        "noip": VMFactory(pool=agents, name="desk-noip", state=VMState.READY,
                          host_name="cmp-1", cloud_status="ACTIVE"),
        "in_west": VMFactory(pool=west_pool, name="desk-west", state=VMState.BUILDING,
                          host_name="cmp-1", ip_address="10.2.0.7"),
        "gone": VMFactory(pool=west_pool, name="desk-gone", state=VMState.DELETED),
    }  # fmt: skip
    for age, vm in enumerate(vms.values()):
        VM.objects.filter(pk=vm.pk).update(requested_at=now - timedelta(minutes=age))
    user = UserFactory(username="alice")
    allocator = AllocatorFactory(pools=[agents])
    Binding.objects.create(allocator=allocator, kind=BindingPolicy.USER, user=user, vm=vms["bound"])
    Binding.objects.create(
        allocator=allocator, kind=BindingPolicy.USER, user=UserFactory(username="old-bob"),
        vm=vms["ready"], released_at=now,
    )  # fmt: skip
    return {"east": east, "west": west, "host": east_host, "pool": agents, "user": user, **vms}


def vm_names(client, query: str) -> set[str]:
    return {row["VM"] for row in csv_rows(client, f"/vms/?format=csv&{query}")}


def test_vm_list_filters(client, vms_world):
    login(client, "viewer")
    w = vms_world
    assert vm_names(client, f"pool={w['pool'].pk}") == {"desk-bound", "desk-ready", "desk-noip"}
    assert vm_names(client, f"region={w['west'].pk}") == {"desk-west", "desk-gone"}
    assert vm_names(client, "state=ready") == {"desk-ready", "desk-noip"}
    assert vm_names(client, "alive=no") == {"desk-gone"}
    # The host filter knows which region the host is in.
    assert vm_names(client, f"host={w['host'].pk}") == {"desk-bound", "desk-noip"}
    assert vm_names(client, "no_ip=yes&alive=yes") == {"desk-noip"}
    assert vm_names(client, "bound=yes") == {"desk-bound"}
    assert vm_names(client, "cloud_status=ACTIVE") == {"desk-noip"}
    html = page(client, f"/vms/?pool={w['pool'].pk}")
    assert "desk-ready" in html and "desk-west" not in html


def test_vm_list_searches_name_address_server_and_user(client, vms_world):
    login(client, "viewer")
    assert vm_names(client, "q=noip") == {"desk-noip"}
    assert vm_names(client, "q=10.2.0") == {"desk-west"}
    assert vm_names(client, "q=srv-bbb") == {"desk-ready"}
    assert vm_names(client, "q=alice") == {"desk-bound"}
    assert vm_names(client, "q=old-bob") == set()  # a released binding is history


def test_vm_list_sorts(client, vms_world):
    login(client, "viewer")

    def order(sort):
        return [row["VM"] for row in csv_rows(client, f"/vms/?format=csv&sort={sort}")]

    assert order("name") == sorted(order("name"))
    assert order("-requested_at")[0] == "desk-bound"
    assert order("requested_at")[0] == "desk-gone"
    assert order("state")[0] == "desk-west"  # "building" sorts first
    assert order("")[0] == "desk-bound"  # newest first by default
    # Bound VMs go last going up and first going down, on every database.
    assert order("bound")[-1] == "desk-bound" and order("-bound")[0] == "desk-bound"


def test_vm_list_exports_every_matching_row(client, vms_world):
    login(client, "viewer")
    rows = csv_rows(client, "/vms/?format=csv&per_page=25&page=3")
    assert len(rows) == 5  # the export ignores the page
    assert list(rows[0]) == [
        "VM", "Pool", "Region", "Host", "State", "Cloud status", "Address", "Bound to",
        "Requested", "Ready", "Error",
    ]  # fmt: skip
    by_name = {row["VM"]: row for row in rows}
    assert by_name["desk-bound"]["Bound to"] == "alice"
    assert by_name["desk-bound"]["State"] == "In use"
    assert by_name["desk-bound"]["Region"] == "east"
    assert by_name["desk-ready"]["Bound to"] == ""
    assert by_name["desk-west"]["Address"] == "10.2.0.7"


def test_vm_list_links_each_row(client, vms_world):
    login(client, "helpdesk")
    w = vms_world
    html = page(client, "/vms/")
    assert f'href="/vms/{w["bound"].pk}/"' in html
    assert f'href="/pools/{w["pool"].pk}/"' in html
    assert f'href="/hosts/{w["host"].pk}/"' in html  # the east VM's host is east's cmp-1
    # The holder links to the binding's page where there is one, else to the user's.
    binding = w["bound"].bindings.get()
    holder_url = object_url("allocation.binding", binding.pk) or f"/helpdesk/users/{w['user'].pk}/"
    assert f'href="{holder_url}"' in html


def test_vm_list_pages_and_survives_nonsense(client):
    login(client, "viewer")
    pool = VMPoolFactory()
    VM.objects.bulk_create(VM(pool=pool, name=f"d-{index:03d}") for index in range(30))
    assert "d-025" in page(client, "/vms/?sort=name&per_page=25&page=2")
    assert "d-025" not in page(client, "/vms/?sort=name&per_page=25")
    for query in [
        "sort=bogus", "page=999", "page=-1", "state=nonsense", "host=999999", "pool=x",
        "since=yesterday", "no_ip=maybe", "q=" + "x" * 500,
    ]:  # fmt: skip
        assert client.get(f"/vms/?{query}").status_code == 200, query


def test_vm_list_queries_do_not_grow_with_the_page(client):
    login(client, "helpdesk")
    region = RegionFactory(hosts=0)
    Host.objects.bulk_create(Host(region=region, name=f"cmp-{index}") for index in range(5))
    pool = VMPoolFactory(region=region)
    VM.objects.bulk_create(
        VM(pool=pool, name=f"d-{index:03d}", host_name=f"cmp-{index % 5}", state="in_use")
        for index in range(210)
    )
    allocator = AllocatorFactory(pools=[pool])
    users = [UserFactory(username=f"agent-{index}") for index in range(40)]
    Binding.objects.bulk_create(
        Binding(allocator=allocator, kind="user", user=user, vm=vm)
        for user, vm in zip(users, VM.objects.order_by("pk"), strict=False)
    )
    same_queries_for_any_page_size(client, "/vms/")


def test_vm_page_shows_host_bindings_and_sessions(client, vms_world):
    w = vms_world
    DesktopSession.objects.create(
        user=w["user"], terminal=TerminalFactory(serial="TC-SH-042"), vm=w["bound"],
        binding=w["bound"].bindings.get(), client_ip="192.0.2.44",
    )  # fmt: skip
    login(client, "helpdesk")
    html = page(client, f"/vms/{w['bound'].pk}/")
    assert f'href="/hosts/{w["host"].pk}/"' in html
    assert f'href="/regions/{w["east"].pk}/"' in html
    assert f'href="/helpdesk/users/{w["user"].pk}/"' in html
    assert "TC-SH-042" in html and "192.0.2.44" in html
    assert "active" in html
    assert "Recent events" in html
    released = page(client, f"/vms/{w['ready'].pk}/")
    assert "old-bob" in released  # a released binding stays in the history
    login(client, "viewer")
    html = page(client, f"/vms/{w['bound'].pk}/")
    assert "alice" in html and "/helpdesk/users/" not in html


# -- scheduling -----------------------------------------------------------------------


def test_only_administrators_get_the_scheduling_form(client, region):
    login(client, "operator")
    html = page(client, "/scheduling/")
    assert 'name="policy-max_concurrent_boots"' not in html
    assert '<dl class="facts" id="policy">' in html  # the policy, read only
    assert f'href="/regions/{region.pk}/"' in html and 'href="/regions/"' in html
    assert client.post("/scheduling/", {"policy-max_concurrent_boots": 1}).status_code == 403
    login(client, "administrator")
    assert 'name="policy-max_concurrent_boots"' in page(client, "/scheduling/")
