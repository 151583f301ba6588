"""The live dashboard: what its snapshot tells operators (connects per minute, boots
against caps, host tiles, incidents and alerts), that it costs the same queries for
5 or 50 hosts, and that a change reaches a connected page within 2 s through a
`dashboard.changed` event: in-process with the in-memory layer, and from another
process through Redis."""

import asyncio
import json
import logging
import os
import socket
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from allocation.choices import BindingPolicy
from allocation.models import Binding, VMSwap
from cloud.choices import HostState
from cloud.models import Host
from monitoring.choices import AlertKind, AlertSeverity, AlertStatus, IncidentKind, IncidentStatus
from monitoring.consumers import DashboardConsumer
from monitoring.events import dashboard_changed
from monitoring.models import Alert, ConnectRecord, Incident
from monitoring.selectors import allocation_figures, dashboard_snapshot
from pools.models import SchedulingPolicy, VMPool
from pools.services import pool_refill
from tests.conftest import require
from tests.factories import (
    AllocatorFactory,
    RegionFactory,
    UserFactory,
    VMFactory,
    VMPoolFactory,
    fill_pool,
)

ROOT = Path(__file__).resolve().parents[2]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# A database of the Redis server that the demo and other suites leave alone, and a
# prefix per run on top, so parallel runs never see each other's events.
REDIS_DB = 13


@pytest.fixture
def staff(db):
    return UserFactory(role="viewer")


@pytest.fixture
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def connect_record(*, outcome: str, latency_ms: float, ago: timedelta, source: str = "") -> None:
    record = ConnectRecord.objects.create(outcome=outcome, source=source, latency_ms=latency_ms)
    ConnectRecord.objects.filter(pk=record.pk).update(at=timezone.now() - ago)


def host(region, name: str, **fields) -> Host:
    defaults = {
        "vcpus": 32,
        "memory_mb": 100_000,
        "ram_allocation_ratio": 1.0,
        "cpu_allocation_ratio": 2.0,
    }
    return Host.objects.create(region=region, name=name, **{**defaults, **fields})


# --- the snapshot ------------------------------------------------------------------


@pytest.mark.django_db
def test_allocations_per_minute_count_answers_by_kind_with_latency_percentiles():
    now = timezone.now()
    seconds_into_minute = now.second + now.microsecond / 1e6
    # Three minutes ago: 20 connects, latencies 10..200 ms; one of them a 503.
    three_ago = timedelta(minutes=3, seconds=seconds_into_minute - 30)
    for index in range(1, 20):
        connect_record(outcome="ready", source="claimed", latency_ms=index * 10.0, ago=three_ago)
    connect_record(outcome="cloud_unavailable", latency_ms=200.0, ago=three_ago)
    # This minute: two "preparing" answers and a bound desktop handed back.
    this_minute = timedelta(seconds=seconds_into_minute / 2)
    connect_record(outcome="preparing", latency_ms=40.0, ago=this_minute)
    connect_record(outcome="preparing", latency_ms=60.0, ago=this_minute)
    connect_record(outcome="ready", source="binding", latency_ms=5.0, ago=this_minute)
    # Outside the 30-minute window: not counted.
    connect_record(outcome="ready", latency_ms=1.0, ago=timedelta(minutes=45))

    allocations = allocation_figures(now=now)

    minutes = allocations["minutes"]
    assert len(minutes) == 30
    busy = [m for m in minutes if m["total"]]
    assert len(busy) == 2
    earlier, latest = busy
    assert latest is minutes[-1]  # the current minute is the last bar
    assert (earlier["ready"], earlier["preparing"], earlier["error"]) == (19, 0, 1)
    # Nearest rank over 10, 20, …, 190, 200: the 10th and the 19th values.
    assert (earlier["p50_ms"], earlier["p95_ms"]) == (100.0, 190.0)
    assert (latest["ready"], latest["preparing"], latest["error"]) == (1, 2, 0)
    assert (latest["p50_ms"], latest["p95_ms"]) == (40.0, 60.0)
    assert all(m["p95_ms"] is None for m in minutes if not m["total"])

    totals = allocations["totals"]
    assert (totals["total"], totals["ready"], totals["preparing"], totals["error"]) == (
        23,
        20,
        2,
        1,
    )
    assert (totals["claimed"], totals["binding"]) == (19, 1)
    assert allocations["errors"] == {"cloud_unavailable": 1}
    assert allocations["per_minute_peak"] == 20
    # 23 latencies: p50 is the 12th smallest (5, 10…, 40, 40, 50, 60 … → 90), p95 the 22nd.
    assert (totals["p50_ms"], totals["p95_ms"]) == (90.0, 190.0)


