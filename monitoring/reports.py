"""Reports for operators and managers: how connects were answered, how long boots
and swaps take, and how desktops are used. Each selector takes a half-open time
range [`since`, `until`) of aware datetimes and returns a `Report`: rows (one dict
each, keyed by the report's columns) and totals over the whole range.

Counts are aggregated by the database; percentiles are computed here over the
range's values (nearest-rank: the p-th percentile is the smallest value with at
least p% of the values at or below it, so it is always a value that was observed).
Days and hours are those of the portal's `TIME_ZONE`. Every selector runs a fixed
number of queries, however many pools or sites there are."""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from allocation.models import DesktopSession, VMSwap
from pools.choices import VMState
from pools.models import VM
from pools.services.boots import REQUEST_TIMEOUT
from portal.stats import percentile

from .models import ConnectRecord

READY = "ready"
PREPARING = "preparing"
# Up to this long a range is shown hour by hour; longer ones day by day.
HOURLY_UP_TO = timedelta(days=2)
# The key shown for rows whose pool or site is not known (a connect refused before
# an allocator chose a pool, a terminal at no site).
NONE_KEY = "(none)"


@dataclass
class Report:
    """One report over a range: `columns` are (key, heading) pairs in table order,
    `rows` are dicts with those keys, `totals` the figures over the whole range."""

    name: str
    title: str
    columns: list[tuple[str, str]]
    rows: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _duration_figures(seconds: Sequence[float], *, median: bool = True) -> dict:
    figures = {"mean_s": _rounded(_mean(seconds))}
    if median:
        figures["p50_s"] = _rounded(percentile(seconds, 50))
    figures["p95_s"] = _rounded(percentile(seconds, 95))
    figures["max_s"] = _rounded(max(seconds) if seconds else None)
    return figures


# --- Allocations -----------------------------------------------------------------


def _connect_counts() -> dict:
    """How each connect was answered, as conditional counts (errors are every
    outcome that is neither ready nor preparing)."""
    return {
        "connects": Count("pk"),
        "hits": Count("pk", filter=Q(outcome=READY, source=ConnectRecord.Source.CLAIMED)),
        "bindings": Count("pk", filter=Q(outcome=READY, source=ConnectRecord.Source.BINDING)),
        "misses": Count("pk", filter=Q(outcome=PREPARING)),
        "errors": Count("pk", filter=~Q(outcome__in=[READY, PREPARING])),
    }


def _waits(records) -> dict:
    """Users who had to wait. A wait starts at a user's first 'preparing' answer
    (later 'preparing' answers and errors while waiting do not restart it) and ends
    at that user's next 'ready' answer, from any pool or terminal. Counted: the
    distinct users with at least one finished wait in the range, the number of
    waits and their mean length; a wait with no 'ready' answer before the range's
    end (the user gave up, or is still waiting) is not in the mean, and its user is
    counted as unserved."""
    records = records.exclude(username="").filter(outcome__in=[READY, PREPARING])
    waiting_users = records.filter(outcome=PREPARING).values("username")
    rows = (
        records.filter(username__in=waiting_users)
        .order_by("username", "at", "pk")
        .values_list("username", "at", "outcome")
    )
    waits: list[float] = []
    served: set[str] = set()
    waiting_since: dict[str, datetime] = {}
    for username, at, outcome in rows:
        if outcome == PREPARING:
            waiting_since.setdefault(username, at)
        elif username in waiting_since:
            waits.append((at - waiting_since.pop(username)).total_seconds())
            served.add(username)
    return {
        "users_waited": len(served),
        "waits": len(waits),
        "mean_wait_s": _rounded(_mean(waits)),
        "users_unserved": len(waiting_since),
    }


