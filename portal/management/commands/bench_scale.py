"""Benchmark: the thin-client connect, the ops API lists and the dashboard on a
large installation (by default the one `seed_scale` seeds: 100,000 terminals,
50,000 VMs), against the budgets of `portal.scale.budgets`.

Everything is asked in process through the real URLs (Django's test client; the
dashboard's websocket through Channels' communicator), so the figures are the
server's own time and queries, without a network or a web server. The database
must hold a world seeded under `--prefix`; an empty database is seeded first
(with the size options). The connects change the world as real logins would
(sessions, bindings, claimed VMs); each run picks users who have not connected
yet for the claims.

The command fails (non-zero exit) when a view answers with an error or misses its
budget, unless `--no-fail`. Run it through `scripts/bench.sh scale`, with DEBUG
off and, for PostgreSQL, `BENCH_DATABASE_URL`."""

import logging
import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client

from cloud.models import Region
from portal.scale.budgets import BUDGETS, Budgets
from portal.scale.connects import bench_connects
from portal.scale.options import (
    DEFAULT_PASSWORD,
    DEFAULT_PREFIX,
    add_size_arguments,
    database_holds_data,
    seed,
    size_from_options,
)
from portal.scale.reads import Reader
from portal.scale.timing import Measure

ADMIN = "bench-scale-admin"
PARTS = ("api", "dashboard", "connect")


class Command(BaseCommand):
    help = "Time connects, ops API lists and the dashboard on a large world, against budgets."

    def add_arguments(self, parser):
        add_size_arguments(parser)
        parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="The seeded world's prefix.")
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="Its users' password.")
        parser.add_argument(
            "--connects", type=int, default=200, help="Connects, half bound users, half new."
        )
        parser.add_argument("--repeat", type=int, default=5, help="Timed requests per read view.")
        parser.add_argument("--connect-p99-ms", type=float, default=BUDGETS.connect_p99_ms)
        parser.add_argument("--list-median-ms", type=float, default=BUDGETS.list_median_ms)
        parser.add_argument(
            "--dashboard-median-ms", type=float, default=BUDGETS.dashboard_median_ms
        )
        parser.add_argument(
            "--no-fail", action="store_true", help="Exit 0 even when a budget is missed."
        )
        parser.add_argument(
            "--parts",
            nargs="+",
            choices=PARTS,
            default=list(PARTS),
            help="Measure only these parts (all by default).",
        )

    def handle(self, *args, **options):
        if options["repeat"] < 1 or options["connects"] < 2:
            raise CommandError("--repeat must be at least 1 and --connects at least 2.")
        budgets = Budgets(
            connect_p99_ms=options["connect_p99_ms"],
            list_median_ms=options["list_median_ms"],
            dashboard_median_ms=options["dashboard_median_ms"],
        )
        self._world(options)
        if settings.DEBUG:
            self.stdout.write(
                "note: DEBUG is on (every query is also logged in memory, templates render "
                "in debug mode); set DJANGO_DEBUG=false for production figures."
            )
        # A refused request is reported in the table; its log line would only
        # interleave with it.
        request_log = logging.getLogger("django.request")
        level = request_log.level
        request_log.setLevel(logging.CRITICAL)
        try:
            admin = self._admin()
            client = Client()
            client.force_login(admin)
            reader = Reader(client, repeat=options["repeat"], budgets=budgets)
            parts = options["parts"]
            measures = reader.api_lists() if "api" in parts else []
            measures += reader.dashboard(admin) if "dashboard" in parts else []
            if "connect" in parts:
                measures += bench_connects(
                    prefix=options["prefix"],
                    password=options["password"],
                    count=options["connects"],
                    budgets=budgets,
                )
        finally:
            request_log.setLevel(level)
            # The reads' superuser is the benchmark's own: it does not stay behind.
            get_user_model().objects.filter(username=ADMIN).delete()
        self._table(measures, options)
        self._verdict(measures, options["no_fail"])

    def _world(self, options) -> None:
        prefix = options["prefix"]
        if Region.objects.filter(name=f"{prefix}-r000").exists():
            return
        if database_holds_data():
            raise CommandError(
                f"This database holds no world “{prefix}” (seed_scale --prefix {prefix}) "
                "but other data: use an empty database, which the benchmark seeds."
            )
        size = size_from_options(options)
        problems = size.problems()
        if problems:
            raise CommandError("; ".join(problems))
        counts, rows, seconds = seed(size, prefix=prefix, password=options["password"])
        self.stdout.write(
            f"seeded {rows:,} rows in {seconds:.1f} s: "
            + ", ".join(f"{count:,} {name}" for name, count in counts.items())
        )

    @staticmethod
    def _admin():
        admin, _ = get_user_model().objects.get_or_create(
            username=ADMIN, defaults={"is_staff": True, "is_superuser": True}
        )
        admin.set_unusable_password()
        admin.save(update_fields=["password"])
        return admin

    def _table(self, measures: list[Measure], options) -> None:
        self.stdout.write(
            f"database: {connection.vendor}; reads asked once to warm up, then "
            f"{options['repeat']} times; {options['connects']} connects; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        self.stdout.write("")
        header = (
            f"{'view':<58} {'n':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
            f"{'queries':>7}  {'budget':<12} verdict"
        )
        self.stdout.write(header)
        group = None
        for m in measures:
            if m.group != group:
                group = m.group
                self.stdout.write(f"-- {group}")
            self.stdout.write(_line(m))

    def _verdict(self, measures: list[Measure], no_fail: bool) -> None:
        failed = [m for m in measures if m.failed]
        over = [m for m in measures if not m.failed and m.over_budget]
        judged = [m for m in measures if m.budget_ms is not None and not m.skipped]
        self.stdout.write("")
        self.stdout.write(
            f"{len(judged)} views judged against their budget: "
            f"{len(judged) - len(failed) - len(over)} within, {len(over)} over, "
            f"{len(failed)} failed"
        )
        for m in failed:
            self.stdout.write(f"  failed: {m.label}: {m.describe_failure()}")
        for m in over:
            self.stdout.write(
                f"  over budget: {m.label}: {m.statistic} {m.value_ms:.1f} ms > {m.budget_ms:g} ms"
            )
        problems = failed + [m for m in over if m not in failed]
        if problems and not no_fail:
            raise CommandError(f"{len(problems)} views failed or missed their budget.")


def _ms(value: float | None) -> str:
    return f"{value:7.1f}" if value is not None else f"{'':>7}"


def _line(m: Measure) -> str:
    name = m.label if len(m.label) <= 58 else m.label[:57] + "…"
    if m.skipped:
        return f"{name:<58} {'':>4} {'':>7} {'':>7} {'':>7} {'':>7} {'':>7}  {'':<12} {m.note}"
    budget = ""
    if m.budget_ms is not None:
        budget = f"{'p99' if m.statistic == 'p99' else 'median'} {m.budget_ms:g}"
    p50 = m.pct(50) if m.statistic == "p99" else (m.value_ms if m.times_ms else None)
    queries = m.query_count if m.query_count is not None else ""
    verdict = m.verdict
    if m.failed:
        verdict += f": {m.describe_failure()}"
    elif m.note and m.group == "connect":
        verdict = f"{verdict}  {m.note}".strip()
    return (
        f"{name:<58} {len(m.times_ms):>4} {_ms(p50)} {_ms(m.pct(95))} {_ms(m.pct(99))} "
        f"{_ms(max(m.times_ms) if m.times_ms else None)} {queries:>7}  {budget:<12} {verdict}"
    )