@pytest.mark.django_db
def test_boots_in_flight_are_shown_against_the_global_region_and_pool_caps():
    SchedulingPolicy.objects.update_or_create(pk=1, defaults={"max_concurrent_boots": 40})
    capped = RegionFactory(name="east", max_concurrent_boots=6)
    uncapped = RegionFactory(name="west")
    agents = VMPoolFactory(name="agents", region=capped, max_concurrent_boots=4)
    vip = VMPoolFactory(name="vip", region=capped, max_concurrent_boots=2)
    west = VMPoolFactory(name="west-agents", region=uncapped, max_concurrent_boots=3)
    for state in ("requested", "building", "recycling"):
        VMFactory(pool=agents, state=state)
    VMFactory(pool=vip, state="building")
    VMFactory(pool=west, state="building")
    VMFactory(pool=west, state="ready")  # not booting

    boots = dashboard_snapshot()["boots"]

    assert (boots["booting"], boots["cap"]) == (5, 40)
    regions = {r["name"]: (r["booting"], r["cap"]) for r in boots["regions"]}
    assert regions == {"east": (4, 6), "west": (1, None)}
    pools = {p["name"]: (p["booting"], p["cap"]) for p in boots["pools"]}
    assert pools == {"agents": (3, 4), "vip": (1, 2), "west-agents": (1, 3)}


@pytest.mark.django_db
def test_host_tiles_show_load_state_failure_and_agent_figures():
    region = RegionFactory(name="east", hosts=0)
    now = timezone.now()
    host(region, "calm", memory_mb_used=20_000, vcpus_used=8, running_vms=5)
    host(region, "busy", memory_mb_used=95_000, vcpus_used=10, running_vms=40)
    host(region, "down", state=HostState.DOWN, down_since=now - timedelta(seconds=30))
    host(
        region,
        "failed",
        state=HostState.DOWN,
        down_since=now - timedelta(minutes=5),
        failed_at=now - timedelta(minutes=4),
    )
    host(
        region,
        "agent",
        agent_url="http://10.0.0.5:9180/",
        load_1m=3.25,
        memory_free_mb=2048,
        disk_latency_ms=4.5,
        response_ms=18.0,
        memory_mb_used=75_000,
    )

    tiles = {h["name"]: h for h in dashboard_snapshot()["hosts"]}

    assert (tiles["calm"]["status"], tiles["calm"]["load"], tiles["calm"]["vms"]) == ("ok", 20, 5)
    assert (tiles["busy"]["status"], tiles["busy"]["memory_load"]) == ("critical", 95)
    assert tiles["agent"]["status"] == "warning"
    assert tiles["down"]["status"] == "down" and not tiles["down"]["failed"]
    assert tiles["down"]["down_since"] is not None
    failed = tiles["failed"]
    assert failed["status"] == "failed" and failed["failed"] and failed["failed_at"]
    assert "declared failed" in failed["summary"]
    agent = tiles["agent"]
    assert (agent["load_1m"], agent["memory_free_mb"], agent["disk_latency_ms"]) == (
        3.25,
        2048,
        4.5,
    )
    assert "load 3.25" in agent["summary"] and "disk 4.5 ms" in agent["summary"]
    assert "response 18 ms" in agent["summary"]
    region_row = dashboard_snapshot()["regions"][0]
    assert (region_row["hosts"], region_row["hosts_up"], region_row["hosts_failed"]) == (5, 3, 1)


