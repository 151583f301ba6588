"""The operators' first page: regions, hosts and pools with their VM counts, live."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from cloud.services import regions_sync_hosts
from monitoring.consumers import DashboardConsumer
from tests.factories import UserFactory, VMPoolFactory, fill_pool


@pytest.fixture
def staff(db):
    return UserFactory(role="viewer")


@pytest.mark.django_db
def test_the_dashboard_needs_a_staff_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    client.force_login(UserFactory())  # a thin-client user, not staff
    assert client.get("/").status_code == 403


@pytest.mark.django_db
def test_the_dashboard_lists_regions_hosts_and_pool_counts(client, staff):
    pool = VMPoolFactory(label="Agents east")
    fill_pool(pool, 4)
    regions_sync_hosts()
    client.force_login(staff)

    page = client.get("/").content.decode()

    assert "Agents east" in page
    assert "<td>4 / 4</td>" in page  # ready / target
    assert pool.region.name in page
    for host in pool.region.sim_hosts.all():
        assert host.name in page


@pytest.mark.django_db
def test_health_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}


def run_websocket(user, *, messages: int):
    """Open the dashboard websocket as `user`; return (connected, close code or the
    messages received)."""

    async def session():
        communicator = WebsocketCommunicator(DashboardConsumer.as_asgi(), "/ws/dashboard/")
        communicator.scope["user"] = user
        connected, code = await communicator.connect()
        if not connected:
            return False, code
        received = [await communicator.receive_json_from(timeout=5) for _ in range(messages)]
        await communicator.disconnect()
        return True, received

    return async_to_sync(session)()


@pytest.mark.django_db(transaction=True)
def test_the_websocket_pushes_fresh_snapshots_to_staff(staff, settings):
    settings.DASHBOARD_PUSH_INTERVAL = 0.05
    pool = VMPoolFactory(label="Live pool")
    fill_pool(pool, 2)

    connected, messages = run_websocket(staff, messages=2)

    assert connected
    assert [m["type"] for m in messages] == ["snapshot", "snapshot"]
    (pushed,) = [p for p in messages[-1]["data"]["pools"] if p["name"] == pool.name]
    assert (pushed["ready"], pushed["target_ready"]) == (2, 2)


def test_the_websocket_refuses_anonymous_users():
    connected, code = run_websocket(AnonymousUser(), messages=0)
    assert not connected
    assert code == 4403
