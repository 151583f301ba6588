"""Reports: connects answered at once or after a wait, boot and swap times, usage
per site, pool and hour; the page, its CSV export and the pruning of old
connect records."""

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from allocation.choices import BindingPolicy
from allocation.models import Binding, DesktopSession, VMSwap
from monitoring import tasks
from monitoring.choices import IncidentKind
from monitoring.models import ConnectRecord, Incident
from monitoring.reports import (
    percentile,
    report_allocations,
    report_boot_times,
    report_swap_times,
    report_usage,
)
from monitoring.retention import connect_records_prune
from pools.choices import VMState
from tests.factories import (
    AllocatorFactory,
    SiteFactory,
    TerminalFactory,
    UserFactory,
    VMFactory,
    VMPoolFactory,
)

pytestmark = pytest.mark.django_db

UTC = ZoneInfo("UTC")
SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Monday long past: ranges in the tests are fixed, never "now".
T0 = datetime(2025, 3, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def staff(db):
    return UserFactory(role="viewer")


def stamp(obj, **fields):
    """Set fields the model fills in itself (auto_now_add) to known moments."""
    type(obj).objects.filter(pk=obj.pk).update(**fields)
    obj.refresh_from_db()
    return obj


def connect(at, outcome="ready", source="claimed", latency=10.0, pool=None, username=""):
    record = ConnectRecord.objects.create(
        outcome=outcome, source=source, latency_ms=latency, pool=pool, username=username
    )
    return stamp(record, at=at)


# --- Allocations -----------------------------------------------------------------


def test_allocations_count_hits_bindings_misses_and_errors_per_pool_and_day():
    east, west = VMPoolFactory(name="east"), VMPoolFactory(name="west")
    day1, day2 = T0 + timedelta(hours=9), T0 + timedelta(days=1, hours=9)
    for latency in (10, 20, 30):
        connect(day1, pool=east, latency=latency)
    connect(day1, pool=east, source="binding", latency=40)
    connect(day1, pool=east, outcome="preparing", source="", latency=5)
    connect(day1, pool=east, outcome="cloud_unavailable", source="", latency=7)
    connect(day1, pool=west, outcome="preparing", source="", latency=6)
    connect(day1, pool=west, latency=100)
    connect(day2, pool=east, latency=50)
    connect(day1, outcome="invalid_credentials", source="", latency=3)  # no pool chosen
    # Just outside the range, on both sides.
    connect(T0 - timedelta(seconds=1), pool=east)
    connect(T0 + timedelta(days=3), pool=east)

    report = report_allocations(since=T0, until=T0 + timedelta(days=3))

    by_key = {(row["pool"], row["period"]): row for row in report.rows}
    assert list(by_key) == [
        ("(none)", "2025-03-10"),
        ("east", "2025-03-10"),
        ("east", "2025-03-11"),
        ("west", "2025-03-10"),
    ]
    assert by_key[("east", "2025-03-10")] == {
        "pool": "east",
        "period": "2025-03-10",
        "connects": 6,
        "hits": 3,
        "bindings": 1,
        "misses": 1,
        "errors": 1,
        "hit_ratio": 0.75,
        "latency_p50_ms": 20.0,
        "latency_p95_ms": 40.0,
    }
    assert by_key[("west", "2025-03-10")]["hit_ratio"] == 0.5
    assert by_key[("(none)", "2025-03-10")]["errors"] == 1
    assert by_key[("(none)", "2025-03-10")]["hit_ratio"] is None
    totals = report.totals
    assert (totals["connects"], totals["hits"], totals["bindings"]) == (10, 5, 1)
    assert (totals["misses"], totals["errors"]) == (2, 2)
    assert totals["hit_ratio"] == round(5 / 7, 4)
    # Ready latencies: 10 20 30 40 50 100.
    assert (totals["latency_p50_ms"], totals["latency_p95_ms"]) == (30.0, 100.0)
    assert totals["by_pool"] == [
        {"pool": "east", "hits": 4, "misses": 1, "hit_ratio": 0.8},
        {"pool": "west", "hits": 1, "misses": 1, "hit_ratio": 0.5},
    ]


def test_users_who_waited_from_first_preparing_to_the_next_ready():
    pool = VMPoolFactory()
    start = T0 + timedelta(hours=8)
    # alice: two "preparing" answers, then ready 30 s after the first.
    connect(start, "preparing", "", pool=pool, username="alice")
    connect(start + timedelta(seconds=10), "preparing", "", pool=pool, username="alice")
    connect(start + timedelta(seconds=20), "cloud_unavailable", "", pool=pool, username="alice")
    connect(start + timedelta(seconds=30), pool=pool, username="alice")
    # bob waits 90 s, later gets a desktop at once (not a wait).
    connect(start, "preparing", "", pool=pool, username="bob")
    connect(start + timedelta(seconds=90), pool=pool, username="bob")
    connect(start + timedelta(hours=2), pool=pool, username="bob")
    # carol never got a desktop; dave never waited.
    connect(start, "preparing", "", pool=pool, username="carol")
    connect(start, pool=pool, username="dave")
    # erin's wait ended after the range: not a finished wait in it.
    connect(start, "preparing", "", pool=pool, username="erin")
    connect(T0 + timedelta(days=2), pool=pool, username="erin")

    totals = report_allocations(since=T0, until=T0 + timedelta(days=1)).totals

    assert totals["users_waited"] == 2
    assert totals["waits"] == 2
    assert totals["mean_wait_s"] == 60.0
    assert totals["users_unserved"] == 2  # carol and erin


def test_a_short_range_is_shown_per_hour_of_the_portal_time_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    pool = VMPoolFactory(name="hourly")
    since = datetime(2025, 3, 10, tzinfo=SHANGHAI)
    connect(since + timedelta(hours=9, minutes=30), pool=pool)  # 01:30 UTC
    connect(since + timedelta(hours=9, minutes=59), pool=pool)
    connect(since + timedelta(hours=10), pool=pool, outcome="preparing", source="")

    report = report_allocations(since=since, until=since + timedelta(days=2))

    assert [(r["period"], r["connects"], r["hits"], r["misses"]) for r in report.rows] == [
        ("2025-03-10 09:00", 2, 2, 0),
        ("2025-03-10 10:00", 1, 0, 1),
    ]
    assert report.columns[1] == ("period", "Hour")


def test_days_are_those_of_the_portal_time_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    pool = VMPoolFactory()
    connect(datetime(2025, 3, 10, 17, 0, tzinfo=UTC), pool=pool)  # 01:00 on the 11th there

    report = report_allocations(
        since=datetime(2025, 3, 9, tzinfo=SHANGHAI), until=datetime(2025, 3, 14, tzinfo=SHANGHAI)
    )

    assert [row["period"] for row in report.rows] == ["2025-03-11"]


def test_percentiles_are_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([7], 95) == 7
    assert percentile([4, 1, 3, 2], 50) == 2
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile(list(range(1, 101)), 100) == 100


# --- Boots -----------------------------------------------------------------------


def boot(pool, *, requested, took=None, started=None, state=VMState.READY, updated=None):
    """A VM requested at `requested` that was ready `took` seconds after its boot
    started (`started`, or the request when not given)."""
    vm = VMFactory(pool=pool, state=state)
    fields = {"requested_at": requested, "boot_started_at": started}
    if took is not None:
        fields["ready_at"] = (started or requested) + timedelta(seconds=took)
    if updated is not None:
        fields["updated_at"] = updated
    return stamp(vm, **fields)


def test_boot_times_per_pool_with_failures():
    east, west = VMPoolFactory(name="east"), VMPoolFactory(name="west")
    at = T0 + timedelta(hours=6)
    boot(east, requested=at, took=55, started=at + timedelta(seconds=5))  # 60 s from request
    boot(east, requested=at, took=120)
    boot(east, requested=at, took=30)
    # Recycled after a week in use: its rebuild took 40 s, not a week.
    boot(east, requested=at - timedelta(days=7), started=at, took=40)
    boot(west, requested=at, took=200)
    boot(east, requested=T0 - timedelta(hours=1), took=10)  # ready before the range
    boot(east, requested=at, state=VMState.ERROR, updated=at + timedelta(minutes=5))
    boot(west, requested=at, state=VMState.ERROR, updated=at)
    boot(west, requested=at, state=VMState.ERROR, updated=T0 - timedelta(days=1))  # before

    report = report_boot_times(since=T0, until=T0 + timedelta(days=1))

    assert report.rows == [
        {
            "pool": "east",
            "boots": 4,
            "rebuilds": 1,
            "mean_s": 62.5,
            "p50_s": 40.0,
            "p95_s": 120.0,
            "max_s": 120.0,
            "failures": 1,
        },
        {
            "pool": "west",
            "boots": 1,
            "rebuilds": 0,
            "mean_s": 200.0,
            "p50_s": 200.0,
            "p95_s": 200.0,
            "max_s": 200.0,
            "failures": 1,
        },
    ]
    assert report.totals["boots"] == 5
    assert report.totals["mean_s"] == 90.0  # (60 + 120 + 30 + 40 + 200) / 5
    assert report.totals["failures"] == 2


def test_a_pool_with_only_failures_has_a_row_without_times():
    pool = VMPoolFactory(name="broken")
    boot(pool, requested=T0, state=VMState.ERROR, updated=T0 + timedelta(hours=1))

    (row,) = report_boot_times(since=T0, until=T0 + timedelta(days=1)).rows

    assert row["boots"] == 0 and row["failures"] == 1
    assert row["mean_s"] is None and row["max_s"] is None


# --- Swaps -----------------------------------------------------------------------


@pytest.fixture
def binding_of(db):
    allocator = AllocatorFactory()

    def make(pool):
        vm = VMFactory(pool=pool, state=VMState.IN_USE)
        return Binding.objects.create(
            allocator=allocator, kind=BindingPolicy.FLOATING, user=UserFactory(), vm=vm
        )

    return make


def swap(binding, *, requested, took=None, status=VMSwap.Status.DONE, incident=None):
    record = VMSwap.objects.create(
        binding=binding,
        pool=binding.vm.pool,
        old_vm=binding.vm,
        status=status,
        reason="slow desktop",
        actor="helpdesk",
        incident=incident,
    )
    completed = requested + timedelta(seconds=took) if took is not None else None
    return stamp(record, requested_at=requested, completed_at=completed)


def test_swap_times_per_pool_and_cause(binding_of):
    east = VMPoolFactory(name="east")
    at = T0 + timedelta(hours=10)
    incident = Incident.objects.create(kind=IncidentKind.HOST_FAILURE, title="cmp-1 down")
    swap(binding_of(east), requested=at, took=30)
    swap(binding_of(east), requested=at, took=90)
    swap(binding_of(east), requested=at, status=VMSwap.Status.FAILED)
    swap(binding_of(east), requested=at, status=VMSwap.Status.PENDING)
    swap(binding_of(east), requested=at, took=300, incident=incident)
    swap(binding_of(east), requested=at, took=600, incident=incident)
    swap(binding_of(east), requested=T0 - timedelta(minutes=1), took=5)  # before the range

    report = report_swap_times(since=T0, until=T0 + timedelta(days=1))

    assert report.rows == [
        {
            "pool": "east",
            "cause": "help desk",
            "swaps": 4,
            "done": 2,
            "pending": 1,
            "failed": 1,
            "mean_s": 60.0,
            "p95_s": 90.0,
            "max_s": 90.0,
        },
        {
            "pool": "east",
            "cause": "host failure",
            "swaps": 2,
            "done": 2,
            "pending": 0,
            "failed": 0,
            "mean_s": 450.0,
            "p95_s": 600.0,
            "max_s": 600.0,
        },
    ]
    assert (report.totals["swaps"], report.totals["done"]) == (6, 4)
    assert report.totals["mean_s"] == 255.0  # (30 + 90 + 300 + 600) / 4
    assert report.totals["max_s"] == 600.0


# --- Usage -----------------------------------------------------------------------


def session(site, pool, *, started, ended=None):
    terminal = TerminalFactory(site=SiteFactory(name=site))
    vm = VMFactory(pool=pool, state=VMState.IN_USE)
    record = DesktopSession.objects.create(user=UserFactory(), terminal=terminal, vm=vm)
    return stamp(record, started_at=started, ended_at=ended)


def test_usage_per_site_pool_and_local_hour(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    agents, vip = VMPoolFactory(name="agents"), VMPoolFactory(name="vip")
    day = datetime(2025, 3, 10, tzinfo=SHANGHAI)
    h = timedelta(hours=1)
    session("shanghai", agents, started=day + 9 * h, ended=day + 11.5 * h)
    # Started the evening before: only its hour after midnight counts.
    session("hefei", vip, started=day - h, ended=day + h)
    # Still open: counts up to the end of the range.
    session("hefei", agents, started=day + 23.5 * h)
    session("hefei", agents, started=day - 3 * h, ended=day - h)  # over before the range
    session("hefei", agents, started=day + 25 * h)  # starts after it

    report = report_usage(since=day, until=day + 24 * h)

    rows = {(r["by"], r["key"]): (r["sessions"], r["desktop_hours"]) for r in report.rows}
    assert rows[("site", "shanghai")] == (1, 2.5)
    assert rows[("site", "hefei")] == (2, 1.5)
    assert rows[("pool", "agents")] == (2, 3.0)
    assert rows[("pool", "vip")] == (1, 1.0)
    hours = {key: value for (by, key), value in rows.items() if by == "hour"}
    assert list(hours) == list(range(24))
    assert hours[0] == (1, 1.0)
    assert hours[9] == (1, 1.0)
    assert hours[10] == (0, 1.0)
    assert hours[11] == (0, 0.5)
    assert hours[23] == (1, 0.5)
    assert sum(value[1] for value in hours.values()) == 4.0
    assert report.totals == {"sessions": 3, "desktop_hours": 4.0}


def test_an_open_session_does_not_count_hours_that_have_not_happened():
    pool = VMPoolFactory()
    now = timezone.now()
    session("shanghai", pool, started=now - timedelta(hours=2))

    report = report_usage(since=now - timedelta(days=1), until=now + timedelta(days=1))

    assert report.totals["sessions"] == 1
    assert 1.99 <= report.totals["desktop_hours"] <= 2.01


# --- Query counts ----------------------------------------------------------------


def world(pools: int, binding_of) -> None:
    """Some of everything in `pools` pools, each used at its own site."""
    at = T0 + timedelta(hours=9)
    incident = Incident.objects.create(kind=IncidentKind.HOST_FAILURE, title="down")
    for index in range(pools):
        pool = VMPoolFactory()
        connect(at, pool=pool, username=f"u{index}", outcome="preparing", source="")
        connect(at + timedelta(seconds=20), pool=pool, username=f"u{index}")
        boot(pool, requested=at, took=30)
        boot(pool, requested=at, state=VMState.ERROR, updated=at)
        swap(binding_of(pool), requested=at, took=30)
        swap(binding_of(pool), requested=at, took=60, incident=incident)
        session(f"site-{pool.pk}", pool, started=at, ended=at + timedelta(hours=1))


@pytest.mark.parametrize(
    "select", [report_allocations, report_boot_times, report_swap_times, report_usage]
)
def test_queries_do_not_grow_with_pools_and_sites(select, binding_of):
    def queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            report = select(since=T0, until=T0 + timedelta(days=3))
        return len(captured), len(report.rows)

    world(1, binding_of)
    few, few_rows = queries()
    world(4, binding_of)
    many, many_rows = queries()

    assert many_rows > few_rows  # the extra pools are in the report...
    assert many == few  # ...at no extra query


# --- The page and the CSV export -------------------------------------------------


def test_reports_are_for_staff_only(client):
    for url in ("/reports/", "/reports/usage.csv"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    client.force_login(UserFactory())  # a thin-client user
    assert client.get("/reports/").status_code == 403
    assert client.get("/reports/allocations.csv").status_code == 403


def test_the_page_defaults_to_the_last_seven_days(client, staff):
    client.force_login(staff)
    today = timezone.localdate()

    page = client.get("/reports/").content.decode()

    first = (today - timedelta(days=6)).isoformat()
    assert f'name="from" value="{first}"' in page
    assert f'name="to" value="{today.isoformat()}"' in page
    assert f"/reports/allocations.csv?from={first}&amp;to={today.isoformat()}" in page
    for section in ("Allocations", "Boot times", "Swap times", "Usage"):
        assert f"<h2>{section} " in page


def test_presets_pick_the_range(client, staff):
    client.force_login(staff)
    today = timezone.localdate()

    page = client.get("/reports/", {"preset": "today"}).content.decode()
    assert f'name="from" value="{today.isoformat()}"' in page

    page = client.get("/reports/", {"preset": "30d"}).content.decode()
    assert f'name="from" value="{(today - timedelta(days=29)).isoformat()}"' in page


def test_the_page_shows_the_figures_and_charts(client, staff):
    pool = VMPoolFactory(name="agents-east")
    at = T0 + timedelta(hours=9)
    connect(at, pool=pool, latency=12)
    connect(at, pool=pool, latency=12)
    connect(at, pool=pool, outcome="preparing", source="")
    session("shanghai", pool, started=at, ended=at + timedelta(hours=3))
    client.force_login(staff)

    response = client.get("/reports/", {"from": "2025-03-10", "to": "2025-03-16"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "<td>agents-east</td><td>2025-03-10</td><td>3</td><td>2</td>" in page
    assert "<td>66.7%</td>" in page  # hit ratio 2 / 3
    assert 'aria-label="Hit ratio per pool"' in page
    assert 'aria-label="Desktop-hours per hour of day"' in page
    assert "<td>shanghai</td><td>1</td><td>3.0</td>" in page


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_csv_export_has_a_header_a_filename_and_the_rows_of_the_table(client, staff):
    east = VMPoolFactory(name="east")
    at = T0 + timedelta(hours=9)
    connect(at, pool=east, latency=10)
    connect(at, pool=east, outcome="preparing", source="")
    connect(at + timedelta(days=1), pool=east, latency=30)
    connect(T0 + timedelta(days=5), pool=east)  # after the range
    client.force_login(staff)

    response = client.get("/reports/allocations.csv", {"from": "2025-03-10", "to": "2025-03-12"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        'attachment; filename="deskops-allocations-2025-03-10-2025-03-12.csv"'
    )
    assert csv_rows(response) == [
        [
            "pool",
            "period",
            "connects",
            "hits",
            "bindings",
            "misses",
            "errors",
            "hit_ratio",
            "latency_p50_ms",
            "latency_p95_ms",
        ],
        ["east", "2025-03-10", "2", "1", "0", "1", "0", "0.5", "10.0", "10.0"],
        ["east", "2025-03-11", "1", "1", "0", "0", "0", "1.0", "30.0", "30.0"],
    ]


def test_csv_of_each_report(client, staff, binding_of):
    world(2, binding_of)
    client.force_login(staff)
    query = {"from": "2025-03-10", "to": "2025-03-10"}

    boots = csv_rows(client.get("/reports/boots.csv", query))
    swaps = csv_rows(client.get("/reports/swaps.csv", query))
    usage = csv_rows(client.get("/reports/usage.csv", query))

    assert boots[0] == [
        "pool",
        "boots",
        "rebuilds",
        "mean_s",
        "p50_s",
        "p95_s",
        "max_s",
        "failures",
    ]
    assert [row[1:] for row in boots[1:]] == [["1", "0", "30.0", "30.0", "30.0", "30.0", "1"]] * 2
    assert swaps[0][:3] == ["pool", "cause", "swaps"]
    assert sorted(row[1] for row in swaps[1:]) == ["help desk"] * 2 + ["host failure"] * 2
    assert usage[0] == ["by", "key", "sessions", "desktop_hours"]
    assert len(usage) == 1 + 2 + 2 + 24  # header, two sites, two pools, 24 hours
    assert ["hour", "9", "2", "2.0"] in usage


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "garbage"}, "Enter a valid date"),
        ({"from": "2025-03-10", "to": "2025-03-01"}, "before the “from” date"),
        ({"from": "2023-01-01", "to": "2025-01-01"}, "at most 366 days"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "must be between"),
        ({"to": "9999-12-31"}, "must be between"),
        ({"preset": "forever"}, "Select a valid choice"),
    ],
)
def test_bad_ranges_are_refused_clearly(client, staff, query, message):
    client.force_login(staff)

    page = client.get("/reports/", query)
    export = client.get("/reports/usage.csv", query)

    assert page.status_code == 400
    assert message in page.content.decode()
    assert 'id="range-errors"' in page.content.decode()
    assert export.status_code == 400
    assert message in export.content.decode()


def test_a_range_of_exactly_366_days_is_allowed(client, staff):
    client.force_login(staff)
    response = client.get("/reports/boots.csv", {"from": "2024-01-01", "to": "2024-12-31"})
    assert response.status_code == 200


def test_an_unknown_report_is_not_found(client, staff):
    client.force_login(staff)
    assert client.get("/reports/secrets.csv").status_code == 404
    assert client.get("/reports/../etc.csv").status_code == 404


# --- Retention -------------------------------------------------------------------


def test_old_connect_records_are_pruned(settings):
    settings.REPORTS_RETENTION_DAYS = 10
    now = timezone.now()
    old = [connect(now - timedelta(days=days)) for days in (11, 30, 400)]
    kept = [connect(now - timedelta(days=days)) for days in (0, 9)]

    assert connect_records_prune() == len(old)
    assert set(ConnectRecord.objects.values_list("pk", flat=True)) == {r.pk for r in kept}
    assert tasks.connect_records_prune() == 0  # the daily task; nothing left to prune


def test_pruning_runs_daily_and_keeps_90_days_by_default():
    entry = django_settings.CELERY_BEAT_SCHEDULE["monitoring-prune-connect-records"]
    assert entry["task"] == "monitoring.tasks.connect_records_prune"
    assert entry["schedule"] == timedelta(days=1)
    assert django_settings.REPORTS_RETENTION_DAYS == 90
