"""Host-failure recovery on the simulated cloud: a host carrying 40 bound users
dies; DeskOps declares it failed after the threshold, takes it out of placement,
marks its VMs lost and gives every user a desktop on another host — the first at
once from the ready VMs, the rest as soon as the refill has booted theirs — and
an incident records the timeline."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from allocation.choices import BindingPolicy
from allocation.models import Binding, VMSwap
from allocation.services.helpdesk import swaps_complete_pending
from cloud.choices import HostState
from cloud.drivers import driver_for
from cloud.models import Host, SimHost
from cloud.services import regions_sync_hosts
from monitoring.choices import IncidentStatus
from monitoring.models import Incident
from monitoring.recovery import host_return_to_service, hosts_recover_failed, incidents_follow
from pools.choices import VMState
from pools.models import VM, VMPool
from pools.services import pools_refill_all, vms_poll_boots
from tests.factories import (
    PASSWORD,
    AllocatorFactory,
    RegionFactory,
    SimHostFactory,
    TerminalFactory,
    UserFactory,
    VMPoolFactory,
    fill_pool,
)

API = "/api/thin-client/v1"
USERS = 40


def set_host(host_name: str, state: str) -> None:
    SimHost.objects.filter(name=host_name).update(state=state)
    regions_sync_hosts()


def age_down_since(seconds: float) -> None:
    """Make the hosts' outage older, as if the clock had moved on."""
    for host in Host.objects.exclude(down_since=None):
        Host.objects.filter(pk=host.pk).update(
            down_since=host.down_since - timedelta(seconds=seconds)
        )


class World:
    """A region with one big host (the victim) carrying every user's desktop and
    two spare hosts, a pool with `spare` ready VMs on the spares, and `users`
    users connected through the thin-client API."""

    def __init__(self, *, users: int, spare: int, shared_storage: bool = False):
        self.region = RegionFactory(hosts=0, shared_storage=shared_storage)
        self.victim = SimHostFactory(
            region=self.region, name="victim", vcpus=64, memory_mb=262144
        ).name
        self.spares = [SimHostFactory(region=self.region, name=f"spare-{i}").name for i in (1, 2)]
        self.pool = VMPoolFactory(region=self.region, max_size=1000)
        for name in self.spares:
            SimHost.objects.filter(name=name).update(state=HostState.DOWN)
        regions_sync_hosts()
        fill_pool(self.pool, users)
        for name in self.spares:
            SimHost.objects.filter(name=name).update(state=HostState.UP)
        regions_sync_hosts()
        AllocatorFactory(is_default=True, pools=[self.pool], binding_policy=BindingPolicy.USER)
        self.terminal = TerminalFactory()
        self.client = APIClient()
        self.users = [UserFactory() for _ in range(users)]
        self.sessions = {}
        for user in self.users:
            answer = self.connect(user)
            assert answer.status_code == 200, answer.content
            self.sessions[user.pk] = answer.json()["session"]
        assert set(VM.objects.filter(state=VMState.IN_USE).values_list("host_name", flat=True)) == {
            self.victim
        }
        if spare:
            # The ready VMs go to the spares: the victim takes no placement meanwhile.
            set_host(self.victim, HostState.DISABLED)
            fill_pool(self.pool, spare)
            set_host(self.victim, HostState.UP)
        # Replacements boot on the spares at the pool's own pace.
        VMPool.objects.filter(pk=self.pool.pk).update(target_ready=spare, max_concurrent_boots=10)

    def connect(self, user):
        body = {"username": user.username, "password": PASSWORD, "terminal": self.terminal.serial}
        return self.client.post(f"{API}/connect", body, format="json")

    def heartbeat(self, user) -> str:
        body = {"session": self.sessions[user.pk], "terminal": self.terminal.serial}
        return self.client.post(f"{API}/heartbeat", body, format="json").json()["action"]

    def fail_victim(self, *, after_seconds: float = 120) -> None:
        set_host(self.victim, HostState.DOWN)
        age_down_since(after_seconds)


def run_periodic_jobs_until_recovered(limit: int = 50) -> int:
    """What beat does every few seconds: refill, follow boots, finish swaps."""
    for round_ in range(limit):
        if not Incident.objects.filter(status=IncidentStatus.OPEN).exists():
            return round_
        pools_refill_all()
        vms_poll_boots()
        swaps_complete_pending()
        incidents_follow()
    raise AssertionError("the incident never recovered")


@pytest.mark.django_db
def test_forty_users_of_a_failed_host_are_re_served_within_five_minutes(settings):
    settings.HOST_FAILURE_THRESHOLD = 60
    world = World(users=USERS, spare=10)
    old_vms = set(VM.objects.filter(state=VMState.IN_USE).values_list("pk", flat=True))

    world.fail_victim(after_seconds=90)
    assert hosts_recover_failed() == {world.victim: USERS}

    incident = Incident.objects.get()
    assert incident.users_affected == USERS and incident.vms_affected == USERS
    assert VMSwap.objects.filter(incident=incident, status="done").count() == 10
    assert Host.objects.get(name=world.victim).failed_at is not None
    assert set(VM.objects.filter(pk__in=old_vms).values_list("state", flat=True)) == {"lost"}
    # Every thin client on the dead host is told to reconnect.
    assert {world.heartbeat(user) for user in world.users} == {"reconnect"}

    run_periodic_jobs_until_recovered()

    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RECOVERED
    assert incident.recovery_seconds < 300
    bindings = Binding.objects.filter(released_at__isnull=True)
    assert bindings.count() == USERS
    new_vms = list(bindings.values_list("vm_id", flat=True))
    assert len(set(new_vms)) == USERS, "a VM was handed to two users"
    assert not set(new_vms) & old_vms
    placed = VM.objects.filter(pk__in=new_vms)
    assert set(placed.values_list("state", flat=True)) == {VMState.IN_USE}
    assert set(placed.values_list("host_name", flat=True)) <= set(world.spares)
    # Reconnecting, each user gets the desktop they were moved to.
    for user in world.users[:5]:
        answer = world.connect(user)
        assert answer.status_code == 200
        assert (
            answer.json()["desktop"]["id"] == Binding.objects.get(user=user, released_at=None).vm_id
        )
    messages = list(incident.events.values_list("message", flat=True))
    assert "declared failed" in messages[0]
    assert "10 re-served at once, 30 waiting" in messages[1]
    assert messages[-1].startswith("Recovered: 40 users re-served")


