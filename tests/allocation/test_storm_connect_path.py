"""What the login-storm tuning changed on the connect path, and what it must keep:
a returning directory user's login writes no unchanged row, a changed name still
reaches Django, refill requests are debounced per pool, a claimed VM is returned
as the database holds it, and the directory's group search reads names only."""

from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocation.directory import directory_authenticate
from allocation.models import DirectoryProfile
from allocation.selectors import login_facts
from allocation.services import desktop_connect
from allocation.throttling import login_attempt_check, login_failure_record
from cloud.choices import HostState
from cloud.models import Host
from pools.choices import VMState
from pools.models import VM
from pools.services import pools_refill_soon, vm_claim_ready
from portal.settings.ldap import directory_settings
from tests.allocation.conftest import GROUPS, PEOPLE
from tests.factories import PASSWORD, Desk, VMPoolFactory, fill_pool

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith(("UPDATE", "INSERT"))]


# The directory login


@pytest.mark.ldap
def test_a_returning_directory_user_is_not_rewritten(use_directory, slapd):
    use_directory()
    person = slapd.people["wli"]
    first = directory_authenticate(None, username=person.uid, password=person.password)
    synced_at = DirectoryProfile.objects.get(user=first).synced_at

    with CaptureQueriesContext(connection) as queries:
        again = directory_authenticate(None, username=person.uid, password=person.password)

    assert again == first
    assert writes(queries) == []
    assert DirectoryProfile.objects.get(user=first).synced_at == synced_at


@pytest.mark.ldap
def test_a_name_changed_in_the_directory_reaches_django_at_the_next_login(
    use_directory, slapd, directory_edit
):
    use_directory()
    person = slapd.people["fwang"]
    user = directory_authenticate(None, username=person.uid, password=person.password)
    directory_edit(
        f"dn: {person.dn}\nchangetype: modify\nreplace: sn\nsn: Wang-Li\n",
        undo=f"dn: {person.dn}\nchangetype: modify\nreplace: sn\nsn: {person.surname}\n",
    )

    with CaptureQueriesContext(connection) as queries:
        directory_authenticate(None, username=person.uid, password=person.password)

    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Fang", "Wang-Li")
    [update] = [sql for sql in writes(queries) if "auth_user" in sql]
    assert '"last_name"' in update and '"first_name"' not in update


@pytest.mark.ldap
def test_a_new_directory_user_is_filled_in(use_directory, slapd):
    use_directory()
    person = slapd.people["mzhang"]

    user = directory_authenticate(None, username=person.uid, password=person.password)

    user.refresh_from_db()
    assert (user.first_name, user.last_name, user.email) == ("Min", "Zhang", person.mail)
    assert DirectoryProfile.objects.get(user=user).dn.lower() == person.dn.lower()


def test_group_searches_read_only_the_group_name():
    values = directory_settings(
        server_uri="ldap://127.0.0.1", user_search_base=PEOPLE, group_search_base=GROUPS
    )

    assert values["AUTH_LDAP_GROUP_SEARCH"].attrlist == ["cn"]
    assert values["AUTH_LDAP_ALWAYS_UPDATE_USER"] is False


# Refill requests


def test_refill_requests_for_a_pool_are_debounced(settings, pool):
    settings.POOL_REFILL_SOON_DEBOUNCE = 60
    other = VMPoolFactory()
    with mock.patch("pools.tasks.pool_refill.delay") as delay:
        pools_refill_soon([pool.pk])
        pools_refill_soon([pool.pk])
        pools_refill_soon([pool.pk, other.pk])

    assert [c.args for c in delay.call_args_list] == [(pool.pk,), (other.pk,)]


def test_without_debounce_every_request_is_queued(settings, pool):
    settings.POOL_REFILL_SOON_DEBOUNCE = 0
    with mock.patch("pools.tasks.pool_refill.delay") as delay:
        pools_refill_soon([pool.pk])
        pools_refill_soon([pool.pk])

    assert delay.call_count == 2


def test_a_refill_that_could_not_be_queued_is_asked_again_at_the_next_connect(settings, pool):
    settings.POOL_REFILL_SOON_DEBOUNCE = 60
    with mock.patch("pools.tasks.pool_refill.delay", side_effect=ConnectionError("down")):
        pools_refill_soon([pool.pk])
    with mock.patch("pools.tasks.pool_refill.delay") as delay:
        pools_refill_soon([pool.pk])
    delay.assert_called_once_with(pool.pk)


def test_a_cache_that_is_down_does_not_stop_refill_requests(settings, pool):
    settings.POOL_REFILL_SOON_DEBOUNCE = 60
    with (
        mock.patch("pools.services.refill.cache.add", side_effect=ConnectionError("down")),
        mock.patch("pools.tasks.pool_refill.delay") as delay,
    ):
        pools_refill_soon([pool.pk])

    delay.assert_called_once_with(pool.pk)


def test_a_storm_of_connects_queues_one_refill_per_pool(settings):
    settings.POOL_REFILL_SOON_DEBOUNCE = 60
    desk = Desk.build(ready=3)
    users = [desk.user, *(type(desk.user).objects.create(username=f"s{i}") for i in range(2))]
    for user in users[1:]:
        user.set_password(PASSWORD)
        user.save()

    with mock.patch("pools.tasks.pool_refill.delay") as delay:
        for user in users:
            with mock.patch("django.db.transaction.on_commit", side_effect=lambda f, **_: f()):
                result = desktop_connect(
                    username=user.username,
                    password=PASSWORD,
                    terminal_serial=desk.terminal.serial,
                )
            assert result.status == "ready"

    delay.assert_called_once_with(desk.pool.pk)


