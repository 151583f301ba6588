"""The thin-client connect call, v1: its contract, each error, and what a failed
connect leaves behind (nothing)."""

import pytest
from rest_framework.test import APIClient

from allocation.choices import BindingPolicy, TerminalStatus
from allocation.models import Binding, DesktopSession, Terminal
from cloud.models import Region, SimulatedRegion
from pools.choices import VMState
from pools.models import VM
from portal.models import AuditEvent
from tests.conftest import celery_broker
from tests.factories import (
    AllocatorFactory,
    Desk,
    TerminalFactory,
    UserFactory,
    VMPoolFactory,
    fill_pool,
)

pytestmark = pytest.mark.django_db
CONNECT = "/api/thin-client/v1/connect"


@pytest.fixture
def client():
    return APIClient()


def connect(client, body):
    return client.post(CONNECT, body, format="json")


def test_ready_answer_carries_spice_connection_info(client, desk):
    response = connect(client, desk.connect_body())

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    desktop = body["desktop"]
    assert set(desktop) == {
        "id", "name", "pool", "protocol", "host", "port", "tls_port", "password", "expires_at"
    }  # fmt: skip
    vm = VM.objects.get(pk=desktop["id"])
    assert vm.state == VMState.IN_USE
    assert desktop["pool"] == desk.pool.name and desktop["protocol"] == "spice"
    assert desktop["port"] >= 5900 and desktop["tls_port"] == desktop["port"] + 1
    assert len(desktop["password"]) >= 12
    session = DesktopSession.objects.get(pk=body["session"])
    assert (session.user, session.terminal, session.vm) == (desk.user, desk.terminal, vm)


def test_a_user_binding_brings_the_same_vm_back(client, desk):
    first = connect(client, desk.connect_body()).json()
    second = connect(client, desk.connect_body()).json()
    assert first["desktop"]["id"] == second["desktop"]["id"]
    assert first["desktop"]["password"] != second["desktop"]["password"]
    assert VM.objects.filter(state=VMState.IN_USE).count() == 1


def test_two_users_get_two_vms(client, desk):
    other = UserFactory()
    mine = connect(client, desk.connect_body()).json()["desktop"]["id"]
    theirs = connect(client, desk.connect_body(username=other.username)).json()["desktop"]["id"]
    assert mine != theirs


def test_seat_binding_follows_the_seat_not_the_user(client):
    desk = Desk.build(policy=BindingPolicy.SEAT)
    first = connect(client, desk.connect_body()).json()["desktop"]["id"]
    colleague = UserFactory()
    second = connect(client, desk.connect_body(username=colleague.username)).json()
    assert second["desktop"]["id"] == first
    assert Binding.objects.get().seat == desk.terminal.seat


def test_no_ready_vm_answers_preparing_with_retry_after(client, settings):
    settings.THIN_CLIENT_RETRY_AFTER = 7
    desk = Desk.build(ready=0)
    response = connect(client, desk.connect_body())
    assert response.status_code == 202
    assert response.json() == {"status": "preparing", "retry_after": 7}
    assert response["Retry-After"] == "7"
    assert not Binding.objects.exists()


def test_the_allocator_falls_back_to_its_next_pool(client):
    desk = Desk.build(ready=0)
    spare = VMPoolFactory(region=desk.pool.region)
    fill_pool(spare, 1)
    desk.allocator.pool_links.create(pool=spare, order=5)
    response = connect(client, desk.connect_body())
    assert response.json()["desktop"]["pool"] == spare.name


def test_allocators_match_by_group_in_priority_order(client, desk):
    vip_pool = VMPoolFactory(region=desk.pool.region)
    fill_pool(vip_pool, 1)
    AllocatorFactory(priority=10, pools=[vip_pool]).groups.create(name="vip-agents")
    vip = UserFactory(groups=["vip-agents"])

    assert connect(client, desk.connect_body(username=vip.username)).json()["desktop"]["pool"] == (
        vip_pool.name
    )
    assert connect(client, desk.connect_body()).json()["desktop"]["pool"] == desk.pool.name


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"alice"',
        b'{"username": "alice"}',
        b'{"username": "", "password": "x", "terminal": "TC"}',
        b'{"username": "a\\u0000b", "password": "x", "terminal": "TC"}',
        b'{"username": "' + b"a" * 151 + b'", "password": "x", "terminal": "TC"}',
        b'{"username": 5, "password": {"x": 1}, "terminal": ["TC"]}',
    ],
)
def test_malformed_input_is_a_400_json_error(client, desk, body):
    response = client.post(CONNECT, body, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] in {"malformed_request", "invalid_request"}