def report_allocations(*, since: datetime, until: datetime) -> Report:
    """Connects per pool and per day (per hour when the range is two days or
    less): how many were answered at once from a ready VM (a hit), from the user's
    existing binding, with 'preparing' (a miss: the user waited) or with an error;
    the hit ratio hits / (hits + misses); the p50 and p95 latency of the ready
    answers; and, in the totals, the users who waited (see `_waits`) and each
    pool's hit ratio."""
    tz = timezone.get_default_timezone()
    hourly = until - since <= HOURLY_UP_TO
    trunc = TruncHour if hourly else TruncDay
    label_format = "%Y-%m-%d %H:00" if hourly else "%Y-%m-%d"
    in_range = ConnectRecord.objects.filter(at__gte=since, at__lt=until)
    bucketed = in_range.annotate(period=trunc("at", tzinfo=tz)).order_by()

    counted = bucketed.values("pool__name", "period").annotate(**_connect_counts())
    latencies: dict[tuple, list[float]] = defaultdict(list)
    all_latencies: list[float] = []
    for pool_name, period, latency in bucketed.filter(outcome=READY).values_list(
        "pool__name", "period", "latency_ms"
    ):
        latencies[(pool_name, period)].append(latency)
        all_latencies.append(latency)

    rows = []
    per_pool: dict[str, dict] = defaultdict(lambda: {"hits": 0, "misses": 0})
    for group in sorted(counted, key=lambda g: (g["pool__name"] or "", g["period"])):
        pool = group["pool__name"] or NONE_KEY
        values = latencies.get((group["pool__name"], group["period"]), [])
        rows.append(
            {
                "pool": pool,
                "period": group["period"].astimezone(tz).strftime(label_format),
                **{key: group[key] for key in _connect_counts()},
                "hit_ratio": _ratio(group["hits"], group["hits"] + group["misses"]),
                "latency_p50_ms": _rounded(percentile(values, 50)),
                "latency_p95_ms": _rounded(percentile(values, 95)),
            }
        )
        if group["pool__name"]:
            per_pool[pool]["hits"] += group["hits"]
            per_pool[pool]["misses"] += group["misses"]

    totals = {key: sum(row[key] for row in rows) for key in _connect_counts()}
    totals["hit_ratio"] = _ratio(totals["hits"], totals["hits"] + totals["misses"])
    totals["latency_p50_ms"] = _rounded(percentile(all_latencies, 50))
    totals["latency_p95_ms"] = _rounded(percentile(all_latencies, 95))
    totals.update(_waits(in_range))
    totals["by_pool"] = [
        {"pool": pool, **counts, "hit_ratio": _ratio(counts["hits"], sum(counts.values()))}
        for pool, counts in sorted(per_pool.items())
    ]
    return Report(
        name="allocations",
        title="Allocations",
        columns=[
            ("pool", "Pool"),
            ("period", "Hour" if hourly else "Day"),
            ("connects", "Connects"),
            ("hits", "Ready VM (hit)"),
            ("bindings", "Bound VM"),
            ("misses", "Preparing (miss)"),
            ("errors", "Errors"),
            ("hit_ratio", "Hit ratio"),
            ("latency_p50_ms", "Latency p50 (ms)"),
            ("latency_p95_ms", "Latency p95 (ms)"),
        ],
        rows=rows,
        totals=totals,
    )


# --- Boots -----------------------------------------------------------------------


def _boot_seconds(
    requested_at: datetime, boot_started_at, ready_at: datetime
) -> tuple[float, bool]:
    """How long a VM took to become ready, and whether that was a rebuild. A VM
    keeps the `requested_at` of its first boot; when it is recycled (after use, or
    for a new image) its rebuild starts long after that, so the rebuild is measured
    from its own start. A first boot always starts within `REQUEST_TIMEOUT` of the
    request (the poller fails it otherwise), which is how the two are told apart."""
    if boot_started_at is not None and boot_started_at - requested_at > REQUEST_TIMEOUT:
        return (ready_at - boot_started_at).total_seconds(), True
    return (ready_at - requested_at).total_seconds(), False