# The claim


def test_a_claimed_vm_is_returned_as_the_database_holds_it(pool):
    fill_pool(pool, 2)

    vm = vm_claim_ready(pool=pool)

    stored = VM.objects.get(pk=vm.pk)
    assert vm.state == stored.state == VMState.IN_USE
    assert vm.assigned_at == stored.assigned_at
    assert vm.pool is pool
    assert vm.updated_at == stored.updated_at


def test_a_new_binding_has_no_earlier_session_to_end_and_a_reconnect_ends_it():
    desk = Desk.build()
    body = {
        "username": desk.user.username,
        "password": PASSWORD,
        "terminal_serial": desk.terminal.serial,
    }

    first = desktop_connect(**body)
    second = desktop_connect(**body)

    first.session.refresh_from_db()
    assert first.claimed and not second.claimed
    assert first.session.ended_reason == "superseded"
    assert second.session.ended_at is None


# The claim on PostgreSQL: one statement


@pytest.mark.postgres
def test_on_postgresql_a_claim_is_one_statement_that_takes_the_longest_idle_vm(pool):
    fill_pool(pool, 3)
    oldest = VM.objects.filter(pool=pool, state=VMState.READY).order_by("ready_at", "pk").first()

    with CaptureQueriesContext(connection) as queries:
        vm = vm_claim_ready(pool=pool)

    [claim] = [q["sql"] for q in queries.captured_queries]
    assert claim.startswith("UPDATE") and "SKIP LOCKED" in claim and "RETURNING" in claim
    assert vm.pk == oldest.pk
    stored = VM.objects.get(pk=vm.pk)
    assert (vm.state, vm.assigned_at, vm.name) == (stored.state, stored.assigned_at, stored.name)


def test_a_claim_skips_a_vm_on_a_host_that_is_down_and_ends_when_none_is_left(pool):
    fill_pool(pool, 2)
    first, second = VM.objects.filter(pool=pool).order_by("ready_at", "pk")
    VM.objects.filter(pk=first.pk).update(host_name="cmp-down")
    VM.objects.filter(pk=second.pk).update(host_name="cmp-up")
    Host.objects.create(region=pool.region, name="cmp-down", state=HostState.DOWN)
    Host.objects.create(region=pool.region, name="cmp-up", state=HostState.UP)

    assert vm_claim_ready(pool=pool).pk == second.pk
    assert vm_claim_ready(pool=pool) is None
    assert VM.objects.get(pk=first.pk).state == VMState.READY


# The directory's groups, read once


@pytest.mark.ldap
def test_a_directory_login_matches_allocators_on_the_groups_it_has_just_mirrored(
    use_directory, slapd
):
    use_directory()
    person = slapd.people["qzhao"]
    user = directory_authenticate(None, username=person.uid, password=person.password)

    with CaptureQueriesContext(connection) as queries:
        facts = login_facts(user=user, terminal=None)

    assert facts.groups == person.groups == set(user.groups.values_list("name", flat=True))
    assert not [q for q in queries.captured_queries if "auth_group" in q["sql"]]


@pytest.mark.ldap
def test_with_partial_mirroring_the_groups_come_from_the_database(use_directory, slapd, settings):
    use_directory()
    settings.AUTH_LDAP_MIRROR_GROUPS = ["agents"]
    person = slapd.people["qzhao"]  # in agents and supervisors
    local = Group.objects.create(name="local-only")
    user = User.objects.create(username=person.uid)
    user.groups.add(local)

    user = directory_authenticate(None, username=person.uid, password=person.password)
    facts = login_facts(user=user, terminal=None)

    # Only "agents" is mirrored; a group the directory does not manage stays.
    assert facts.groups == {"agents", "local-only"}


def test_a_local_login_reads_its_groups_from_the_database(django_user_model):
    user = django_user_model.objects.create_user("breakglass", password="x" * 16)
    user.groups.add(Group.objects.create(name="it-staff"))

    user = directory_authenticate(None, username="breakglass", password="x" * 16)

    assert login_facts(user=user, terminal=None).groups == {"it-staff"}


# The failed-login count: read once, cleared only when there is one


def test_a_connect_without_failures_deletes_no_failure_count():
    desk = Desk.build()
    with mock.patch.object(cache, "delete", wraps=cache.delete) as delete:
        result = desktop_connect(
            username=desk.user.username, password=PASSWORD, terminal_serial=desk.terminal.serial
        )
    assert result.status == "ready"
    assert not [c for c in delete.call_args_list if "fail" in str(c.args[0])]


def test_a_successful_connect_clears_the_failures_counted_before_it():
    desk = Desk.build()
    login_failure_record(username=desk.user.username, terminal_serial=desk.terminal.serial)
    assert login_attempt_check(username=desk.user.username, terminal_serial="other") is True

    desktop_connect(
        username=desk.user.username, password=PASSWORD, terminal_serial=desk.terminal.serial
    )

    assert login_attempt_check(username=desk.user.username, terminal_serial="other") is False
