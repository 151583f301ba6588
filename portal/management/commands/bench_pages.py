"""Benchmark: how fast the staff list pages answer with a large cloud in the
database (by default 10,000 VMs, 200 hosts and 20,000 terminals), and how many
SQL queries each costs.

It builds the world (`portal.scale`), signs in an administrator and asks
every page through Django's test client, in process, so the figures are the
server's own time (middleware, view, queries, template) without a network or a
web server. Each view of a page is asked once to warm up and then `--repeat`
times; the table gives the median and the slowest. Besides the plain page, each
list is asked with a search, with the slowest of its filters and of its sort
orders (each tried once), on its last page and with 200 rows a page, all found
from the links and the filter form the page itself shows.

A page that answers with an error (a status of 400 or more, or an exception)
makes the command fail. Run it through `scripts/bench.sh pages`, which gives it a
throwaway database."""

import logging
import statistics
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cloud.models import Region
from portal.scale import WorldSize, build_world, table_rows

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
OTHER_PAGES = ["/", "/helpdesk/?q=user1"]
CSV_EXPORT = "/vms/?format=csv"
# The world's sizes that options set (`--audit-events` for `audit_events`); the
# others follow them (`WorldSize.fitted`).
SIZE_OPTIONS = (
    "vms", "hosts", "terminals", "regions", "pools", "users", "allocators",
    "bindings", "audit_events", "alerts", "incidents", "tasks", "runs",
)  # fmt: skip
BIG_PAGE = 200


class _PageControls(HTMLParser):
    """What a list page offers to change its view: the filter form's drop-downs,
    whether it has a search box, its sort links and its last-page link."""

    def __init__(self):
        super().__init__()
        self.has_search = False
        self.selects: list[tuple[str, list[str]]] = []
        self.sort_links: list[str] = []
        self.last_page = ""
        self._in_filters = False
        self._in_pager = False
        self._select: tuple[str, list[str]] | None = None
        self._anchor: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "form" and "filters" in classes:
            self._in_filters = True
        elif tag == "nav" and "pager" in classes:
            self._in_pager = True
        elif self._in_filters and tag == "input" and attrs.get("name") == "q":
            self.has_search = True
        elif self._in_filters and tag == "select" and attrs.get("name"):
            self._select = (attrs["name"], [])
        elif self._select is not None and tag == "option" and attrs.get("value"):
            self._select[1].append(attrs["value"])
        elif tag == "a" and attrs.get("href"):
            if "sort" in classes:
                self.sort_links.append(attrs["href"])
            self._anchor = {"href": attrs["href"], "text": ""}

    def handle_data(self, data):
        if self._anchor is not None:
            self._anchor["text"] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_filters = False
        elif tag == "nav":
            self._in_pager = False
        elif tag == "select" and self._select is not None:
            self.selects.append(self._select)
            self._select = None
        elif tag == "a" and self._anchor is not None:
            if self._in_pager and self._anchor["text"].strip().startswith("Last"):
                self.last_page = self._anchor["href"]
            self._anchor = None