def test_a_body_that_is_not_json_is_a_400(client, desk):
    response = client.post(CONNECT, "username=alice", content_type="text/plain")
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_request"


def test_get_is_refused_in_json(client):
    response = client.get(CONNECT)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_wrong_password_is_401(client, desk):
    response = connect(client, desk.connect_body(password="wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"


def test_an_inactive_user_is_refused(client, desk):
    desk.user.is_active = False
    desk.user.save()
    assert connect(client, desk.connect_body()).status_code == 401


def test_an_unknown_terminal_is_recorded_as_pending_and_refused(client, desk):
    response = connect(client, desk.connect_body(terminal="TC-NEW-0001"))
    assert response.status_code == 403
    assert response.json()["error"] == "terminal_not_enrolled"
    terminal = Terminal.objects.get(serial="TC-NEW-0001")
    assert terminal.status == TerminalStatus.PENDING
    assert AuditEvent.objects.filter(action="terminal.pending", object_id=str(terminal.pk)).exists()
    # Calling again does not enroll it.
    assert connect(client, desk.connect_body(terminal="TC-NEW-0001")).status_code == 403


def test_a_disabled_terminal_is_refused(client, desk):
    desk.terminal.enabled = False
    desk.terminal.save()
    assert connect(client, desk.connect_body()).json()["error"] == "terminal_not_enrolled"


def test_no_matching_allocator_is_403(client, desk):
    desk.allocator.is_default = False
    desk.allocator.save()
    desk.allocator.groups.create(name="somebody-else")
    response = connect(client, desk.connect_body())
    assert response.status_code == 403
    assert response.json()["error"] == "no_allocator"


def test_cloud_down_is_503_and_the_vm_goes_back_to_the_pool(client, desk):
    SimulatedRegion.objects.filter(region=desk.pool.region).update(api_failure_rate=1.0)
    response = connect(client, desk.connect_body())
    assert response.status_code == 503
    assert response.json()["error"] == "cloud_unavailable"
    assert "Retry-After" in response
    assert VM.objects.filter(pool=desk.pool, state=VMState.READY).count() == 3
    assert not Binding.objects.filter(released_at__isnull=True).exists()
    # The cloud comes back: the same user connects normally.
    SimulatedRegion.objects.filter(region=desk.pool.region).update(api_failure_rate=0)
    assert connect(client, desk.connect_body()).status_code == 200


def test_a_binding_to_a_broken_vm_is_replaced(client, desk):
    first = connect(client, desk.connect_body()).json()["desktop"]["id"]
    VM.objects.filter(pk=first).update(state=VMState.ERROR)
    second = connect(client, desk.connect_body()).json()["desktop"]["id"]
    assert second != first
    assert Binding.objects.filter(released_at__isnull=True).get().vm_id == second
    assert AuditEvent.objects.filter(action="binding.release").count() == 1


def test_every_handout_is_audited(client, desk):
    response = connect(client, desk.connect_body())
    event = AuditEvent.objects.get(action="vm.assign")
    assert event.actor == desk.user.username
    assert event.object_id == str(response.json()["desktop"]["id"])
    assert event.request_id == response["X-Request-ID"]


def test_terminals_at_other_sites_are_served_by_site_rules(client, desk):
    west = VMPoolFactory(region=desk.pool.region)
    fill_pool(west, 1)
    rule = AllocatorFactory(priority=5, pools=[west])
    rule.sites.create(name="hefei")
    hefei_terminal = TerminalFactory(site__name="hefei")
    body = desk.connect_body(terminal=hefei_terminal.serial)
    assert connect(client, body).json()["desktop"]["pool"] == west.name


def test_a_broker_that_is_down_does_not_fail_the_connect(
    client, desk, django_capture_on_commit_callbacks, caplog
):
    with (
        celery_broker("redis://127.0.0.1:1/0"),  # nothing listens there
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = connect(client, desk.connect_body())
    assert response.status_code == 200
    assert callbacks, "the connect queues a refill behind the VM it handed out"
    assert "could not queue refill" in caplog.text


@pytest.fixture
def fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def test_repeated_failures_lock_the_user_out_for_a_while(client, desk, settings, fresh_cache):
    settings.LOGIN_FAILURES_PER_USER = 3
    for _ in range(3):
        assert connect(client, desk.connect_body(password="wrong")).status_code == 401
    locked = connect(client, desk.connect_body())  # even the right password waits
    assert locked.status_code == 429
    assert locked.json()["error"] == "too_many_attempts"
    assert int(locked["Retry-After"]) == settings.LOGIN_FAILURE_WINDOW
    # Another user at the same terminal is not affected.
    other = UserFactory()
    assert connect(client, desk.connect_body(username=other.username)).status_code == 200


def test_repeated_failures_lock_the_terminal_out(client, desk, settings, fresh_cache):
    settings.LOGIN_FAILURES_PER_TERMINAL = 4
    for n in range(4):
        connect(client, desk.connect_body(username=f"guess{n}", password="wrong"))
    assert connect(client, desk.connect_body()).status_code == 429


def test_a_success_clears_the_users_failures(client, desk, settings, fresh_cache):
    settings.LOGIN_FAILURES_PER_USER = 3
    for _ in range(2):
        connect(client, desk.connect_body(password="wrong"))
    assert connect(client, desk.connect_body()).status_code == 200
    for _ in range(2):
        connect(client, desk.connect_body(password="wrong"))
    assert connect(client, desk.connect_body()).status_code == 200


@pytest.mark.parametrize(
    "raw_username",
    [r"\ud800alice", r"ali\u0007ce", r"ali\nce", r"\u0000"],
    ids=["lone-surrogate", "bell", "newline", "nul"],
)
def test_control_and_invalid_characters_are_a_400(client, desk, raw_username):
    body = '{"username": "' + raw_username + '", "password": "x", "terminal": "TC-1"}'
    response = client.post(CONNECT, body, content_type="application/json")
    assert response.status_code == 400
    assert "username" in response.json()["fields"]


def test_printable_oddities_are_just_unknown_users(client, desk):
    for username in ["\u202eecila", "ｅｒｉｎ", "😀", "' OR 1=1 --"]:
        response = connect(client, desk.connect_body(username=username))
        assert response.status_code == 401, username


def test_an_oversized_body_is_refused(client, desk, settings):
    settings.THIN_CLIENT_MAX_BODY = 4096
    body = desk.connect_body(password="x" * 5000)
    response = connect(client, body)
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_request"


def test_a_region_that_is_down_falls_back_to_a_pool_in_another_region(client):
    desk = Desk.build(ready=2)
    west = VMPoolFactory()  # its own region
    fill_pool(west, 1)
    desk.allocator.pool_links.create(pool=west, order=5)
    SimulatedRegion.objects.filter(region=desk.pool.region).update(api_failure_rate=1.0)

    response = connect(client, desk.connect_body())

    assert response.status_code == 200
    assert response.json()["desktop"]["pool"] == west.name
    assert VM.objects.filter(pool=desk.pool, state=VMState.READY).count() == 2  # returned
    desk.pool.region.refresh_from_db()
    assert desk.pool.region.reachable is False
    # The next login goes straight to the region that answers.
    other = UserFactory()
    fill_pool(west, 2)
    assert (
        connect(client, desk.connect_body(username=other.username)).json()["desktop"]["pool"]
        == west.name
    )


def test_pools_of_an_unreachable_region_are_tried_last(client):
    desk = Desk.build(ready=2)
    west = VMPoolFactory()
    fill_pool(west, 1)
    desk.allocator.pool_links.create(pool=west, order=5)
    Region.objects.filter(pk=desk.pool.region_id).update(reachable=False)
    assert connect(client, desk.connect_body()).json()["desktop"]["pool"] == west.name