def pending_swap(pool: VMPool, incident: Incident, *, status: str = "pending") -> VMSwap:
    allocator = AllocatorFactory()
    vm = VMFactory(pool=pool, state="in_use")
    binding = Binding.objects.create(
        allocator=allocator, kind=BindingPolicy.USER, user=UserFactory(), vm=vm
    )
    return VMSwap.objects.create(
        binding=binding,
        pool=pool,
        old_vm=vm,
        status=status,
        reason="host failed",
        actor="recovery",
        incident=incident,
    )


@pytest.mark.django_db
def test_open_incidents_and_alerts_make_the_banner(client, staff, pool):
    failed = host(pool.region, "cmp-9", state=HostState.DOWN, failed_at=timezone.now())
    open_incident = Incident.objects.create(
        kind=IncidentKind.HOST_FAILURE,
        title="Host cmp-9 failed",
        host=failed,
        region=pool.region,
        users_affected=7,
    )
    pending_swap(pool, open_incident)
    pending_swap(pool, open_incident)
    pending_swap(pool, open_incident, status="done")
    Incident.objects.create(
        kind=IncidentKind.HOST_FAILURE, title="Old failure", status=IncidentStatus.CLOSED
    )
    seen = timezone.now()
    for key, severity, status in [
        ("host_down:cmp-9", AlertSeverity.CRITICAL, AlertStatus.OPEN),
        ("pool_below_min:a", AlertSeverity.WARNING, AlertStatus.ACKNOWLEDGED),
        ("pool_below_min:b", AlertSeverity.WARNING, AlertStatus.OPEN),
        ("pool_below_min:c", AlertSeverity.CRITICAL, AlertStatus.CLOSED),
    ]:
        Alert.objects.create(
            kind=AlertKind.POOL_BELOW_MIN,
            key=key,
            severity=severity,
            status=status,
            message=f"alert {key}",
            last_seen_at=seen,
        )

    snapshot = dashboard_snapshot()

    (incident,) = snapshot["incidents"]
    assert incident["title"] == "Host cmp-9 failed"
    assert incident["status_display"] == "Recovering"
    assert (incident["users_affected"], incident["swaps_pending"]) == (7, 2)
    assert incident["url"] == f"/incidents/{open_incident.pk}/"
    alerts = snapshot["alerts"]
    assert alerts["by_severity"] == {"warning": 2, "critical": 1}
    assert (alerts["open"], alerts["unacknowledged"], alerts["url"]) == (3, 2, "/alerts/")
    assert "alert pool_below_min:c" not in [a["message"] for a in alerts["newest"]]

    client.force_login(staff)
    page = client.get("/").content.decode()
    assert f'href="/incidents/{open_incident.pk}/"' in page
    assert "7 users affected" in page and "2 swaps pending" in page
    assert 'href="/alerts/"' in page and "3 open alerts" in page
    assert "Old failure" not in page


