"""/metrics tells an operator's alerting what went wrong lately: boots that failed
or finished, failed hosts, open incidents and alerts, the login probe, recent
allocations, and the Celery backlog read from the broker itself (Redis or the
embedded SQLAlchemy broker)."""

from datetime import timedelta

import pytest
from celery import Celery
from django.utils import timezone
from kombu import Connection

from cloud.models import Host
from monitoring.choices import AlertSeverity, AlertStatus, IncidentKind, IncidentStatus
from monitoring.models import Alert, ConnectRecord, Incident, ProbeResult
from monitoring.queues import broker_queue_lengths, celery_queue_names
from pools.choices import VMState
from pools.models import VM
from tests.conftest import celery_broker, require
from tests.factories import RegionFactory, VMFactory, VMPoolFactory
from tests.monitoring.test_metrics import scrape, value

pytestmark = [
    pytest.mark.django_db,
    # kombu's SQLAlchemy transport uses a loader strategy SQLAlchemy 2.1 deprecates.
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
]

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of these tests' own


def minutes_ago(minutes: float):
    return timezone.now() - timedelta(minutes=minutes)


def test_boot_failures_and_finished_boots_of_the_last_15_minutes(client):
    busy, quiet = VMPoolFactory(), VMPoolFactory()
    for _ in range(2):
        VMFactory(pool=busy, state=VMState.ERROR)
    old_failure = VMFactory(pool=busy, state=VMState.ERROR)
    VM.objects.filter(pk=old_failure.pk).update(updated_at=minutes_ago(20))
    for _ in range(3):
        VMFactory(pool=busy, state=VMState.READY, ready_at=minutes_ago(1))
    VMFactory(pool=busy, state=VMState.IN_USE, ready_at=minutes_ago(14))
    VMFactory(pool=busy, state=VMState.READY, ready_at=minutes_ago(30))

    samples = scrape(client)

    assert value(samples, "deskops_boot_failures_15m", pool=busy.name) == 2
    assert value(samples, "deskops_boots_ready_15m", pool=busy.name) == 4
    # A quiet pool is listed with zeros, so an alert rule sees it.
    assert ("deskops_boot_failures_15m", (("pool", quiet.name),)) in samples
    assert value(samples, "deskops_boots_ready_15m", pool=quiet.name) == 0


def test_failed_hosts_incidents_and_alerts(client):
    east, west = RegionFactory(hosts=0), RegionFactory(hosts=0)
    failed = Host.objects.create(region=east, name="cmp-1", failed_at=timezone.now())
    Host.objects.create(region=east, name="cmp-2")
    Host.objects.create(region=west, name="cmp-3")
    Incident.objects.create(kind=IncidentKind.HOST_FAILURE, title="cmp-1 failed", host=failed)
    Incident.objects.create(
        kind=IncidentKind.HOST_FAILURE, title="old", status=IncidentStatus.RECOVERED
    )
    now = timezone.now()
    Alert.objects.create(kind="host_down", key="a", message="a", last_seen_at=now)
    Alert.objects.create(
        kind="host_down",
        key="b",
        message="b",
        last_seen_at=now,
        severity=AlertSeverity.CRITICAL,
        status=AlertStatus.ACKNOWLEDGED,
    )
    Alert.objects.create(
        kind="host_down",
        key="c",
        message="c",
        last_seen_at=now,
        severity=AlertSeverity.CRITICAL,
        status=AlertStatus.CLOSED,
    )

    samples = scrape(client)

    assert value(samples, "deskops_hosts_failed", region=east.name) == 1
    assert ("deskops_hosts_failed", (("region", west.name),)) in samples
    assert value(samples, "deskops_hosts_failed", region=west.name) == 0
    assert value(samples, "deskops_incidents_open") == 1
    assert value(samples, "deskops_alerts", severity="warning") == 1
    assert value(samples, "deskops_alerts", severity="critical") == 1


