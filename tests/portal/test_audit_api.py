"""The audit trail in the ops API: operators and up read it, filtered by who, what,
which object and when (bad values are a 400); viewers and help desk cannot; it is
never written through the API, and a page costs the same queries whatever its size."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from portal.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit-events/"
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def client_for(role: str | None) -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(role=role))
    return client


@pytest.fixture
def operator():
    return client_for("operator")


def event(at: datetime, **fields) -> AuditEvent:
    defaults = {
        "actor": "admin",
        "action": "vmpool.update",
        "object_type": "pools.vmpool",
        "object_id": "7",
        "object_repr": "agents-east",
    }
    created = AuditEvent.objects.create(**{**defaults, **fields})
    AuditEvent.objects.filter(pk=created.pk).update(created_at=at)
    return created


@pytest.fixture
def events():
    return {
        "pool": event(
            NOON - timedelta(hours=2),
            before={"target_ready": 3},
            after={"target_ready": 12},
            request_id="req-1",
            source_ip="198.51.100.4",
        ),
        "login": event(
            NOON,
            actor="carol",
            action="staff.login",
            object_type="auth.user",
            object_id="12",
            object_repr="carol",
        ),
        "host": event(
            NOON + timedelta(hours=2),
            actor="task:hosts_watch",
            action="host.fail",
            object_type="cloud.host",
            object_id="3",
            object_repr="e-cmp-3",
        ),
    }


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_an_operator_lists_and_reads_the_trail_newest_first(operator, events):
    response = operator.get(URL)
    rows = response.json()["results"]
    assert [row["action"] for row in rows] == ["host.fail", "staff.login", "vmpool.update"]

    one = operator.get(f"{URL}{events['pool'].pk}/").json()
    assert (one["actor"], one["before"], one["after"]) == (
        "admin",
        {"target_ready": 3},
        {"target_ready": 12},
    )
    assert (one["request_id"], one["source_ip"]) == ("req-1", "198.51.100.4")
    assert one["url"].endswith(f"/audit/{events['pool'].pk}/")
    assert one["object_url"].endswith("/pools/7/")


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"actor": "carol"}, {"login"}),
        ({"action": "host.fail"}, {"host"}),
        ({"object_type": "pools.vmpool"}, {"pool"}),
        ({"object_type": "cloud.host", "object_id": "3"}, {"host"}),
        ({"object_id": "999"}, set()),
        ({"since": "2026-03-02T12:00:00Z"}, {"login", "host"}),
        ({"until": "2026-03-02T12:00:00Z"}, {"pool"}),
        ({"since": "2026-03-02T11:00:00+00:00", "until": "2026-03-02T13:00:00+00:00"}, {"login"}),
        ({"since": "2026-03-02T21:00:00+08:00"}, {"host"}),
        ({"until": "2026-03-02"}, set()),
    ],
)
def test_the_trail_is_filtered(operator, events, query, expected):
    assert ids(operator.get(URL, query)) == {events[name].pk for name in expected}


@pytest.mark.parametrize(
    "query, field",
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-45"}, "until"),
        ({"since": "2026-03-02T13:00:00Z", "until": "2026-03-02T12:00:00Z"}, "until"),
        ({"actor": "x" * 151}, "actor"),
        ({"object_id": "1" * 65}, "object_id"),
        ({"action": "pool\x00.update"}, "action"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(operator, events, query, field):
    response = operator.get(URL, query)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert list(body["fields"]) == [field]


@pytest.mark.parametrize("role", ["viewer", "helpdesk", None])
def test_the_trail_is_for_operators_and_up(role, events):
    client = client_for(role)
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}{events['pool'].pk}/").status_code == 403
    assert client_for("administrator").get(URL).status_code == 200


def test_anonymous_callers_are_asked_to_authenticate():
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_the_trail_cannot_be_written_through_the_api(operator, events):
    assert operator.post(URL, {"action": "forged"}, format="json").status_code == 403
    administrator = client_for("administrator")
    assert administrator.post(URL, {"action": "forged"}, format="json").status_code == 405
    assert administrator.delete(f"{URL}{events['pool'].pk}/").status_code == 405
    assert AuditEvent.objects.count() == 3


def queries_for_page(client, size: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(URL, {"page_size": size, "action": "vm.boot"})
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == size
    return len(captured)


def test_a_page_of_the_trail_costs_the_same_whatever_its_size(operator):
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor="task:pool_refill",
            action="vm.boot",
            object_type="pools.vm",
            object_id=str(n),
            object_repr=f"vm-{n}",
        )
        for n in range(105)
    )
    operator.get(URL)  # the caller's role is read once and kept
    assert queries_for_page(operator, 10) == queries_for_page(operator, 100)


def test_the_schema_documents_the_trail_filters(client):
    client.force_login(UserFactory(role="viewer"))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/audit-events/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"actor", "action", "object_type", "object_id", "since", "until"} <= names
    assert operation["summary"]
