"""The staff pages at scale: a list page costs the same number of SQL queries
whether it shows 25 rows or 200 (no query per row), and the dashboard and the
help desk search cost the same however much the database holds. The world is
built with the benchmark's bulk builder, at a size that puts more than 200 of
every listed object in the database."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from allocation.models import Allocator, Binding, Terminal
from cloud.models import Host, Region
from maintenance.models import MaintenanceRun, MaintenanceTask
from monitoring.models import Alert, Incident
from pools.models import VM, VMPool
from portal.models import AuditEvent
from portal.scale import SMALL_WORLD, TINY_WORLD, build_world, table_rows
from tests.factories import UserFactory

LIST_PAGES = [
    "/regions/",
    "/hosts/",
    "/pools/",
    "/vms/",
    "/allocators/",
    "/bindings/",
    "/terminals/",
    "/maintenance/",
    "/maintenance/runs/",
    "/incidents/",
    "/alerts/",
    "/audit/",
]


@pytest.fixture(scope="class")
def large_world(django_db_setup, django_db_blocker):
    """One world for a class of tests, rolled back at its end (each test still
    runs in its own savepoint inside it)."""
    with django_db_blocker.unblock():
        with transaction.atomic():
            build_world(SMALL_WORLD, prefix="scale")
            yield
            transaction.set_rollback(True)


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(role="administrator"))
    return client


def fetch(client, url: str):
    """The response and the SQL it ran."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return response, [q["sql"] for q in queries.captured_queries]


def repeated(queries: list[str]) -> str:
    """The statement run most often, to point at a query made once per row."""
    counts: dict[str, int] = {}
    for sql in queries:
        counts[sql] = counts.get(sql, 0) + 1
    sql, times = max(counts.items(), key=lambda item: item[1])
    return f"{times}x {sql[:300]}"


@pytest.mark.usefixtures("large_world")
class TestListPagesAtScale:
    @pytest.mark.parametrize("url", LIST_PAGES)
    def test_a_list_page_costs_the_same_queries_for_25_rows_as_for_200(self, admin_client, url):
        small, small_queries = fetch(admin_client, f"{url}?per_page=25")
        big, big_queries = fetch(admin_client, f"{url}?per_page=200")

        assert small.status_code == 200, f"{url} answered {small.status_code}"
        assert big.status_code == 200, f"{url} answered {big.status_code}"
        small_rows = table_rows(small.content.decode())
        big_rows = table_rows(big.content.decode())
        assert small_rows > 0, f"{url} shows no rows"
        assert big_rows > small_rows, (
            f"{url} shows {small_rows} rows at 25 a page, {big_rows} at 200"
        )
        assert len(big_queries) == len(small_queries), (
            f"{url}: {len(small_queries)} queries at 25 a page, {len(big_queries)} at 200; "
            f"most repeated: {repeated(big_queries)}"
        )

    def test_the_world_holds_more_than_200_of_every_listed_object(self, db):
        counts = {
            model.__name__: model.objects.count()
            for model in (
                Region, Host, VMPool, VM, Allocator, Binding, Terminal,
                MaintenanceTask, MaintenanceRun, Incident, Alert, AuditEvent,
            )
        }  # fmt: skip
        assert all(count > 200 for count in counts.values()), counts
        # What lists show by default: active bindings, alerts and incidents not closed.
        assert Binding.objects.filter(released_at__isnull=True).count() > 200
        assert Alert.objects.exclude(status="closed").count() > 200
        assert Incident.objects.exclude(status="closed").count() > 200


@pytest.mark.parametrize("url", ["/", "/helpdesk/?q=user1"])
def test_a_page_costs_the_same_queries_however_much_the_database_holds(admin_client, url):
    build_world(TINY_WORLD, prefix="few")
    few, few_queries = fetch(admin_client, url)
    build_world(SMALL_WORLD, prefix="many")
    many, many_queries = fetch(admin_client, url)

    assert few.status_code == many.status_code == 200
    # The larger world shows more: hosts and pools on the dashboard, matching
    # users in the search.
    assert len(many.content) > len(few.content)
    assert len(many_queries) == len(few_queries), (
        f"{url}: {len(few_queries)} queries with a few objects, {len(many_queries)} with many; "
        f"most repeated: {repeated(many_queries)}"
    )


def test_table_rows_counts_data_rows_but_not_the_nothing_matches_line():
    html = (
        "<table><thead><tr><th>Name</th><th>State</th></tr></thead><tbody>"
        "<tr><td>a</td><td>ready</td></tr><tr><td>b</td><td>in use</td></tr>"
        "</tbody></table>"
        "<table><tbody><tr><td colspan='2'>No VMs match.</td></tr></tbody></table>"
    )
    assert table_rows(html) == 2


def test_the_page_benchmark_prints_a_line_per_view_of_a_page(db):
    out = StringIO()
    call_command(
        "bench_pages", "--pages", "/audit/", "--repeat", "1", "--vms", "40", "--hosts", "4",
        "--terminals", "40", "--regions", "2", "--pools", "3", "--users", "40",
        "--allocators", "3", "--bindings", "10", "--audit-events", "120", "--alerts", "10",
        "--incidents", "5", "--tasks", "3", "--runs", "5", stdout=out,
    )  # fmt: skip

    lines = out.getvalue().splitlines()
    assert any(line.startswith("/audit/ ") for line in lines)
    for view in ("search", "filter", "sort", "last page", "200 a page"):
        line = next(line for line in lines if line.strip().startswith(f"{view}: /audit/"))
        assert "FAILED" not in line and "n/a" not in line, line
    summary = next(line for line in lines if "views measured" in line)
    assert "failed: 0" in summary
