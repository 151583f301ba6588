"""`manage.py seed_scale`: a world written in bulk whose rows hold together the
way the services would have left them, so a thin client of the world really
connects; and a database that already holds data is refused."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from allocation.choices import BindingPolicy
from allocation.models import Binding, DesktopSession, Terminal
from allocation.selectors import allocator_for, binding_active_for
from cloud.choices import ServerStatus
from cloud.models import Host, Region, SimServer
from pools.choices import VMState
from pools.models import VM, VMPool
from portal.models import AuditEvent
from portal.scale import SCALE_WORLD, TINY_WORLD, WorldSize
from portal.scale.cloud import RUNNING_VM_STATES
from tests.factories import RegionFactory, UserFactory

pytestmark = pytest.mark.django_db

TINY = [
    "--regions", "2", "--hosts", "6", "--pools", "4", "--vms", "60", "--sites", "3",
    "--terminals", "80", "--users", "50", "--allocators", "6", "--bindings", "30",
    "--released-bindings", "5", "--audit-events", "40", "--alerts", "5",
    "--unclosed-alerts", "2", "--incidents", "3", "--unclosed-incidents", "1", "--tasks", "2",
    "--runs", "3", "--items-per-run", "2", "--swaps", "3", "--connect-records", "20",
    "--probes", "3",
]  # fmt: skip


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_scale", *TINY, *args, stdout=out)
    return out.getvalue()


def test_seed_scale_writes_the_world_it_reports():
    out = seed()

    assert Region.objects.count() == 2
    assert Host.objects.count() == 6
    assert VMPool.objects.count() == 4
    assert VM.objects.count() == 60
    assert Terminal.objects.count() == 80
    assert get_user_model().objects.count() == 50
    assert Binding.objects.filter(released_at__isnull=True).count() == 30
    assert "seeded" in out and "rows in" in out
    assert "terminals" in out and "80" in out


def test_every_binding_holds_an_in_use_vm_and_is_the_one_a_connect_finds():
    seed()

    active = Binding.objects.filter(released_at__isnull=True).select_related("vm", "allocator")
    assert VM.objects.filter(state=VMState.IN_USE).count() == active.count() == 30
    for binding in active:
        assert binding.vm.state == VMState.IN_USE
        session = DesktopSession.objects.filter(binding=binding).select_related("user", "terminal")[
            0
        ]
        if binding.kind == BindingPolicy.SEAT:
            assert binding.seat == session.terminal.seat
        if binding.kind == BindingPolicy.TERMINAL:
            assert binding.terminal == session.terminal
        assert session.terminal.may_connect
        # The matching a connect runs picks the binding's allocator, and finds it.
        allocator = allocator_for(user=session.user, terminal=session.terminal)
        assert allocator == binding.allocator
        found = binding_active_for(
            allocator=allocator, user=session.user, terminal=session.terminal
        )
        assert found == binding
        # Its VM comes from one of the allocator's pools.
        assert binding.vm.pool_id in set(allocator.pool_links.values_list("pool_id", flat=True))


def test_every_vm_runs_on_a_host_of_its_pools_region_with_its_simulated_server():
    seed()

    hosts = {(h.region_id, h.name) for h in Host.objects.all()}
    servers = {str(s.id): s for s in SimServer.objects.select_related("host")}
    running = 0
    for vm in VM.objects.select_related("pool"):
        if vm.host_name:
            assert (vm.pool.region_id, vm.host_name) in hosts, vm.name
        if vm.state in RUNNING_VM_STATES and vm.host_name:
            running += 1
            server = servers[vm.server_id]
            assert server.status == ServerStatus.ACTIVE
            assert server.host.name == vm.host_name
            assert server.region_id == vm.pool.region_id
    assert running == len(servers) > 30
    # Two servers of one host never share a SPICE port.
    ports = [(s.host_id, s.spice_port) for s in servers.values()]
    assert len(ports) == len(set(ports))


def test_every_user_has_the_given_password():
    seed("--password", "s3cret-scale")

    users = get_user_model().objects.filter(username__startswith="scale-user")
    assert users.count() == 50
    # One encoded hash for all: the same password, hashed once.
    assert users.values("password").distinct().count() == 1
    assert users.first().check_password("s3cret-scale")
    assert not users.first().check_password("deskops-scale")


def test_a_database_that_holds_data_is_refused_unless_appending():
    RegionFactory(name="production")

    with pytest.raises(CommandError, match="already holds data"):
        seed()
    assert VM.objects.count() == 0

    seed("--append")
    assert Region.objects.filter(name__startswith="scale-").count() == 2
    with pytest.raises(CommandError, match="prefix “scale”"):
        seed("--append")
    seed("--append", "--prefix", "second")
    assert Region.objects.filter(name__startswith="second-").count() == 2


def test_an_impossible_size_is_refused_with_the_reason():
    with pytest.raises(CommandError, match="fewer than regions"):
        call_command("seed_scale", *TINY, "--hosts", "1", stdout=StringIO())


def test_the_counts_left_unset_follow_the_ones_given():
    size = WorldSize(vms=100, terminals=50, bindings=5_000, users=10).fitted()

    assert size.bindings == 50
    assert size.users == 50
    assert size.problems() == []
    assert SCALE_WORLD.terminals == 100_000 and SCALE_WORLD.vms == 50_000
    assert SCALE_WORLD.problems() == [] and TINY_WORLD.problems() == []


@pytest.mark.parametrize(
    ("url", "model", "order"),
    [
        ("/api/v1/bindings/", Binding, ("-created_at", "-pk")),
        ("/api/v1/audit-events/", AuditEvent, ("-created_at", "-pk")),
    ],
)
def test_long_lists_page_through_every_row_once_in_order(client, url, model, order):
    """These lists find a page's ids first and read the rows after: the pages
    still add up to the whole list, in its order."""
    seed()
    client.force_login(UserFactory(role="operator"))

    seen, page = [], 1
    while True:
        body = client.get(url, {"page_size": 7, "page": page}).json()
        seen += [row["id"] for row in body["results"]]
        if not body["next"]:
            break
        page += 1

    assert body["count"] == model.objects.count()
    assert seen == list(model.objects.order_by(*order).values_list("pk", flat=True))


@pytest.mark.parametrize("prefix", ["Ünï", "UPPER", "-dash", "a" * 21, "with space", ""])
def test_a_prefix_that_would_not_make_clean_names_is_refused(prefix):
    with pytest.raises(CommandError, match="--prefix"):
        seed("--prefix", prefix)