def report_boot_times(*, since: datetime, until: datetime) -> Report:
    """Per pool: the boots that finished in the range (`ready_at` in it), of which
    rebuilds of recycled VMs, the mean, p50, p95 and longest time from request to
    ready (see `_boot_seconds`), and the VMs that failed (in `error`, last changed
    in the range)."""
    finished = VM.objects.filter(ready_at__gte=since, ready_at__lt=until).values_list(
        "pool__name", "requested_at", "boot_started_at", "ready_at"
    )
    seconds: dict[str, list[float]] = defaultdict(list)
    rebuilds: dict[str, int] = defaultdict(int)
    for pool, requested_at, boot_started_at, ready_at in finished:
        took, rebuilt = _boot_seconds(requested_at, boot_started_at, ready_at)
        seconds[pool].append(took)
        rebuilds[pool] += rebuilt
    failures = dict(
        VM.objects.filter(state=VMState.ERROR, updated_at__gte=since, updated_at__lt=until)
        .order_by()
        .values("pool__name")
        .annotate(n=Count("pk"))
        .values_list("pool__name", "n")
    )

    rows = [
        {
            "pool": pool,
            "boots": len(seconds[pool]),
            "rebuilds": rebuilds[pool],
            **_duration_figures(seconds[pool]),
            "failures": failures.get(pool, 0),
        }
        for pool in sorted(set(seconds) | set(failures))
    ]
    every = [s for values in seconds.values() for s in values]
    totals = {
        "boots": len(every),
        "rebuilds": sum(rebuilds.values()),
        **_duration_figures(every),
        "failures": sum(failures.values()),
    }
    return Report(
        name="boots",
        title="Boot times",
        columns=[
            ("pool", "Pool"),
            ("boots", "Boots finished"),
            ("rebuilds", "of which rebuilds"),
            ("mean_s", "Mean (s)"),
            ("p50_s", "p50 (s)"),
            ("p95_s", "p95 (s)"),
            ("max_s", "Max (s)"),
            ("failures", "Failed"),
        ],
        rows=rows,
        totals=totals,
    )


# --- Swaps -----------------------------------------------------------------------

HELP_DESK = "help desk"
HOST_FAILURE = "host failure"


def report_swap_times(*, since: datetime, until: datetime) -> Report:
    """Per pool and cause (the help desk, or the recovery from a host failure,
    which links the swap to its incident): the swaps requested in the range, how
    many of them are done, still pending or failed, and the mean, p95 and longest
    time from request to completion of the done ones."""
    requested = VMSwap.objects.filter(requested_at__gte=since, requested_at__lt=until).order_by()
    counts = (
        requested.annotate(
            by_host_failure=ExpressionWrapper(
                Q(incident__isnull=False), output_field=BooleanField()
            )
        )
        .values("pool__name", "by_host_failure")
        .annotate(
            swaps=Count("pk"),
            done=Count("pk", filter=Q(status=VMSwap.Status.DONE)),
            pending=Count("pk", filter=Q(status=VMSwap.Status.PENDING)),
            failed=Count("pk", filter=Q(status=VMSwap.Status.FAILED)),
        )
    )
    seconds: dict[tuple, list[float]] = defaultdict(list)
    for pool, incident_id, requested_at, completed_at in requested.filter(
        status=VMSwap.Status.DONE, completed_at__isnull=False
    ).values_list("pool__name", "incident_id", "requested_at", "completed_at"):
        cause = HOST_FAILURE if incident_id else HELP_DESK
        seconds[(pool, cause)].append((completed_at - requested_at).total_seconds())

    rows = []
    for group in counts:
        cause = HOST_FAILURE if group["by_host_failure"] else HELP_DESK
        rows.append(
            {
                "pool": group["pool__name"],
                "cause": cause,
                **{k: group[k] for k in ("swaps", "done", "pending", "failed")},
                **_duration_figures(seconds[(group["pool__name"], cause)], median=False),
            }
        )
    rows.sort(key=lambda row: (row["pool"], row["cause"]))
    every = [s for values in seconds.values() for s in values]
    totals = {k: sum(row[k] for row in rows) for k in ("swaps", "done", "pending", "failed")}
    totals.update(_duration_figures(every, median=False))
    return Report(
        name="swaps",
        title="Swap times",
        columns=[
            ("pool", "Pool"),
            ("cause", "Cause"),
            ("swaps", "Swaps"),
            ("done", "Done"),
            ("pending", "Pending"),
            ("failed", "Failed"),
            ("mean_s", "Mean (s)"),
            ("p95_s", "p95 (s)"),
            ("max_s", "Max (s)"),
        ],
        rows=rows,
        totals=totals,
    )


