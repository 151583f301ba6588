"""The rest of a thin-client session: disconnect, heartbeat, the remote-viewer
file, floating desktops recycled before anyone else gets them, and idle expiry."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from allocation.choices import BindingPolicy
from allocation.models import Binding, DesktopSession
from allocation.services import sessions_expire_idle
from cloud.models import SimServer
from pools.choices import VMState
from pools.models import VM
from pools.services import vms_poll_boots
from portal.models import AuditEvent
from tests.factories import Desk, UserFactory

pytestmark = pytest.mark.django_db
API = "/api/thin-client/v1"


@pytest.fixture
def client():
    return APIClient()


def connect(client, desk, **overrides):
    response = client.post(f"{API}/connect", desk.connect_body(**overrides), format="json")
    assert response.status_code == 200, response.content
    return response.json()


def heartbeat(client, desk, session):
    body = {"terminal": desk.terminal.serial, "session": session}
    return client.post(f"{API}/heartbeat", body, format="json")


@pytest.fixture
def floating():
    return Desk.build(ready=2, policy=BindingPolicy.FLOATING)


def test_disconnect_releases_a_floating_desktop_for_recycling(client, floating):
    answer = connect(client, floating)
    vm_id = answer["desktop"]["id"]

    response = client.post(f"{API}/disconnect", {"session": answer["session"]}, format="json")

    assert response.json() == {"status": "disconnected", "session": answer["session"]}
    assert VM.objects.get(pk=vm_id).state == VMState.RECYCLING
    assert Binding.objects.get().released_at is not None
    assert AuditEvent.objects.filter(action="binding.release").exists()
    # Disconnecting again is harmless.
    again = client.post(f"{API}/disconnect", {"session": answer["session"]}, format="json")
    assert again.status_code == 200


def test_a_recycled_desktop_is_rebuilt_before_anyone_else_gets_it(client, floating):
    first = connect(client, floating)
    client.post(f"{API}/disconnect", {"session": first["session"]}, format="json")
    vm = VM.objects.get(pk=first["desktop"]["id"])

    # While it recycles, the next user gets the other ready VM, never this one.
    other = UserFactory()
    second = connect(client, floating, username=other.username)
    assert second["desktop"]["id"] != vm.pk

    vms_poll_boots()  # starts the rebuild; the test region rebuilds instantly
    assert SimServer.objects.get(pk=vm.server_id).status in {"REBUILD", "ACTIVE"}
    vms_poll_boots()
    vm.refresh_from_db()
    assert vm.state == VMState.READY


def test_a_bound_desktop_stays_bound_after_disconnect(client, desk):
    answer = connect(client, desk)
    client.post(f"{API}/disconnect", {"session": answer["session"]}, format="json")
    assert VM.objects.get(pk=answer["desktop"]["id"]).state == VMState.IN_USE
    assert connect(client, desk)["desktop"]["id"] == answer["desktop"]["id"]


def test_heartbeat_says_none_while_the_session_is_current(client, desk):
    answer = connect(client, desk)
    response = heartbeat(client, desk, answer["session"])
    assert response.json() == {"action": "none"}
    assert DesktopSession.objects.get(pk=answer["session"]).last_heartbeat_at is not None


def test_heartbeat_says_reconnect_when_the_desktop_moved(client, desk):
    answer = connect(client, desk)
    VM.objects.filter(pk=answer["desktop"]["id"]).update(state=VMState.LOST)
    assert heartbeat(client, desk, answer["session"]).json() == {"action": "reconnect"}
    # The reconnect gets a new VM, and its own heartbeat is quiet again.
    again = connect(client, desk)
    assert again["desktop"]["id"] != answer["desktop"]["id"]
    assert heartbeat(client, desk, again["session"]).json() == {"action": "none"}


def test_a_new_connect_supersedes_the_old_session(client, desk):
    old = connect(client, desk)
    new = connect(client, desk)
    assert heartbeat(client, desk, old["session"]).json() == {"action": "reconnect"}
    assert heartbeat(client, desk, new["session"]).json() == {"action": "none"}


@pytest.mark.parametrize(
    "body, status, error",
    [
        ({"terminal": "TC-X", "session": "not-a-uuid"}, 400, "invalid_request"),
        ({"terminal": "TC-X", "session": "00000000-0000-0000-0000-000000000000"}, 404,
         "session_not_found"),
        ({"session": "00000000-0000-0000-0000-000000000000"}, 400, "invalid_request"),
    ],
)  # fmt: skip
def test_heartbeat_errors(client, body, status, error):
    response = client.post(f"{API}/heartbeat", body, format="json")
    assert (response.status_code, response.json()["error"]) == (status, error)


def test_heartbeat_of_another_terminals_session_is_not_found(client, desk):
    answer = connect(client, desk)
    body = {"terminal": "TC-SOMEONE-ELSE", "session": answer["session"]}
    assert client.post(f"{API}/heartbeat", body, format="json").status_code == 404


def test_console_file_opens_in_remote_viewer(client, desk):
    answer = connect(client, desk)
    response = client.get(f"{API}/sessions/{answer['session']}/console.vv")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-virt-viewer"
    assert response["Cache-Control"] == "no-store"
    lines = response.content.decode().splitlines()
    assert lines[0] == "[virt-viewer]"
    fields = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert fields["type"] == "spice"
    assert fields["host"] == answer["desktop"]["host"]
    assert int(fields["port"]) == answer["desktop"]["port"]
    assert int(fields["tls-port"]) == answer["desktop"]["tls_port"]
    assert fields["password"] and fields["password"] != answer["desktop"]["password"]


def test_console_file_of_an_ended_session_is_refused(client, desk):
    answer = connect(client, desk)
    client.post(f"{API}/disconnect", {"session": answer["session"]}, format="json")
    response = client.get(f"{API}/sessions/{answer['session']}/console.vv")
    assert response.status_code == 404
    assert response.json()["error"] == "session_not_found"
    assert client.get(f"{API}/sessions/nonsense/console.vv").status_code == 404


def test_a_shut_off_bound_desktop_is_started_at_connect(client, desk):
    answer = connect(client, desk)
    SimServer.objects.filter(pk=VM.objects.get(pk=answer["desktop"]["id"]).server_id).update(
        status="SHUTOFF"
    )
    again = connect(client, desk)
    assert again["desktop"]["id"] == answer["desktop"]["id"]
    assert SimServer.objects.get(name=again["desktop"]["name"]).status == "ACTIVE"


def test_quiet_floating_sessions_expire_and_their_desktops_recycle(client, floating, settings):
    settings.FLOATING_IDLE_TIMEOUT = 60
    quiet = connect(client, floating)
    lively = connect(client, floating, username=UserFactory().username)
    long_ago = timezone.now() - timedelta(seconds=120)
    DesktopSession.objects.update(started_at=long_ago)
    DesktopSession.objects.filter(pk=lively["session"]).update(last_heartbeat_at=timezone.now())

    assert sessions_expire_idle() == 1

    assert DesktopSession.objects.get(pk=quiet["session"]).ended_reason == "idle"
    assert VM.objects.get(pk=quiet["desktop"]["id"]).state == VMState.RECYCLING
    assert VM.objects.get(pk=lively["desktop"]["id"]).state == VMState.IN_USE
    assert heartbeat(client, floating, quiet["session"]).json() == {"action": "reconnect"}


def test_a_user_never_holds_two_floating_desktops_of_one_allocator(client, floating):
    first = connect(client, floating)
    second = connect(client, floating)
    assert first["desktop"]["id"] == second["desktop"]["id"]
    assert Binding.objects.filter(released_at__isnull=True).count() == 1
