"""Bindings in the ops API: readable by every role, filtered by user, state, pool,
allocator, terminal or VM (an unknown name is a 400), never written, and a page
costs the same queries whatever its size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from allocation.models import Binding
from pools.models import VM
from tests.factories import (
    AllocatorFactory,
    TerminalFactory,
    UserFactory,
    VMFactory,
    VMPoolFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/bindings/"


def client_for(role: str | None) -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(role=role))
    return client


@pytest.fixture
def viewer():
    return client_for("viewer")


@pytest.fixture
def bindings():
    """erin holds a VIP desktop; seat HF-7 holds an agent desktop at terminal
    TC-HF-7; bob's floating desktop was released."""
    vip_pool = VMPoolFactory(name="vip-east")
    agents_pool = VMPoolFactory(name="agents-west")
    vip = AllocatorFactory(name="VIP agents", pools=[vip_pool])
    seats = AllocatorFactory(name="Hefei seats", pools=[agents_pool], binding_policy="seat")
    terminal = TerminalFactory(serial="TC-HF-7", seat="HF-7")
    return {
        "erin": Binding.objects.create(
            allocator=vip,
            kind="user",
            user=UserFactory(username="erin"),
            vm=VMFactory(pool=vip_pool, name="vip-1", state="in_use"),
        ),
        "seat": Binding.objects.create(
            allocator=seats,
            kind="seat",
            seat="HF-7",
            terminal=terminal,
            vm=VMFactory(pool=agents_pool, name="agents-1", state="in_use"),
        ),
        "bob": Binding.objects.create(
            allocator=seats,
            kind="floating",
            user=UserFactory(username="bob"),
            vm=VMFactory(pool=agents_pool, name="agents-2", state="recycling"),
            released_at=timezone.now(),
        ),
    }


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_a_viewer_lists_and_reads_bindings(viewer, bindings):
    response = viewer.get(URL)
    rows = {row["vm"]: row for row in response.json()["results"]}
    assert set(rows) == {"vip-1", "agents-1", "agents-2"}
    erin = rows["vip-1"]
    assert (erin["user"], erin["allocator"], erin["pool"], erin["active"]) == (
        "erin",
        "VIP agents",
        "vip-east",
        True,
    )
    seat = rows["agents-1"]
    assert (seat["seat"], seat["terminal"], seat["user"]) == ("HF-7", "TC-HF-7", None)
    assert rows["agents-2"]["active"] is False

    one = viewer.get(f"{URL}{bindings['bob'].pk}/").json()
    assert (one["user"], one["kind"], one["vm_state"]) == ("bob", "floating", "recycling")
    assert one["url"].endswith(f"/bindings/{bindings['bob'].pk}/")


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"user": "erin"}, {"erin"}),
        ({"active": "true"}, {"erin", "seat"}),
        ({"active": "false"}, {"bob"}),
        ({"pool": "agents-west"}, {"seat", "bob"}),
        ({"pool": "agents-west", "active": "true"}, {"seat"}),
        ({"allocator": "VIP agents"}, {"erin"}),
        ({"terminal": "TC-HF-7"}, {"seat"}),
        ({"vm": "agents-2"}, {"bob"}),
    ],
)
def test_bindings_are_filtered(viewer, bindings, query, expected):
    assert ids(viewer.get(URL, query)) == {bindings[name].pk for name in expected}


@pytest.mark.parametrize(
    "query",
    [
        {"user": "mallory"},
        {"active": "sometimes"},
        {"pool": "nope"},
        {"allocator": "Nobody"},
        {"terminal": "TC-NONE"},
        {"vm": "vm-gone"},
        {"user": "erin\x00"},
    ],
)
def test_a_bad_filter_is_a_400_naming_it(viewer, bindings, query):
    response = viewer.get(URL, query)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert set(body["fields"]) == set(query)


def test_an_unknown_user_is_named_in_the_error(viewer, bindings):
    response = viewer.get(URL, {"user": "mallory"})
    assert "mallory" in response.json()["fields"]["user"][0]


def test_anonymous_callers_are_asked_to_authenticate():
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_a_user_without_a_portal_role_is_refused(bindings):
    response = client_for(None).get(URL)
    assert response.status_code == 403
    assert client_for(None).get(f"{URL}{bindings['erin'].pk}/").status_code == 403


def test_bindings_are_not_written_through_the_api(viewer, bindings):
    assert viewer.post(URL, {}, format="json").status_code == 403
    administrator = client_for("administrator")
    assert administrator.post(URL, {}, format="json").status_code == 405
    response = administrator.delete(f"{URL}{bindings['erin'].pk}/")
    assert response.status_code == 405
    assert Binding.objects.filter(pk=bindings["erin"].pk).exists()


def queries_for_page(client, size: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(URL, {"page_size": size, "active": "true"})
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == size
    return len(captured)


def test_a_page_of_bindings_costs_the_same_whatever_its_size(viewer, pool):
    allocator = AllocatorFactory(pools=[pool])
    terminal = TerminalFactory()
    vms = VM.objects.bulk_create(
        VM(pool=pool, name=f"vm-{n:03d}", state="in_use") for n in range(105)
    )
    users = [UserFactory(username=f"agent-{n:03d}") for n in range(105)]
    Binding.objects.bulk_create(
        Binding(allocator=allocator, kind="user", user=user, vm=vm, terminal=terminal)
        for user, vm in zip(users, vms, strict=True)
    )
    viewer.get(URL)  # the caller's role is read once and kept
    assert queries_for_page(viewer, 10) == queries_for_page(viewer, 100)


def test_the_schema_documents_the_binding_filters(client):
    client.force_login(UserFactory(role="viewer"))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/bindings/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"user", "active", "pool", "allocator", "terminal", "page"} <= names
    assert operation["summary"]