def with_params(url: str, **params) -> str:
    """The URL with these query parameters set (an existing one is replaced)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update({k: str(v) for k, v in params.items()})
    return f"{parts.path}?{urlencode(query)}"


@dataclass
class Measure:
    """One view of a page: what was asked, how it answered, and its figures."""

    label: str
    url: str
    status: int | None = None
    error: str = ""
    times_ms: list[float] = field(default_factory=list)
    queries: int | None = None
    rows: int | None = None
    note: str = ""
    # Not asked: the page offers no such view (no search box, a single page).
    skipped: bool = False

    @property
    def failed(self) -> bool:
        if self.skipped:
            return False
        return bool(self.error) or self.status is None or self.status >= 400

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms) if self.times_ms else 0.0

    @property
    def max_ms(self) -> float:
        return max(self.times_ms) if self.times_ms else 0.0


class Command(BaseCommand):
    help = "Time every staff list page against a large world; print median, max, queries, rows."

    def add_arguments(self, parser):
        defaults = WorldSize()
        for name in SIZE_OPTIONS:
            parser.add_argument(
                f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name)
            )
        parser.add_argument("--repeat", type=int, default=10, help="Timed requests per view.")
        parser.add_argument("--search", default="17", help="What the search views look for.")
        parser.add_argument("--budget-ms", type=float, default=300.0)
        parser.add_argument(
            "--tries",
            type=int,
            default=40,
            help="Most filter values tried once per page to find the slowest.",
        )
        parser.add_argument(
            "--reuse-world",
            action="store_true",
            help="Measure the world an earlier run left in this database instead of building one.",
        )
        parser.add_argument("--pages", nargs="*", help="Only these pages (paths).")

    def handle(self, *args, **options):
        if options["repeat"] < 1:
            raise CommandError("--repeat must be at least 1.")
        self.repeat = options["repeat"]
        self.search = options["search"]
        self.budget = options["budget_ms"]
        self.tries = options["tries"]
        self._world(options)
        if connection.vendor == "postgresql":
            # Fresh tables have no planner statistics until autovacuum gets to them;
            # a database in service has.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        self.client = self._staff_client()
        self.secure = bool(getattr(settings, "SECURE_SSL_REDIRECT", False))

        wanted = options["pages"]
        list_pages = [p for p in LIST_PAGES if not wanted or p in wanted]
        other_pages = [p for p in OTHER_PAGES if not wanted or p in wanted]
        self._header()
        # A missing page is reported in the table; its warning line would only
        # interleave with it.
        request_log = logging.getLogger("django.request")
        level = request_log.level
        request_log.setLevel(logging.ERROR)
        measures: list[Measure] = []
        try:
            for page in list_pages:
                measures += self._list_page(page)
            for page in other_pages:
                measures.append(self._measure("page", page))
                self._print(measures[-1])
            wants_csv = not wanted or CSV_EXPORT.split("?")[0] in wanted
            csv_measure = self._csv() if wants_csv else None
        finally:
            request_log.setLevel(level)
        self._summary(measures, csv_measure)

    # -- setting up -----------------------------------------------------------------

    def _world(self, options) -> None:
        size = WorldSize(**{name: options[name] for name in SIZE_OPTIONS}).fitted()
        exists = Region.objects.filter(name="bench-r000").exists()
        if options["reuse_world"]:
            if not exists:
                raise CommandError("There is no benchmark world in this database to reuse.")
            self.stdout.write("world: the one already in the database")
            return
        if exists:
            raise CommandError(
                "This database already holds a benchmark world: use a fresh one, "
                "or --reuse-world to measure it again."
            )
        problems = size.problems()
        if problems:
            raise CommandError("; ".join(problems))
        started = time.monotonic()
        counts = build_world(size, prefix="bench")
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"world built in {elapsed:.1f} s: "
            + ", ".join(f"{count:,} {name}" for name, count in counts.items())
        )

    def _staff_client(self) -> Client:
        User = get_user_model()
        admin, _ = User.objects.get_or_create(
            username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
        )
        allowed = [h for h in settings.ALLOWED_HOSTS if h != "*"]
        host = allowed[0].lstrip(".") if allowed else "testserver"
        client = Client(HTTP_HOST=host)
        client.force_login(admin)
        return client

    def _header(self) -> None:
        vendor = connection.vendor
        if settings.DEBUG:
            self.stdout.write(
                "note: DEBUG is on, so every query is also logged in memory and "
                "templates render in debug mode; set DJANGO_DEBUG=false for production figures."
            )
        self.stdout.write(
            f"database: {vendor}; each view asked once to warm up, then {self.repeat} times; "
            f"budget {self.budget:.0f} ms"
        )
        self.stdout.write("")
        self.stdout.write(
            f"{'page':<58} {'median ms':>9} {'max ms':>8} {'queries':>7} {'rows':>6}  note"
        )

    # -- asking ---------------------------------------------------------------------

    def _get(self, url: str):
        return self.client.get(url, secure=self.secure)

    def _once(self, url: str) -> tuple[int | None, float, str, str]:
        """One request: its status, milliseconds, body and error (if it raised)."""
        started = time.perf_counter()
        try:
            response = self._get(url)
            body = b"".join(response.streaming_content) if response.streaming else response.content
        except Exception as exc:  # a crashing view is a finding, not the end of the run
            return None, 0.0, "", f"{type(exc).__name__}: {exc}"[:200]
        elapsed = (time.perf_counter() - started) * 1000
        return response.status_code, elapsed, body.decode("utf-8", "replace"), ""

    def _measure(self, label: str, url: str) -> Measure:
        measure = Measure(label, url)
        status, _, body, error = self._once(url)  # warm-up
        measure.status, measure.error = status, error
        if measure.failed:
            if status == 404:
                measure.note = "missing (404)"
            return measure
        for _ in range(self.repeat):
            status, elapsed, body, error = self._once(url)
            if error or status is None or status >= 400:
                measure.status, measure.error = status, error
                return measure
            measure.times_ms.append(elapsed)
        measure.rows = table_rows(body)
        with CaptureQueriesContext(connection) as queries:
            self._once(url)
        measure.queries = len(queries)
        if status != 200:
            measure.note = f"status {status}"
        elif measure.median_ms > self.budget:
            measure.note = f"OVER {self.budget:.0f} ms"
        elif measure.max_ms > self.budget:
            measure.note = f"max over {self.budget:.0f} ms"
        return measure

    def _slowest(self, urls: list[str]) -> tuple[str, int]:
        """Of these views, the one that answered slowest when each was asked once
        (a failing one counts as slowest, so the table shows it)."""
        worst, worst_ms = "", -1.0
        for url in urls:
            status, elapsed, _, error = self._once(url)
            if error or status is None or status >= 400:
                return url, len(urls)
            if elapsed > worst_ms:
                worst, worst_ms = url, elapsed
        return worst, len(urls)

    def _list_page(self, page: str) -> list[Measure]:
        plain = self._measure("page", page)
        self._print(plain)
        if plain.failed:
            return [plain]
        _, _, body, _ = self._once(page)
        controls = _PageControls()
        controls.feed(body)
        measures = [plain]

        def add(measure: Measure) -> None:
            measures.append(measure)
            self._print(measure)

        if controls.has_search:
            add(self._measure("search", with_params(page, q=self.search)))
        else:
            add(self._missing("search", page, "no search box"))
        filters = [
            with_params(page, **{name: value})
            for name, values in controls.selects
            if name not in ("per_page", "sort")
            for value in values
        ][: self.tries]
        if filters:
            url, tried = self._slowest(filters)
            add(self._with_note(self._measure("filter", url), f"slowest of {tried}"))
        else:
            add(self._missing("filter", page, "no filters"))
        if controls.sort_links:
            url, tried = self._slowest(list(dict.fromkeys(controls.sort_links)))
            add(self._with_note(self._measure("sort", url), f"slowest of {tried}"))
        else:
            add(self._missing("sort", page, "no sort links"))
        if controls.last_page:
            add(self._measure("last page", controls.last_page))
        else:
            add(self._missing("last page", page, "one page only"))
        big = self._measure("200 a page", with_params(page, per_page=BIG_PAGE))
        small = self._measure_queries(with_params(page, per_page=25))
        if big.queries is not None and small is not None and big.queries != small:
            big.note = (big.note + "; " if big.note else "") + (
                f"QUERIES GROW: {small} at 25 a page, {big.queries} at {BIG_PAGE}"
            )
        add(big)
        return measures

    def _measure_queries(self, url: str) -> int | None:
        with CaptureQueriesContext(connection) as queries:
            status, _, _, error = self._once(url)
        return None if error or status is None or status >= 400 else len(queries)

    @staticmethod
    def _missing(label: str, page: str, why: str) -> Measure:
        return Measure(label, page, note=f"n/a ({why})", skipped=True)

    @staticmethod
    def _with_note(measure: Measure, note: str) -> Measure:
        measure.note = f"{note}; {measure.note}" if measure.note else note
        return measure

    def _csv(self) -> Measure:
        measure = Measure("csv", CSV_EXPORT)
        with CaptureQueriesContext(connection) as queries:
            status, elapsed, body, error = self._once(CSV_EXPORT)
        measure.status, measure.error = status, error
        if not measure.failed:
            measure.times_ms = [elapsed]
            measure.queries = len(queries)
            measure.rows = max(0, body.count("\n") - 1)
            measure.note = f"{len(body.encode()) / 1e6:.1f} MB streamed"
        elif status == 404:
            measure.note = "missing (404)"
        return measure

    # -- reporting ------------------------------------------------------------------

    def _print(self, measure: Measure) -> None:
        name = measure.url if measure.label == "page" else f"  {measure.label}: {measure.url}"
        if len(name) > 58:
            name = name[:57] + "…"
        if measure.skipped:
            self.stdout.write(f"{name:<58} {'':>9} {'':>8} {'':>7} {'':>6}  {measure.note}")
            return
        if measure.failed:
            why = measure.note or measure.error or f"status {measure.status}"
            self.stdout.write(f"{name:<58} {'':>9} {'':>8} {'':>7} {'':>6}  FAILED: {why}")
            return
        self.stdout.write(
            f"{name:<58} {measure.median_ms:>9.1f} {measure.max_ms:>8.1f} "
            f"{measure.queries if measure.queries is not None else '':>7} "
            f"{measure.rows if measure.rows is not None else '':>6}  {measure.note}"
        )

    def _summary(self, measures: list[Measure], csv_measure: Measure | None) -> None:
        if csv_measure is not None:
            self.stdout.write("")
            if csv_measure.failed:
                why = csv_measure.note or csv_measure.error or f"status {csv_measure.status}"
                self.stdout.write(f"CSV export {CSV_EXPORT}: FAILED: {why}")
            else:
                self.stdout.write(
                    f"CSV export {CSV_EXPORT}: {csv_measure.rows:,} rows, "
                    f"{csv_measure.note}, in {csv_measure.max_ms:.0f} ms, "
                    f"{csv_measure.queries} queries"
                )
        real = [m for m in measures if not m.skipped]
        failed = [m for m in real if m.failed]
        slow = [m for m in real if not m.failed and m.median_ms > self.budget]
        growing = [m for m in real if "QUERIES GROW" in m.note]
        self.stdout.write("")
        self.stdout.write(
            f"{len(real)} views measured; over {self.budget:.0f} ms (median): {len(slow)}; "
            f"queries growing with the page size: {len(growing)}; failed: {len(failed)}"
        )
        for measure in slow:
            self.stdout.write(f"  slow: {measure.url} ({measure.median_ms:.0f} ms)")
        for measure in growing:
            self.stdout.write(f"  queries grow: {measure.url}")
        failures = failed + ([csv_measure] if csv_measure and csv_measure.failed else [])
        if failures:
            raise CommandError(
                "These pages failed: "
                + ", ".join(f"{m.url} ({m.note or m.error or m.status})" for m in failures)
            )
