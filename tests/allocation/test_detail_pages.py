"""The pages of one allocator, binding or terminal: their facts, related objects
with links, recent audit events, and the forms shown only to the roles that may
use them."""

import re

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from allocation.choices import BindingPolicy, TerminalStatus
from allocation.models import Allocator, Binding, Terminal
from allocation.services.helpdesk import vm_swap
from pools.models import VM
from portal.models import AuditEvent
from tests.factories import (
    AllocatorFactory,
    Desk,
    SiteFactory,
    TerminalFactory,
    UserFactory,
    VMPoolFactory,
)

pytestmark = pytest.mark.django_db
CONNECT = "/api/thin-client/v1/connect"


def signed_in(client, role: str):
    client.force_login(UserFactory(username=f"as-{role}", role=role))
    return client


def text(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def connected():
    """A user connected to a desktop bound to them, then swapped once by the help
    desk; returns (desk, binding)."""
    desk = Desk.build(ready=3)
    answer = APIClient().post(CONNECT, desk.connect_body(), format="json")
    assert answer.status_code == 200, answer.content
    binding = Binding.objects.get(user=desk.user, released_at__isnull=True)
    vm_swap(binding=binding, reason="INC-7 frozen screen", actor="ann")
    binding.refresh_from_db()
    return desk, binding


# -- bindings -----------------------------------------------------------------------


def test_the_binding_page_shows_its_user_vm_sessions_swaps_and_events(client, connected):
    desk, binding = connected
    page = text(signed_in(client, "helpdesk").get(f"/bindings/{binding.pk}/"))
    assert f'href="/helpdesk/users/{desk.user.pk}/">{desk.user.username}</a>' in page
    assert f'href="/vms/{binding.vm_id}/">{binding.vm.name}</a>' in page
    assert f'href="/pools/{desk.pool.pk}/"' in page
    assert f'href="/allocators/{desk.allocator.pk}/"' in page
    # The session was opened at the desk's terminal, on the VM swapped out since.
    old_vm = VM.objects.get(swapped_out__binding=binding)
    assert f'href="/terminals/{desk.terminal.pk}/">{desk.terminal.serial}</a>' in page
    assert "open" in page and old_vm.name in page
    assert "INC-7 frozen screen" in page and "Done" in page
    # The swap's audit entry about this binding.
    assert "binding.move" in page
    # The help desk gets the actions on an active binding.
    assert f"/helpdesk/bindings/{binding.pk}/swap/" in page


def test_a_viewer_reads_the_binding_page_without_help_desk_links(client, connected):
    desk, binding = connected
    page = text(signed_in(client, "viewer").get(f"/bindings/{binding.pk}/"))
    assert desk.user.username in page
    assert "/helpdesk/users/" not in page and "/helpdesk/bindings/" not in page


def test_a_released_binding_offers_no_actions(client, connected):
    _, binding = connected
    Binding.objects.filter(pk=binding.pk).update(released_at=timezone.now())
    page = text(signed_in(client, "operator").get(f"/bindings/{binding.pk}/"))
    assert "released" in page and "/swap/" not in page


def test_a_seat_binding_names_its_seat(client):
    pool = VMPoolFactory()
    allocator = AllocatorFactory(binding_policy=BindingPolicy.SEAT, pools=[pool])
    vm = VM.objects.create(pool=pool, name="seat-vm", state="in_use")
    binding = Binding.objects.create(allocator=allocator, kind="seat", seat="HF-12", vm=vm)
    page = text(signed_in(client, "viewer").get(f"/bindings/{binding.pk}/"))
    assert "seat HF-12" in page and "none (bound to the seat)" in page


def test_an_unknown_binding_is_not_found(client):
    assert signed_in(client, "viewer").get("/bindings/999999/").status_code == 404


def test_the_help_desk_user_page_links_to_the_binding(client, connected):
    desk, binding = connected
    page = text(signed_in(client, "helpdesk").get(f"/helpdesk/users/{desk.user.pk}/"))
    assert f'href="/bindings/{binding.pk}/"' in page
    assert f'href="/terminals/{desk.terminal.pk}/"' in page


# -- terminals ----------------------------------------------------------------------


def test_the_terminal_page_shows_bindings_sessions_and_events(client, connected):
    desk, binding = connected
    terminal = desk.terminal
    # A seat binding for the terminal's seat is listed too, and another
    # terminal's binding is not.
    pool = VMPoolFactory()
    seat_rule = AllocatorFactory(binding_policy=BindingPolicy.SEAT, pools=[pool])
    seat_vm = VM.objects.create(pool=pool, name="seat-desktop", state="in_use")
    Binding.objects.create(allocator=seat_rule, kind="seat", seat=terminal.seat, vm=seat_vm)
    elsewhere = VM.objects.create(pool=pool, name="elsewhere-desktop", state="in_use")
    Binding.objects.create(allocator=seat_rule, kind="seat", seat="OTHER-SEAT", vm=elsewhere)
    signed_in(client, "operator").post(
        f"/terminals/{terminal.pk}/enroll/", {"site": terminal.site.name, "seat": terminal.seat}
    )

    page = text(client.get(f"/terminals/{terminal.pk}/"))

    assert terminal.serial in page and terminal.seat in page
    assert f'href="/bindings/{binding.pk}/"' in page and binding.vm.name in page
    assert "seat-desktop" in page and "elsewhere-desktop" not in page
    assert f'href="/helpdesk/users/{desk.user.pk}/">{desk.user.username}</a>' in page
    assert "terminal.update" in page  # the enrollment above, from the audit trail


def test_enroll_from_the_terminal_page_comes_back_to_it(client):
    SiteFactory(name="hefei")
    pending = TerminalFactory(serial="TC-NEW-1", status=TerminalStatus.PENDING, site=None, seat="")
    operator = signed_in(client, "operator")
    page = text(operator.get(f"/terminals/{pending.pk}/"))
    assert ">Enroll</button>" in page and 'value="hefei"' in page
    response = operator.post(
        f"/terminals/{pending.pk}/enroll/",
        {"site": "hefei", "seat": "HF-3", "next": f"/terminals/{pending.pk}/"},
    )
    assert response.status_code == 302 and response["Location"] == f"/terminals/{pending.pk}/"
    pending.refresh_from_db()
    assert (pending.status, pending.site.name, pending.seat) == ("enrolled", "hefei", "HF-3")


def test_enroll_never_sends_the_operator_off_site(client):
    SiteFactory(name="hefei")
    pending = TerminalFactory(status=TerminalStatus.PENDING, site=None)
    response = signed_in(client, "operator").post(
        f"/terminals/{pending.pk}/enroll/",
        {"site": "hefei", "next": "https://phish.example.com/"},
    )
    assert response["Location"] == "/terminals/"


def test_enroll_without_a_valid_site_says_why(client):
    pending = TerminalFactory(serial="TC-NEW-2", status=TerminalStatus.PENDING, site=None)
    response = signed_in(client, "operator").post(
        f"/terminals/{pending.pk}/enroll/", {"site": "atlantis"}, follow=True
    )
    assert response.status_code == 200
    assert "TC-NEW-2 was not enrolled" in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == TerminalStatus.PENDING


def test_only_operators_see_the_enroll_form(client):
    pending = TerminalFactory(status=TerminalStatus.PENDING, site=None)
    page = text(signed_in(client, "helpdesk").get(f"/terminals/{pending.pk}/"))
    assert "Pending enrollment" in page and ">Enroll</button>" not in page


def test_terminal_writes_are_refused_below_operator(client):
    SiteFactory(name="hefei")
    pending = TerminalFactory(status=TerminalStatus.PENDING, site=None)
    helpdesk = signed_in(client, "helpdesk")
    response = helpdesk.post(f"/terminals/{pending.pk}/enroll/", {"site": "hefei"})
    assert response.status_code == 403
    response = helpdesk.post("/terminals/import/", {"csv_text": "serial,site\nTC-X,hefei\n"})
    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.status == TerminalStatus.PENDING
    assert not Terminal.objects.filter(serial="TC-X").exists()


# -- allocators ---------------------------------------------------------------------


@pytest.fixture
def allocator_world():
    pool, spare = VMPoolFactory(name="agents-east"), VMPoolFactory(name="agents-west")
    everyone = AllocatorFactory(name="Everyone", priority=1, pools=[pool])
    later = AllocatorFactory(name="Later", priority=50, pools=[spare, pool])
    users = [UserFactory(username=f"agent-{n:02d}") for n in range(12)]
    vms = [VM.objects.create(pool=spare, name=f"west-{n:02d}", state="in_use") for n in range(12)]
    for user, vm in zip(users, vms, strict=True):
        Binding.objects.create(allocator=later, kind="user", user=user, vm=vm)
    return everyone, later


def test_the_allocator_page_shows_pools_bindings_shadowing_and_events(client, allocator_world):
    everyone, later = allocator_world
    admin = signed_in(client, "administrator")
    admin.post(
        f"/allocators/{later.pk}/",
        {"name": "Later", "priority": "60", "enabled": "on", "binding_policy": "user"}
        | {"pools": "agents-west, agents-east"},
    )
    page = text(signed_in(client, "viewer").get(f"/allocators/{later.pk}/"))
    # Pools in order, linked.
    assert page.index(">agents-west</a>") < page.index(">agents-east</a>")
    # Ten of the twelve bindings, and a link to them all in the binding list.
    assert len(re.findall(r'href="/bindings/\d+/"', page)) == 10
    assert f'href="/bindings/?allocator={later.pk}"' in page
    assert "Showing the 10 newest of 12" in page
    assert f'Serves nobody: shadowed by <a href="/allocators/{everyone.pk}/">Everyone</a>' in page
    assert "allocator.update" in page


def test_a_viewer_reads_the_allocator_without_the_form(client, allocator_world):
    _, later = allocator_world
    page = text(signed_in(client, "viewer").get(f"/allocators/{later.pk}/"))
    assert "Later" in page and 'method="post" class="stacked-form"' not in page
    page = text(signed_in(client, "administrator").get(f"/allocators/{later.pk}/"))
    assert 'method="post" class="stacked-form"' in page and 'value="Later"' in page


def test_allocator_writes_are_refused_below_administrator(client, allocator_world):
    _, later = allocator_world
    operator = signed_in(client, "operator")
    response = operator.post(
        f"/allocators/{later.pk}/",
        {"name": "Hijacked", "priority": "1", "binding_policy": "user", "pools": "agents-east"},
    )
    assert response.status_code == 403
    response = operator.post(
        "/allocators/new/",
        {"name": "Sneaky", "priority": "1", "binding_policy": "user", "pools": "agents-east"},
    )
    assert response.status_code == 403
    assert set(Allocator.objects.values_list("name", flat=True)) == {"Everyone", "Later"}
    assert not AuditEvent.objects.filter(action__startswith="allocator.").exists()


def test_the_new_allocator_form_is_for_administrators(client):
    page = text(signed_in(client, "viewer").get("/allocators/new/"))
    assert "Only administrators create allocators" in page and "<form method" not in page
    page = text(signed_in(client, "administrator").get("/allocators/new/"))
    assert 'name="pools"' in page


def test_a_new_allocator_opens_on_its_page(client):
    VMPoolFactory(name="agents")
    response = signed_in(client, "administrator").post(
        "/allocators/new/",
        {"name": "Night shift", "priority": "5", "binding_policy": "floating", "pools": "agents"},
    )
    created = Allocator.objects.get(name="Night shift")
    assert response.status_code == 302 and response["Location"] == f"/allocators/{created.pk}/"
    page = text(client.get(response["Location"]))
    assert "Saved Night shift." in page and "allocator.create" in page


def test_a_refused_edit_keeps_what_was_typed(client, allocator_world):
    _, later = allocator_world
    response = signed_in(client, "administrator").post(
        f"/allocators/{later.pk}/",
        {"name": "Later", "priority": "-4", "binding_policy": "user", "pools": "nowhere"},
    )
    page = text(response)
    assert 'value="-4"' in page and "nowhere" in page
    assert "greater than or equal to 0" in page
    later.refresh_from_db()
    assert later.priority == 50


def test_nonsense_in_the_allocator_form_is_refused_with_reasons(client, allocator_world):
    _, later = allocator_world
    response = signed_in(client, "administrator").post(
        f"/allocators/{later.pk}/",
        {
            "name": "",
            "priority": "soon",
            "binding_policy": "telepathy",
            "sites": ["atlantis"],
            "pools": "\x00",
        },
    )
    page = text(response)
    assert "This field is required." in page
    assert "Enter a whole number." in page
    assert "Select a valid choice. telepathy is not one of the available choices." in page
    later.refresh_from_db()
    assert (later.name, later.priority) == ("Later", 50)


def test_explain_answers_unknown_names_with_a_message(client):
    page = text(signed_in(client, "viewer").get("/explain/", {"user": "nobody", "terminal": "x"}))
    assert 'class="error"' in page