# --- Usage -----------------------------------------------------------------------


def _split_by_local_hour(start: datetime, end: datetime, tz) -> list[tuple[int, float]]:
    """The seconds of [start, end) that fall in each hour of the day on the local
    clock, walking local hour boundaries (so half-hour zones and daylight-saving
    changes are counted right)."""
    parts = []
    moment = start
    while moment < end:
        local = moment.astimezone(tz)
        top = local.replace(minute=0, second=0, microsecond=0, tzinfo=None)
        boundary = (top + timedelta(hours=1)).replace(tzinfo=tz)
        if boundary <= moment:  # a wall-clock hour repeated when clocks go back
            boundary = moment + timedelta(hours=1)
        step_end = min(boundary, end)
        parts.append((local.hour, (step_end - moment).total_seconds()))
        moment = step_end
    return parts


def report_usage(*, since: datetime, until: datetime) -> Report:
    """Desktop sessions and desktop-hours per site (the terminal's), per pool (the
    VM's) and per hour of the day (0-23, local time). A session counts when it
    overlaps the range, and only its part inside the range counts in hours; a
    session still open counts up to the range's end (or up to now, when the range
    ends in the future). By hour of the day, a session is counted in the hour it
    started (or the range's first hour, for one that started before), and its
    hours in each hour they cover.

    The clipping and the spreading over hours are done here, over one query of the
    overlapping sessions' start and end."""
    tz = timezone.get_default_timezone()
    end_cap = min(until, timezone.now())
    sessions = (
        DesktopSession.objects.filter(started_at__lt=until)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=since))
        .order_by()
        .values_list("terminal__site__name", "vm__pool__name", "started_at", "ended_at")
    )
    tallies: dict[tuple[str, object], list] = defaultdict(lambda: [0, 0.0])

    def add(by: str, key, count: int, seconds: float) -> None:
        tally = tallies[(by, key)]
        tally[0] += count
        tally[1] += seconds

    total_sessions, total_seconds = 0, 0.0
    for site, pool, started_at, ended_at in sessions:
        start = max(started_at, since)
        end = min(ended_at or end_cap, until)
        seconds = max((end - start).total_seconds(), 0.0)
        total_sessions += 1
        total_seconds += seconds
        add("site", site or NONE_KEY, 1, seconds)
        add("pool", pool or NONE_KEY, 1, seconds)
        add("hour", start.astimezone(tz).hour, 1, 0.0)
        for hour, part in _split_by_local_hour(start, end, tz):
            add("hour", hour, 0, part)

    def row(by: str, key) -> dict:
        count, seconds = tallies.get((by, key), (0, 0.0))
        return {"by": by, "key": key, "sessions": count, "desktop_hours": round(seconds / 3600, 2)}

    def keys_of(by: str) -> list:
        return sorted(key for kind, key in tallies if kind == by)

    rows = [row("site", key) for key in keys_of("site")]
    rows += [row("pool", key) for key in keys_of("pool")]
    rows += [row("hour", hour) for hour in range(24)]
    return Report(
        name="usage",
        title="Usage",
        columns=[
            ("by", "By"),
            ("key", "Site, pool or hour"),
            ("sessions", "Sessions"),
            ("desktop_hours", "Desktop-hours"),
        ],
        rows=rows,
        totals={"sessions": total_sessions, "desktop_hours": round(total_seconds / 3600, 2)},
    )


# The reports by name, as the page and the CSV export know them.
REPORTS: dict[str, Callable[..., Report]] = {
    "allocations": report_allocations,
    "boots": report_boot_times,
    "swaps": report_swap_times,
    "usage": report_usage,
}
