"""The allocator, binding and terminal lists: filters, search, sorting, pages, CSV
export, bad query strings, and a fixed number of queries whatever the page size."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from allocation.choices import BindingPolicy, TerminalStatus
from allocation.models import Allocator, Binding, Terminal
from pools.models import VM
from tests.factories import (
    AllocatorFactory,
    SiteFactory,
    TerminalFactory,
    UserFactory,
    VMPoolFactory,
)

pytestmark = pytest.mark.django_db

BAD_QUERIES = [
    "sort=nonsense",
    "sort=-",
    "page=abc",
    "page=99999",
    "per_page=7",
    "per_page=lots",
    "pool=not-a-number",
    "enabled=maybe",
    "q=" + "x" * 500,
    "since=yesterday",
    "allocator=-1",
    "site=%27%3B--",
    "status=broken",
    "active=perhaps",
]


@pytest.fixture
def viewer(client):
    client.force_login(UserFactory(username="viewer-vic", role="viewer"))
    return client


def csv_rows(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def page_text(client, url: str, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def assert_in_order(page: str, *names: str) -> None:
    """The rows of these names (linked in a cell of their own) come in this order."""
    positions = [page.index(f">{name}</a></td>") for name in names]
    assert positions == sorted(positions), names


def same_queries_for_any_page_size(client, url: str) -> None:
    client.get(url)  # sessions and caches warmed up
    counts = []
    for size in (25, 200):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, {"per_page": size})
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], f"{url}: {counts[0]} queries for 25 rows, {counts[1]} for 200"


def rule(*, groups=(), **fields) -> Allocator:
    """An allocator with these group names as its group condition."""
    allocator = AllocatorFactory(**fields)
    allocator.groups.set(Group.objects.get_or_create(name=name)[0] for name in groups)
    return allocator


def make_bindings(count: int, *, allocator=None, pool=None, released: int = 0) -> list[Binding]:
    """`count` user bindings on VMs of one pool; the first `released` are released."""
    pool = pool or VMPoolFactory()
    allocator = allocator or AllocatorFactory(pools=[pool])
    stamp = timezone.now().strftime("%H%M%S%f")
    vms = VM.objects.bulk_create(
        VM(pool=pool, name=f"{pool.name}-vm-{stamp}-{i:04d}", state="in_use") for i in range(count)
    )
    users = [UserFactory(username=f"{pool.name}-user-{i:04d}") for i in range(count)]
    now = timezone.now()
    return Binding.objects.bulk_create(
        Binding(
            allocator=allocator,
            kind=BindingPolicy.USER,
            user=user,
            vm=vm,
            released_at=now if index < released else None,
        )
        for index, (user, vm) in enumerate(zip(users, vms, strict=True))
    )


# -- allocators ---------------------------------------------------------------------


@pytest.fixture
def rules():
    east, west = VMPoolFactory(name="agents-east"), VMPoolFactory(name="vip-east")
    vip = rule(
        name="VIP agents",
        priority=10,
        groups=["vip-agents", "vip-seniors"],
        pools=[west, east],
    )
    hefei = AllocatorFactory(
        name="Hefei seats",
        priority=20,
        binding_policy=BindingPolicy.SEAT,
        ou_subtrees=["ou=hefei,ou=sites,dc=example,dc=com"],
        pools=[east],
    )
    # Tried after "VIP agents" with the same group: it serves nobody.
    shadowed = rule(name="Late VIPs", priority=30, groups=["vip-agents"], pools=[west])
    off = AllocatorFactory(name="Retired rule", priority=5, enabled=False, pools=[east])
    default = AllocatorFactory(
        name="Everyone else",
        priority=1,
        is_default=True,
        binding_policy=BindingPolicy.FLOATING,
        pools=[east],
    )
    make_bindings(3, allocator=vip, pool=west, released=1)
    return {"vip": vip, "hefei": hefei, "shadowed": shadowed, "off": off, "default": default}


def test_allocators_are_listed_in_the_order_they_are_tried(viewer, rules):
    page = page_text(viewer, "/allocators/")
    # The default is tried last whatever its priority number.
    assert_in_order(page, "Retired rule", "VIP agents", "Hefei seats", "Late VIPs", "Everyone else")
    assert "agents-east" in page and "vip-east → agents-east" in page
    assert "groups vip-agents, vip-seniors" in page
    assert "under ou=hefei,ou=sites,dc=example,dc=com" in page
    # Two active bindings (the third is released), linked to the binding list.
    assert f'href="/bindings/?allocator={rules["vip"].pk}">2</a>' in page
    assert "shadowed by" in page and f'href="/allocators/{rules["vip"].pk}/"' in page
    assert "disabled" in page
    # A viewer gets no button to create one.
    assert "New allocator" not in page


def test_allocators_sort_by_name_and_by_bindings(viewer, rules):
    assert_in_order(
        page_text(viewer, "/allocators/", sort="name"),
        "Everyone else",
        "Hefei seats",
        "Late VIPs",
        "Retired rule",
        "VIP agents",
    )
    page = page_text(viewer, "/allocators/", sort="-active_bindings")
    assert_in_order(page, "VIP agents", "Everyone else")
    assert_in_order(
        page_text(viewer, "/allocators/", sort="-priority"),
        "Everyone else",
        "Late VIPs",
        "VIP agents",
        "Retired rule",
    )


def test_allocator_filters(viewer, rules):
    page = page_text(viewer, "/allocators/", enabled="no")
    assert "Retired rule" in page and "VIP agents" not in page
    page = page_text(viewer, "/allocators/", binding_policy="seat")
    assert "Hefei seats" in page and "VIP agents" not in page and "Everyone else" not in page
    west = rules["vip"].pool_links.get(order=0).pool
    page = page_text(viewer, "/allocators/", pool=west.pk)
    assert "VIP agents" in page and "Late VIPs" in page and "Hefei seats" not in page


def test_allocator_search_reads_names_groups_and_subtrees(viewer, rules):
    page = page_text(viewer, "/allocators/", q="vip-")
    # VIP agents has two groups that match and is listed once, with its own count.
    assert page.count(">VIP agents</a></td>") == 1 and "Late VIPs" in page
    assert "2 allocators" in page
    page = page_text(viewer, "/allocators/", q="ou=hefei")
    assert "Hefei seats" in page and "VIP agents" not in page
    page = page_text(viewer, "/allocators/", q="retired")
    assert "Retired rule" in page and "1 allocators" in page


def test_allocators_export_every_match_as_csv(viewer, rules):
    rows = csv_rows(viewer.get("/allocators/", {"format": "csv", "enabled": "yes"}))
    assert rows[0] == [
        "Priority",
        "Name",
        "Conditions",
        "Binding",
        "Pools, in order",
        "Active bindings",
        "State",
    ]
    by_name = {row[1]: row for row in rows[1:]}
    assert set(by_name) == {"VIP agents", "Hefei seats", "Late VIPs", "Everyone else"}
    assert by_name["VIP agents"][4:6] == ["vip-east → agents-east", "2"]
    assert by_name["Everyone else"][0] == "default" and by_name["Everyone else"][3] == "Floating"
    assert by_name["Late VIPs"][6] == "shadowed by VIP agents"


def test_allocators_paginate(viewer):
    pool = VMPoolFactory()
    for index in range(30):
        # Each its own group, so none shadows another.
        rule(name=f"rule-{index:02d}", priority=index, groups=[f"g{index}"], pools=[pool])
    first = page_text(viewer, "/allocators/", per_page=25)
    second = page_text(viewer, "/allocators/", per_page=25, page=2)
    assert ">rule-00<" in first and ">rule-24<" in first and ">rule-25<" not in first
    assert ">rule-25<" in second and ">rule-29<" in second and ">rule-00<" not in second
    assert "page 2 of 2" in second


def test_the_allocator_list_costs_the_same_queries_for_any_page_size(viewer):
    pools = [VMPoolFactory(), VMPoolFactory()]
    for index in range(205):
        rule(name=f"rule-{index:03d}", priority=index, groups=[f"group-{index % 7}"], pools=pools)
    make_bindings(3, allocator=Allocator.objects.first())
    same_queries_for_any_page_size(viewer, "/allocators/")


# -- bindings -----------------------------------------------------------------------


@pytest.fixture
def bound():
    east, west = VMPoolFactory(name="east-agents"), VMPoolFactory(name="west-agents")
    by_user = AllocatorFactory(name="By user", pools=[east])
    by_seat = AllocatorFactory(name="By seat", binding_policy=BindingPolicy.SEAT, pools=[west])
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    terminal = TerminalFactory(serial="TC-HF-007", seat="HF-07")
    vm_a = VM.objects.create(pool=east, name="east-agents-aaa", state="in_use")
    vm_b = VM.objects.create(pool=east, name="east-agents-bbb", state="ready")
    vm_s = VM.objects.create(pool=west, name="west-agents-sss", state="in_use")
    active = Binding.objects.create(allocator=by_user, kind="user", user=alice, vm=vm_a)
    released = Binding.objects.create(
        allocator=by_user, kind="user", user=bob, vm=vm_b, released_at=timezone.now()
    )
    seat = Binding.objects.create(allocator=by_seat, kind="seat", seat="HF-07", vm=vm_s)
    Binding.objects.filter(pk=seat.pk).update(created_at=timezone.now() - timedelta(days=3))
    return {
        "active": active,
        "released": released,
        "seat": seat,
        "east": east,
        "by_seat": by_seat,
        "terminal": terminal,
    }


def test_bindings_show_active_ones_unless_asked(viewer, bound):
    page = page_text(viewer, "/bindings/")
    assert "east-agents-aaa" in page and "west-agents-sss" in page
    assert "east-agents-bbb" not in page
    assert '<option value="yes" selected>' in page or '<option value="yes">' in page
    page = page_text(viewer, "/bindings/", active="no")
    assert "east-agents-bbb" in page and "east-agents-aaa" not in page
    page = page_text(viewer, "/bindings/", active="any")
    assert "east-agents-bbb" in page and "east-agents-aaa" in page
    active = bound["active"]
    # Each row links its binding, VM, pool and allocator.
    assert f'href="/bindings/{active.pk}/"' in page
    assert f'href="/vms/{active.vm_id}/"' in page
    assert f'href="/pools/{bound["east"].pk}/"' in page
    assert f'href="/allocators/{active.allocator_id}/"' in page


def test_binding_filters_and_search(viewer, bound):
    page = page_text(viewer, "/bindings/", kind="seat")
    assert "west-agents-sss" in page and "east-agents-aaa" not in page
    page = page_text(viewer, "/bindings/", pool=bound["east"].pk, active="any")
    assert "east-agents-aaa" in page and "east-agents-bbb" in page
    assert "west-agents-sss" not in page
    page = page_text(viewer, "/bindings/", allocator=bound["by_seat"].pk)
    assert "west-agents-sss" in page and "east-agents-aaa" not in page
    for query, expected in [("alic", "east-agents-aaa"), ("hf-07", "west-agents-sss")]:
        page = page_text(viewer, "/bindings/", q=query)
        assert expected in page and "1 bindings" in page, query
    page = page_text(viewer, "/bindings/", q="bbb", active="any")
    assert "east-agents-bbb" in page and "1 bindings" in page
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = page_text(viewer, "/bindings/", since=since)
    assert "east-agents-aaa" in page and "west-agents-sss" not in page


def test_bindings_sort(viewer, bound):
    # Newest first by default: the seat binding is three days old.
    assert_in_order(page_text(viewer, "/bindings/"), "east-agents-aaa", "west-agents-sss")
    assert_in_order(
        page_text(viewer, "/bindings/", sort="created_at"), "west-agents-sss", "east-agents-aaa"
    )
    assert_in_order(
        page_text(viewer, "/bindings/", sort="-vm.name"), "west-agents-sss", "east-agents-aaa"
    )


def test_bindings_export_csv(viewer, bound):
    rows = csv_rows(viewer.get("/bindings/", {"format": "csv", "active": "any"}))
    assert rows[0][:6] == ["Binding", "User", "Policy", "Seat", "Terminal", "VM"]
    by_vm = {row[5]: row for row in rows[1:]}
    assert set(by_vm) == {"east-agents-aaa", "east-agents-bbb", "west-agents-sss"}
    assert by_vm["east-agents-aaa"][1:3] == ["alice", "By user"]
    assert by_vm["west-agents-sss"][2:4] == ["By seat", "HF-07"]
    assert by_vm["east-agents-bbb"][-1] != "" and by_vm["east-agents-aaa"][-1] == ""


def test_bindings_paginate(viewer):
    make_bindings(30)
    first = page_text(viewer, "/bindings/", per_page=25, sort="vm.name")
    second = page_text(viewer, "/bindings/", per_page=25, sort="vm.name", page=2)
    assert "-vm-" in first and "page 1 of 2" in first
    vm_links = re.compile(r'href="/vms/\d+/"')
    assert len(vm_links.findall(second)) == 5 and len(vm_links.findall(first)) == 25


def test_the_binding_list_costs_the_same_queries_for_any_page_size(viewer):
    make_bindings(210)
    same_queries_for_any_page_size(viewer, "/bindings/")


def test_posting_to_the_binding_pages_changes_nothing(viewer, bound):
    assert viewer.post("/bindings/").status_code == 405
    assert viewer.post(f"/bindings/{bound['active'].pk}/").status_code == 405


# -- terminals ----------------------------------------------------------------------


@pytest.fixture
def fleet():
    hefei, shanghai = SiteFactory(name="hefei"), SiteFactory(name="shanghai")
    now = timezone.now()
    return {
        "a": TerminalFactory(
            serial="TC-HF-001",
            site=hefei,
            seat="HF-01",
            mac_address="52:54:00:aa:00:01",
            last_ip="10.8.0.11",
            last_seen_at=now - timedelta(hours=2),
            tags=["front"],
        ),
        "b": TerminalFactory(
            serial="TC-SH-002", site=shanghai, seat="SH-02", last_seen_at=now, last_ip="10.9.0.2"
        ),
        "pending": TerminalFactory(
            serial="TC-NEW-003", site=None, seat="", status=TerminalStatus.PENDING
        ),
        "off": TerminalFactory(serial="TC-SH-004", site=shanghai, enabled=False),
    }


def test_terminals_filter_by_status_site_and_enabled(viewer, fleet):
    page = page_text(viewer, "/terminals/", status="pending")
    assert "TC-NEW-003" in page and "TC-HF-001" not in page
    page = page_text(viewer, "/terminals/", site=fleet["a"].site_id)
    assert "TC-HF-001" in page and "TC-SH-002" not in page
    page = page_text(viewer, "/terminals/", enabled="no")
    assert "TC-SH-004" in page and "TC-SH-002" not in page
    # The page says how many wait for enrollment.
    assert "1 terminal called in unknown" in page_text(viewer, "/terminals/")


def test_terminal_search_reads_serial_mac_seat_and_address(viewer, fleet):
    for query in ["hf-001", "aa:00:01", "HF-01", "10.8.0.11"]:
        page = page_text(viewer, "/terminals/", q=query)
        assert "TC-HF-001" in page and "1 terminals" in page, query
    assert f'href="/terminals/{fleet["a"].pk}/"' in page_text(viewer, "/terminals/")


def test_terminals_sort_by_serial_and_last_seen(viewer, fleet):
    assert_in_order(page_text(viewer, "/terminals/"), "TC-HF-001", "TC-NEW-003", "TC-SH-002")
    assert_in_order(
        page_text(viewer, "/terminals/", sort="-serial"), "TC-SH-002", "TC-NEW-003", "TC-HF-001"
    )
    page = page_text(viewer, "/terminals/", sort="last_seen_at", enabled="yes", status="enrolled")
    assert_in_order(page, "TC-HF-001", "TC-SH-002")


def test_terminals_export_csv(viewer, fleet):
    rows = csv_rows(viewer.get("/terminals/", {"format": "csv", "site": fleet["a"].site_id}))
    assert rows[0] == [
        "Serial",
        "MAC",
        "Site",
        "Seat",
        "Tags",
        "Status",
        "Enabled",
        "Last seen",
        "Last IP",
    ]
    assert len(rows) == 2
    assert rows[1][:7] == [
        "TC-HF-001",
        "52:54:00:aa:00:01",
        "hefei",
        "HF-01",
        "front",
        "Enrolled",
        "yes",
    ]
    assert rows[1][8] == "10.8.0.11"


def test_terminals_paginate(viewer):
    Terminal.objects.bulk_create(Terminal(serial=f"TC-BULK-{n:03d}") for n in range(60))
    first = page_text(viewer, "/terminals/")
    last = page_text(viewer, "/terminals/", page=2)
    assert ">TC-BULK-049<" in first and ">TC-BULK-050<" not in first
    assert ">TC-BULK-050<" in last and ">TC-BULK-059<" in last and "page 2 of 2" in last


def test_enroll_and_import_are_for_operators_only(client, fleet):
    client.force_login(UserFactory(role="helpdesk"))
    page = page_text(client, "/terminals/", status="pending")
    assert "TC-NEW-003" in page and ">Enroll</button>" not in page and "Import CSV" not in page
    client.force_login(UserFactory(role="operator"))
    page = page_text(client, "/terminals/", status="pending")
    assert ">Enroll</button>" in page and "Import CSV" in page


def test_the_terminal_list_costs_the_same_queries_for_any_page_size(client):
    site = SiteFactory(name="hefei")
    Terminal.objects.bulk_create(
        Terminal(
            serial=f"TC-{n:04d}",
            site=site if n % 2 else None,
            status=TerminalStatus.PENDING if n % 3 == 0 else TerminalStatus.ENROLLED,
            tags=["front"],
        )
        for n in range(230)
    )
    # An operator's page carries an Enroll form on every pending row.
    client.force_login(UserFactory(role="operator"))
    same_queries_for_any_page_size(client, "/terminals/")


# -- all lists ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/allocators/", "/bindings/", "/terminals/"])
def test_bad_query_strings_still_give_the_list(viewer, rules, bound, fleet, url):
    for query in BAD_QUERIES:
        response = viewer.get(f"{url}?{query}")
        assert response.status_code == 200, f"{url}?{query}"
    csv_response = viewer.get(f"{url}?format=csv&sort=bogus&page=-3")
    assert len(csv_rows(csv_response)) > 1


@pytest.mark.parametrize("url", ["/allocators/", "/bindings/", "/terminals/"])
def test_htmx_gets_only_the_table(viewer, rules, bound, fleet, url):
    response = viewer.get(url, headers={"HX-Request": "true", "HX-Target": "listing"})
    assert response.status_code == 200
    text = response.content.decode()
    assert text.lstrip().startswith('<div id="listing"') and "<html" not in text