@pytest.mark.django_db
def test_the_page_renders_charts_data_and_tiles_without_the_websocket(client, staff):
    pool = VMPoolFactory(label="Agents east", min_ready=2)
    fill_pool(pool, 3)
    host(pool.region, "cmp-failed", state=HostState.DOWN, failed_at=timezone.now())
    connect_record(outcome="ready", latency_ms=42.0, ago=timedelta(seconds=1))
    client.force_login(staff)

    response = client.get("/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "<td>3 / 3</td>" in page  # ready / target
    assert 'class="tile status-failed"' in page
    assert 'id="allocation-chart"' in page and 'id="pool-chart"' in page
    assert 'id="boot-gauges"' in page
    # The charts are drawn from the snapshot embedded in the page.
    start = page.index('<script id="dashboard-snapshot" type="application/json">')
    embedded = page[start:].split(">", 1)[1].split("</script>", 1)[0]
    data = json.loads(embedded)
    assert data["allocations"]["totals"]["ready"] == 1
    assert [p["ready"] for p in data["pools"]] == [3]
    assert "static/js/dashboard.js" in page and "static/css/dashboard.css" in page
    assert "cdn" not in page.lower()


@pytest.mark.django_db
def test_the_snapshot_is_served_as_json_to_staff_only(client, staff, pool):
    assert client.get("/dashboard/snapshot").status_code == 403
    client.force_login(UserFactory())
    assert client.get("/dashboard/snapshot").json()["error"] == "permission_denied"
    client.force_login(staff)
    body = client.get("/dashboard/snapshot").json()
    assert body["type"] == "snapshot"
    assert [p["name"] for p in body["data"]["pools"]] == [pool.name]
    assert client.post("/dashboard/snapshot").status_code == 405


def build_world(hosts: int) -> None:
    region = RegionFactory(hosts=0)
    for index in range(hosts):
        host(
            region,
            f"{region.name}-cmp-{index}",
            failed_at=timezone.now() if index % 7 == 0 else None,
        )
    for index in range(max(1, hosts // 5)):
        pool = VMPoolFactory(region=region)
        VMFactory(pool=pool, state="building")
        VMFactory(pool=pool, state="ready")
        incident = Incident.objects.create(
            kind=IncidentKind.HOST_FAILURE,
            title=f"incident {pool.name}",
            host=Host.objects.filter(region=region)[index],
        )
        pending_swap(pool, incident)
    for index in range(hosts):
        connect_record(outcome="ready", latency_ms=float(index), ago=timedelta(minutes=index % 30))
        Alert.objects.create(
            kind=AlertKind.HOST_DOWN,
            key=f"{region.name}:{index}",
            message="down",
            last_seen_at=timezone.now(),
        )


@pytest.mark.django_db
def test_the_snapshot_costs_the_same_queries_for_5_or_50_hosts():
    SchedulingPolicy.current()

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            dashboard_snapshot()
        return len(captured)

    build_world(5)
    small = queries()
    build_world(45)
    large = queries()

    assert len(dashboard_snapshot()["hosts"]) == 50
    assert large == small
    assert small <= 12


# --- pushes over the websocket ---------------------------------------------------------


async def next_snapshot(communicator, timeout: float) -> tuple[dict, float]:
    message = await communicator.receive_json_from(timeout=timeout)
    return message, time.monotonic()


async def open_dashboard(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(DashboardConsumer.as_asgi(), "/ws/dashboard/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    first = await communicator.receive_json_from(timeout=5)  # the push at connect
    assert first["type"] == "snapshot"
    return communicator


def change_pool_target(pool_id: int, target: int, *, reason: str) -> None:
    with transaction.atomic():
        VMPool.objects.filter(pk=pool_id).update(target_ready=target)
        dashboard_changed(reason)


@pytest.mark.django_db(transaction=True)
def test_a_change_is_pushed_at_once_after_dashboard_changed(staff, settings, in_memory_layer):
    settings.DASHBOARD_PUSH_INTERVAL = 60  # only the event can explain a push
    pool = VMPoolFactory(target_ready=3)

    async def session():
        communicator = await open_dashboard(staff)
        await asyncio.sleep(0.6)  # past the spacing after the push at connect
        sent = time.monotonic()
        await sync_to_async(change_pool_target)(pool.pk, 9, reason="target raised")
        message, received = await next_snapshot(communicator, timeout=2)
        await communicator.disconnect()
        return message, received - sent

    message, delay = async_to_sync(session)()

    assert delay < 2
    assert message["reasons"] == ["target raised"]
    (pushed,) = message["data"]["pools"]
    assert pushed["target"] == 9


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_sends_no_event(staff, settings, in_memory_layer):
    settings.DASHBOARD_PUSH_INTERVAL = 60
    pool = VMPoolFactory(target_ready=3)

    def change_then_fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            VMPool.objects.filter(pk=pool.pk).update(target_ready=9)
            dashboard_changed("rolled back")
            raise RuntimeError("the service failed")

    async def session():
        communicator = await open_dashboard(staff)
        await sync_to_async(change_then_fail)()
        nothing = await communicator.receive_nothing(timeout=1.2)
        await communicator.disconnect()
        return nothing

    assert async_to_sync(session)()


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_events_gives_one_push(staff, settings, in_memory_layer):
    settings.DASHBOARD_PUSH_INTERVAL = 60
    VMPoolFactory()

    async def session():
        communicator = await open_dashboard(staff)
        for index in range(20):
            await sync_to_async(dashboard_changed)(f"change {index}")
        first = await communicator.receive_json_from(timeout=2)
        more = await communicator.receive_nothing(timeout=1.0)
        await communicator.disconnect()
        return first, more

    first, nothing_more = async_to_sync(session)()

    assert first["type"] == "snapshot"
    assert first["reasons"][:2] == ["change 0", "change 1"]
    assert nothing_more


@pytest.mark.django_db(transaction=True)
def test_changes_in_one_transaction_send_one_event(staff, settings, in_memory_layer):
    settings.DASHBOARD_PUSH_INTERVAL = 60
    pool = VMPoolFactory(target_ready=3)

    def many_changes():
        with transaction.atomic():
            for target in (4, 5, 6):
                VMPool.objects.filter(pk=pool.pk).update(target_ready=target)
                dashboard_changed(f"target {target}")

    async def session():
        communicator = await open_dashboard(staff)
        await asyncio.sleep(0.6)
        await sync_to_async(many_changes)()
        message = await communicator.receive_json_from(timeout=2)
        await communicator.disconnect()
        return message

    message = async_to_sync(session)()

    assert message["reasons"] == ["target 4; target 5; target 6"]
    assert message["data"]["pools"][0]["target"] == 6


@pytest.mark.django_db(transaction=True)
def test_a_refill_pushes_the_booting_vms(staff, settings, in_memory_layer):
    settings.DASHBOARD_PUSH_INTERVAL = 60
    region = RegionFactory(simulation__boot_seconds_min=30)
    pool = VMPoolFactory(region=region, target_ready=2)

    async def session():
        communicator = await open_dashboard(staff)
        started = await sync_to_async(pool_refill)(pool_id=pool.pk)
        message = await communicator.receive_json_from(timeout=2)
        await communicator.disconnect()
        return started, message

    started, message = async_to_sync(session)()

    assert started == 2
    (pushed,) = message["data"]["pools"]
    assert pushed["booting"] == 2
    assert message["data"]["boots"]["booting"] == 2


@pytest.mark.django_db
def test_a_channel_layer_that_is_down_is_logged_not_raised(
    settings, caplog, django_capture_on_commit_callbacks
):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens there
        }
    }
    with caplog.at_level(logging.WARNING, logger="monitoring.events"):
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            dashboard_changed("pool refilled")
        elapsed = time.monotonic() - started

    assert elapsed < 2
    assert any("not sent" in r.getMessage() for r in caplog.records)


# --- across processes, through Redis ------------------------------------------------------


def redis_reachable() -> bool:
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5).close()
    except OSError:
        return False
    return True


SENDER = """
import time
import django
django.setup()
from django.db import transaction
from monitoring.events import dashboard_changed
with transaction.atomic():
    dashboard_changed({reason!r})
    print(time.time(), flush=True)
"""


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_an_event_from_another_process_reaches_the_dashboard_through_redis(
    staff, settings, tmp_path
):
    require(
        redis_reachable(),
        f"Redis at {REDIS_HOST}:{REDIS_PORT} (Debian's redis-server) is needed for this test",
    )
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    prefix = f"deskops-test-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [url], "prefix": prefix},
        }
    }
    settings.DASHBOARD_PUSH_INTERVAL = 60  # only the event can explain a push
    VMPoolFactory()
    reason = f"sent by process {uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "CHANNELS_REDIS_URL": url,
        "CHANNELS_REDIS_PREFIX": prefix,
        # The sender's own throwaway database: it only needs a connection to commit.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'sender.sqlite3'}",
    }
    assert django_settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] == prefix

    async def session():
        communicator = await open_dashboard(staff)
        sender = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SENDER.format(reason=reason),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            message = await communicator.receive_json_from(timeout=30)
            received = time.time()
        finally:
            out, err = await sender.communicate()
            await communicator.disconnect()
        assert sender.returncode == 0, err.decode()
        return message, received, float(out.split()[-1])

    message, received, sent = async_to_sync(session)()

    assert message["reasons"] == [reason]
    assert received - sent < 1.0
