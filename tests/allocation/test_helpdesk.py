"""The help desk: find a user, swap their broken desktop (at once from a ready VM,
or as soon as one boots), move, unbind, power actions; every action confirmed
with a reason and audited; the old VM quarantined, then deleted."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from allocation.models import Binding, VMSwap
from allocation.services.helpdesk import swaps_complete_pending, vm_swap
from cloud.models import SimServer, SimVolume
from pools.choices import VMState
from pools.models import VM
from pools.services import pool_refill, vms_delete_expired_quarantine, vms_poll_boots
from portal.models import AuditEvent
from tests.factories import Desk, UserFactory, VMPoolFactory, fill_pool

pytestmark = pytest.mark.django_db
API = "/api/thin-client/v1"


@pytest.fixture
def agent(client):
    client.force_login(UserFactory(username="helpdesk-ann", role="helpdesk"))
    return client


@pytest.fixture
def connected():
    """A user connected to a bound desktop; returns (desk, connect answer)."""
    desk = Desk.build(ready=3)
    answer = APIClient().post(f"{API}/connect", desk.connect_body(), format="json").json()
    return desk, answer


def binding_of(desk) -> Binding:
    return Binding.objects.get(user=desk.user, released_at__isnull=True)


def test_one_search_box_finds_users_terminals_and_vms(agent, connected):
    desk, answer = connected
    vm = VM.objects.get(pk=answer["desktop"]["id"])
    # A unique user name goes straight to the user's page.
    response = agent.get("/helpdesk/", {"q": desk.user.username})
    assert response.status_code == 302 and response["Location"].endswith(f"/users/{desk.user.pk}/")
    expected = {
        desk.terminal.serial: f"<td>{desk.terminal.serial}</td>",
        desk.terminal.seat: f"<td>{desk.terminal.serial}</td>",
        vm.name: f">{vm.name}</a>",
        vm.ip_address: f">{vm.name}</a>",
    }
    for query, result_row in expected.items():
        page = agent.get("/helpdesk/", {"q": query}).content.decode()
        assert result_row in page, query


def test_the_user_page_shows_desktops_sessions_and_explain(agent, connected):
    desk, answer = connected
    page = agent.get(f"/helpdesk/users/{desk.user.pk}/").content.decode()
    assert answer["desktop"]["name"] in page
    assert "Served by <strong>" in page
    assert desk.terminal.serial in page
    for action in ["swap", "move", "unbind", "reboot", "reset", "rebuild", "stop", "start"]:
        assert f"/{action}/" in page


def test_swap_with_a_ready_vm_is_immediate_and_tells_the_thin_client(agent, connected):
    desk, answer = connected
    binding = binding_of(desk)
    old = binding.vm
    confirm = agent.get(f"/helpdesk/bindings/{binding.pk}/swap/")
    assert "Reason" in confirm.content.decode()

    response = agent.post(f"/helpdesk/bindings/{binding.pk}/swap/", {"reason": "INC-1042 BSOD"})

    assert response.status_code == 302
    swap = VMSwap.objects.get()
    assert swap.status == "done" and swap.new_vm != old and swap.seconds < 60
    binding.refresh_from_db()
    assert binding.vm == swap.new_vm
    old.refresh_from_db()
    assert old.state == VMState.QUARANTINED and old.quarantined_until > timezone.now()
    assert SimServer.objects.filter(pk=old.server_id).exists()  # kept for investigation
    heartbeat = {"terminal": desk.terminal.serial, "session": answer["session"]}
    assert APIClient().post(f"{API}/heartbeat", heartbeat, format="json").json() == {
        "action": "reconnect"
    }
    again = APIClient().post(f"{API}/connect", desk.connect_body(), format="json").json()
    assert again["desktop"]["id"] == swap.new_vm.pk
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"vm.swap_requested", "binding.move", "vm.quarantine"} <= actions
    assert AuditEvent.objects.get(action="vm.swap_requested").after["reason"] == "INC-1042 BSOD"


def test_swap_without_a_ready_vm_completes_when_one_has_booted(connected):
    desk, _ = connected
    VM.objects.filter(pool=desk.pool, state=VMState.READY).update(state=VMState.ERROR)
    swap = vm_swap(binding=binding_of(desk), reason="slow", actor="ann")
    assert swap.status == "pending"
    assert swaps_complete_pending() == 0
    pool_refill(pool_id=desk.pool.pk)
    vms_poll_boots()  # the test region boots instantly
    assert swaps_complete_pending() == 1
    swap.refresh_from_db()
    assert swap.status == "done" and binding_of(desk).vm == swap.new_vm


def test_a_second_swap_while_one_is_pending_is_refused(agent, connected):
    desk, _ = connected
    VM.objects.filter(pool=desk.pool, state=VMState.READY).update(state=VMState.ERROR)
    binding = binding_of(desk)
    vm_swap(binding=binding, reason="first", actor="ann")
    response = agent.post(
        f"/helpdesk/bindings/{binding.pk}/swap/", {"reason": "again"}, follow=True
    )
    assert "already under way" in response.content.decode()
    assert VMSwap.objects.count() == 1


def test_the_data_volume_moves_with_the_swap(connected):
    desk, _ = connected
    binding = binding_of(desk)
    volume = SimVolume.objects.create(region=desk.pool.region, name="profile-of-user")
    SimVolume.objects.filter(pk=volume.pk).update(server_id=binding.vm.server_id)
    Binding.objects.filter(pk=binding.pk).update(data_volume_id=str(volume.pk))
    binding.refresh_from_db()

    swap = vm_swap(binding=binding, reason="disk", actor="ann")

    volume.refresh_from_db()
    assert str(volume.server_id) == swap.new_vm.server_id
    assert AuditEvent.objects.filter(action="volume.move").exists()


def test_move_to_another_pool(agent, connected):
    desk, _ = connected
    other = VMPoolFactory(region=desk.pool.region, name="vip-east")
    fill_pool(other, 1)
    binding = binding_of(desk)
    agent.post(f"/helpdesk/bindings/{binding.pk}/move/", {"reason": "promoted", "pool": other.pk})
    binding.refresh_from_db()
    assert binding.vm.pool == other


def test_unbind_recycles_the_vm(agent, connected):
    desk, _ = connected
    binding = binding_of(desk)
    agent.post(f"/helpdesk/bindings/{binding.pk}/unbind/", {"reason": "left the company"})
    binding.refresh_from_db()
    assert binding.released_at is not None
    assert VM.objects.get(pk=binding.vm_id).state == VMState.RECYCLING


def test_a_reason_is_required(agent, connected):
    desk, _ = connected
    binding = binding_of(desk)
    response = agent.post(f"/helpdesk/bindings/{binding.pk}/reboot/", {"reason": ""})
    assert response.status_code == 200 and "required" in response.content.decode()
    assert not AuditEvent.objects.filter(action="vm.reboot").exists()


def test_power_actions_reach_the_cloud(agent, connected):
    desk, answer = connected
    binding = binding_of(desk)

    def server():
        return SimServer.objects.get(pk=binding.vm.server_id)

    agent.post(f"/helpdesk/bindings/{binding.pk}/stop/", {"reason": "t"})
    assert server().status == "SHUTOFF"
    agent.post(f"/helpdesk/bindings/{binding.pk}/start/", {"reason": "t"})
    assert server().status == "ACTIVE"
    desk.pool.region.simulation.boot_seconds_min = 300
    desk.pool.region.simulation.boot_seconds_max = 300
    desk.pool.region.simulation.save()
    agent.post(f"/helpdesk/bindings/{binding.pk}/rebuild/", {"reason": "t"})
    assert server().status == "REBUILD"
    # While it rebuilds, the user is told to wait, not given an error.
    response = APIClient().post(f"{API}/connect", desk.connect_body(), format="json")
    assert response.status_code == 202
    assert {"vm.stop", "vm.start", "vm.rebuild"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )


def test_the_agent_opens_the_console(agent, connected):
    desk, _ = connected
    binding = binding_of(desk)
    response = agent.get(f"/helpdesk/bindings/{binding.pk}/console.vv")
    assert response["Content-Type"] == "application/x-virt-viewer"
    assert "type=spice" in response.content.decode()


def test_quarantine_ends_with_the_server_deleted(connected, settings):
    desk, _ = connected
    swap = vm_swap(binding=binding_of(desk), reason="x", actor="ann")
    old = swap.old_vm
    assert vms_delete_expired_quarantine() == 0
    VM.objects.filter(pk=old.pk).update(quarantined_until=timezone.now() - timedelta(minutes=1))
    assert vms_delete_expired_quarantine() == 1
    old.refresh_from_db()
    assert old.state == VMState.DELETED
    assert not SimServer.objects.filter(pk=old.server_id).exists()


def test_helpdesk_pages_need_the_helpdesk_role(client, connected):
    desk, _ = connected
    assert client.get("/helpdesk/").status_code == 302  # to the login page
    client.force_login(UserFactory(role="viewer"))
    assert client.get("/helpdesk/").status_code == 403
    assert client.get(f"/helpdesk/users/{desk.user.pk}/").status_code == 403


def test_the_swap_benchmark_takes_percentiles_by_rank():
    from allocation.management.commands.bench_swap import percentile

    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([7.0], 95) == 7.0
