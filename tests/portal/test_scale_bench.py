"""`manage.py bench_scale` on a tiny seeded world: a table with every ops API list,
the dashboard page and its websocket's first snapshot, and the thin-client
connects, each judged against its budget; a budget that cannot be met makes the
command fail. The websocket's consumer closes database connections between its
reads, hence transactional tests."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from allocation.models import Binding
from monitoring.models import ConnectRecord
from tests.portal.test_scale_seed import TINY

pytestmark = pytest.mark.django_db(transaction=True)

ENDPOINTS = ["regions", "hosts", "pools", "vms", "bindings", "audit-events"]


# Budgets no machine misses, so the tests check the table, not this machine's speed
# (the real budgets are in portal/scale/budgets.py).
LOOSE = ["--connect-p99-ms", "9000", "--list-median-ms", "9001", "--dashboard-median-ms", "9002"]


def bench(*args: str) -> str:
    out = StringIO()
    call_command(
        "bench_scale", *TINY, "--connects", "6", "--repeat", "1", *LOOSE, *args, stdout=out
    )
    return out.getvalue()


def line(out: str, label: str) -> str:
    return next(row for row in out.splitlines() if row.startswith(label))


def test_the_table_has_every_view_judged_against_its_budget():
    # Two pages of audit events (100 a page), one of everything else.
    out = bench("--audit-events", "150")

    for name in ENDPOINTS:
        assert re.search(rf"^{name}: first page .* median 9001 +ok", out, re.M), name
        assert re.search(rf"^{name}: {500} a page .* median 9001 +ok", out, re.M), name
    # A filter where the list has one, and the last page where it has several.
    assert "ok" in line(out, "vms: filtered")
    assert "n/a (no filters)" in line(out, "regions: filtered")
    assert "n/a (one page only)" in line(out, "vms: last page")
    assert line(out, "audit-events: last page (2)").endswith("median 9001  ok")
    assert re.search(r"^dashboard page .* median 9002 +ok", out, re.M)
    assert re.search(r"^dashboard websocket: first snapshot .* median 9002 +ok", out, re.M)
    bound = line(out, "connect: bound user, desktop comes back, without")
    new = line(out, "connect: new user, claims a ready VM, without")
    assert "p99 9000" in bound and " ok" in bound
    assert "p99 9000" in new and " ok" in new
    assert "22 views judged against their budget: 22 within, 0 over, 0 failed" in out


def test_the_connects_are_real_logins_of_distinct_users():
    active = Binding.objects.filter(released_at__isnull=True).count()
    started = timezone.now()

    out = bench()

    # The seeded history of connects lies before the run.
    records = list(ConnectRecord.objects.filter(at__gte=started))
    sources = [r.source for r in records]
    # Three bound users got their desktop back (and one warm-up), three new ones claimed one.
    assert sources.count("binding") == 4
    assert sources.count("claimed") == 3
    assert len({r.username for r in records}) == 7
    assert all(r.outcome == "ready" for r in records)
    assert Binding.objects.filter(released_at__isnull=True).count() == 3 + 30
    assert active == 0  # the benchmark seeded the empty database itself
    assert "seeded" in out


def test_a_budget_that_cannot_be_met_fails_the_command_unless_told_not_to():
    with pytest.raises(CommandError, match="missed their budget"):
        bench("--list-median-ms", "0.001")

    out = bench("--list-median-ms", "0.001", "--no-fail")
    assert re.search(r"^vms: first page .* median 0.001 +OVER", out, re.M)
    assert "over budget: vms: first page" in out