@pytest.mark.django_db
def test_a_host_down_less_than_the_threshold_is_left_alone(settings):
    settings.HOST_FAILURE_THRESHOLD = 60
    world = World(users=3, spare=2)
    world.fail_victim(after_seconds=10)
    assert hosts_recover_failed() == {}
    assert not Incident.objects.exists()
    # Back up before the threshold: the outage is forgotten.
    set_host(world.victim, HostState.UP)
    assert Host.objects.get(name=world.victim).down_since is None
    age_down_since(600)
    assert hosts_recover_failed() == {}


@pytest.mark.django_db
def test_ready_vms_of_a_down_host_are_not_handed_out_before_recovery(settings):
    settings.HOST_FAILURE_THRESHOLD = 600
    region = RegionFactory(hosts=1)
    regions_sync_hosts()
    pool = VMPoolFactory(region=region)
    fill_pool(pool, 2)
    AllocatorFactory(is_default=True, pools=[pool])
    terminal = TerminalFactory()
    SimHost.objects.filter(region=region).update(state=HostState.DOWN)
    regions_sync_hosts()
    body = {"username": UserFactory().username, "password": PASSWORD, "terminal": terminal.serial}
    answer = APIClient().post(f"{API}/connect", body, format="json")
    assert answer.status_code == 202


@pytest.mark.django_db
def test_a_failed_host_takes_no_placement_until_returned_to_service(settings):
    settings.HOST_FAILURE_THRESHOLD = 0
    world = World(users=2, spare=0)
    world.fail_victim()
    hosts_recover_failed()
    set_host(world.victim, HostState.UP)  # the host came back by itself

    VMPool.objects.filter(pk=world.pool.pk).update(target_ready=6)
    pools_refill_all()
    vms_poll_boots()
    assert world.victim not in set(
        VM.objects.filter(state="ready").values_list("host_name", flat=True)
    )

    host = Host.objects.get(name=world.victim)
    host_return_to_service(host=host, actor="olga")
    host.refresh_from_db()
    assert host.failed_at is None
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.CLOSED and incident.closed_by == "olga"
    assert "returned to service by olga" in incident.events.last().message


@pytest.mark.django_db
def test_with_shared_storage_the_desktops_are_evacuated_and_keep_their_users(settings):
    settings.HOST_FAILURE_THRESHOLD = 0
    world = World(users=3, spare=0, shared_storage=True)
    before = dict(Binding.objects.filter(released_at=None).values_list("user_id", "vm_id"))

    world.fail_victim()
    hosts_recover_failed()

    assert dict(Binding.objects.filter(released_at=None).values_list("user_id", "vm_id")) == before
    assert {world.heartbeat(user) for user in world.users} == {"reconnect"}
    user = world.users[0]
    vm = VM.objects.get(pk=before[user.pk])
    server = driver_for(world.region).get_server(vm.server_id)
    assert server.host in world.spares and server.status == "SHUTOFF"
    # The evacuated server is shut off on its new host: the connect starts it.
    answer = world.connect(user)
    assert answer.status_code == 200 and answer.json()["desktop"]["id"] == before[user.pk]
    assert VM.objects.get(pk=before[user.pk]).state == VMState.IN_USE
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.RECOVERED
    assert incident.events.last().message.startswith(
        "Recovered: 0 users re-served on fresh desktops, 3 kept their evacuated desktops"
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_recovering_at_once_move_each_user_once(settings):
    settings.HOST_FAILURE_THRESHOLD = 0
    world = World(users=12, spare=12)
    world.fail_victim()
    results, errors = [], []

    def worker():
        try:
            results.append(hosts_recover_failed())
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(r.get(world.victim, 0) for r in results) == [0, 0, 0, 12]
    assert Incident.objects.count() == 1
    assert VMSwap.objects.filter(status="done").count() == 12
    vms = list(Binding.objects.filter(released_at=None).values_list("vm_id", flat=True))
    assert len(vms) == len(set(vms)) == 12
    assert timezone.now() - Incident.objects.get().opened_at < timedelta(minutes=5)


@pytest.mark.django_db
def test_most_of_a_region_down_at_once_waits_for_an_operator(settings):
    """A control-plane outage makes every compute service look down: moving
    everyone would do more harm than the outage."""
    settings.HOST_FAILURE_THRESHOLD = 0
    world = World(users=2, spare=2)
    SimHost.objects.filter(region=world.region).update(state=HostState.DOWN)
    regions_sync_hosts()
    assert hosts_recover_failed() == {}
    assert not Incident.objects.exists()
    assert VM.objects.filter(state=VMState.IN_USE).count() == 2

    settings.HOST_FAILURE_MAX_SHARE = 1.0
    assert hosts_recover_failed()[world.victim] == 2