def test_the_login_probe_last_result(client):
    assert not any(name.startswith("deskops_login_probe") for name, _ in scrape(client))
    earlier = ProbeResult.objects.create(ok=True, outcome="ready", latency_ms=80.0)
    ProbeResult.objects.filter(pk=earlier.pk).update(at=minutes_ago(2))
    ProbeResult.objects.create(
        ok=False, status_code=503, outcome="cloud_unavailable", latency_ms=1500.0
    )

    samples = scrape(client)

    assert value(samples, "deskops_login_probe_ok") == 0
    assert value(samples, "deskops_login_probe_latency_seconds") == pytest.approx(1.5)
    assert 0 <= value(samples, "deskops_login_probe_age_seconds") < 60


def test_allocations_of_the_last_5_minutes_by_outcome(client):
    for outcome in ("ready", "ready", "preparing", "invalid_credentials"):
        ConnectRecord.objects.create(outcome=outcome, latency_ms=12.0)
    old = ConnectRecord.objects.create(outcome="ready", latency_ms=12.0)
    ConnectRecord.objects.filter(pk=old.pk).update(at=minutes_ago(6))

    samples = scrape(client)

    assert value(samples, "deskops_allocations_5m", outcome="ready") == 2
    assert value(samples, "deskops_allocations_5m", outcome="preparing") == 1
    assert value(samples, "deskops_allocations_5m", outcome="invalid_credentials") == 1


def test_queue_names_come_from_the_routes_and_queues():
    class Conf:
        task_default_queue = "celery"
        task_routes = {"monitoring.tasks.*": {"queue": "monitoring"}, "x.y": {"queue": "celery"}}
        task_queues = None

    assert celery_queue_names(Conf()) == ["celery", "monitoring"]


@pytest.fixture
def redis_broker():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        require(False, f"needs Redis at 127.0.0.1:6379: {exc}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_redis_queue_lengths_count_every_waiting_message(redis_broker):
    # Not the current app: tasks queued by later tests must keep using the project's.
    sender = Celery("deskops-test", broker=REDIS_URL, set_as_current=False)
    try:
        for _ in range(3):
            sender.send_task("pools.tasks.pools_refill_all")
        # A message with a priority waits in one of kombu's sub-lists: it counts too.
        sender.send_task("pools.tasks.pools_refill_all", priority=6)
        sender.send_task("monitoring.tasks.probe_login", queue="monitoring")
    finally:
        sender.close()

    lengths = broker_queue_lengths(broker_url=REDIS_URL, queues=["celery", "monitoring", "reports"])

    assert lengths == {"celery": 4, "monitoring": 1, "reports": 0}


@pytest.fixture
def sqla_broker(tmp_path):
    return f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"


def test_sqlalchemy_broker_counts_visible_messages(sqla_broker):
    with Connection(sqla_broker) as connection:
        queue = connection.SimpleQueue("celery")
        for n in range(3):
            queue.put({"n": n})
        delivered = queue.get(timeout=5)  # taken by a worker, not yet acknowledged
        assert delivered.payload == {"n": 0}
        connection.SimpleQueue("reports").put({"n": 9})

        lengths = broker_queue_lengths(
            broker_url=sqla_broker, queues=["celery", "reports", "monitoring"]
        )
        queue.close()

    assert lengths == {"celery": 2, "reports": 1, "monitoring": 0}


def test_the_scrape_reports_the_apps_broker_backlog(client, sqla_broker):
    with Connection(sqla_broker) as connection:
        queue = connection.SimpleQueue("celery")
        queue.put({"task": "x"})
        queue.put({"task": "y"})
        queue.close()
    with celery_broker(sqla_broker):
        samples = scrape(client)

    assert value(samples, "deskops_celery_queue_length", queue="celery") == 2


@pytest.mark.parametrize(
    "broker_url",
    [
        "redis://127.0.0.1:1/0",  # nothing listens
        "sqla+sqlite:////nonexistent/dir/broker.sqlite3",  # no file: none is created
        "memory://",
    ],
)
def test_an_unreadable_broker_leaves_the_figure_out(client, broker_url):
    with celery_broker(broker_url):
        samples = scrape(client)

    assert not any(name == "deskops_celery_queue_length" for name, _ in samples)
    assert "deskops_sessions_open" in {name for name, _ in samples}


def test_a_broker_file_without_kombu_tables_gives_no_figure(tmp_path):
    empty = tmp_path / "empty.sqlite3"
    empty.write_bytes(b"")
    assert broker_queue_lengths(broker_url=f"sqla+sqlite:///{empty}", queues=["celery"]) is None
