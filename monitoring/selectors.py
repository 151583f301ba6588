"""Reads for the dashboard: one snapshot of regions, hosts, pools, boots, connects,
incidents and alerts, shaped for both the page and the websocket.

The snapshot costs the same handful of queries however many hosts, pools or
connects there are: counts and percentiles are computed by the database, and
everything per host or per pool comes from one query each."""

import math
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Count, F, Q, Window
from django.db.models.functions import Ceil, RowNumber, Substr, TruncMinute
from django.utils import timezone

from cloud.choices import HostState
from cloud.models import Host, Region
from pools.models import SchedulingPolicy
from pools.selectors import pool_summaries, pool_target

from .choices import AlertSeverity, AlertStatus, IncidentStatus
from .models import Alert, ConnectRecord, Incident

# Minutes of connects the allocation chart covers, the current one included.
ALLOCATION_WINDOW_MINUTES = 30
# The newest unclosed alerts named on the banner.
BANNER_ALERTS = 5
# A host is drawn amber from this load (percent) and red from the next one.
LOAD_WARNING = 70
LOAD_CRITICAL = 90


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _answer_kind(outcome: str) -> str:
    """'ready', 'preparing' or 'error' (any other outcome is an error code)."""
    return outcome if outcome in ("ready", "preparing") else "error"


def _latency_percentiles(records, *, partition=None) -> dict:
    """p50 and p95 (nearest rank) of `latency_ms` over `records`, per value of
    `partition` (an expression) or over all of them (key None). The database ranks
    the rows and returns only the ones at the two ranks, not every latency."""
    over = {"partition_by": [partition]} if partition is not None else {}
    ranked = records.annotate(
        rank=Window(RowNumber(), order_by=[F("latency_ms").asc(), F("pk").asc()], **over),
        size=Window(Count("pk"), **over),
    ).filter(Q(rank=Ceil(F("size") * 0.5)) | Q(rank=Ceil(F("size") * 0.95)))
    fields = ["rank", "size", "latency_ms"]
    if partition is not None:
        ranked, fields = ranked.annotate(bucket=partition), ["bucket", *fields]
    figures: dict = {}
    for row in ranked.values_list(*fields):
        key = _as_aware(row[0]) if partition is not None else None
        rank, size, latency = row[-3:]
        entry = figures.setdefault(key, {"p50_ms": None, "p95_ms": None})
        rounded = round(latency, 1)
        # With one or two rows both percentiles fall on the same rank.
        if rank == _nearest_rank(size, 0.5):
            entry["p50_ms"] = rounded
        if rank == _nearest_rank(size, 0.95):
            entry["p95_ms"] = rounded
    return figures


def _nearest_rank(size: int, share: float) -> int:
    # The same arithmetic as the query's Ceil(size * share), on the same floats.
    return max(1, math.ceil(size * share))


def allocation_figures(*, now: datetime | None = None) -> dict:
    """Thin-client connects of the last `ALLOCATION_WINDOW_MINUTES` minutes: per
    minute, the answers by kind (ready, preparing, error) and the p50/p95 latency;
    and the same for the whole window, with the answers by source (a claimed ready
    VM or the user's binding) and the error codes seen. Three queries."""
    now = now or timezone.now()
    current = now.replace(second=0, microsecond=0)
    start = current - timedelta(minutes=ALLOCATION_WINDOW_MINUTES - 1)
    records = ConnectRecord.objects.filter(at__gte=start)
    minute = _minute_of("at")

    counts = (
        records.annotate(minute=minute)
        .values("minute", "outcome", "source")
        .annotate(n=Count("pk"))
        .order_by()
    )
    per_minute_latency = _latency_percentiles(records, partition=minute)
    window_latency = _latency_percentiles(records).get(None, {"p50_ms": None, "p95_ms": None})

    minutes = {}
    for index in range(ALLOCATION_WINDOW_MINUTES):
        at = start + timedelta(minutes=index)
        minutes[at] = {"at": at.isoformat(), "ready": 0, "preparing": 0, "error": 0, "total": 0}
    totals = {"ready": 0, "preparing": 0, "error": 0, "total": 0, "claimed": 0, "binding": 0}
    errors: dict[str, int] = {}
    for row in counts:
        at = _as_aware(row["minute"])
        kind = _answer_kind(row["outcome"])
        entry = minutes.get(at)
        if entry is not None:
            entry[kind] += row["n"]
            entry["total"] += row["n"]
        totals[kind] += row["n"]
        totals["total"] += row["n"]
        if row["source"] in ("claimed", "binding"):
            totals[row["source"]] += row["n"]
        if kind == "error":
            errors[row["outcome"]] = errors.get(row["outcome"], 0) + row["n"]
    for bucket, figures in per_minute_latency.items():
        entry = minutes.get(bucket)
        if entry is not None:
            entry.update(figures)
    for entry in minutes.values():
        entry.setdefault("p50_ms", None)
        entry.setdefault("p95_ms", None)
    totals.update(window_latency)
    return {
        "window_minutes": ALLOCATION_WINDOW_MINUTES,
        "since": start.isoformat(),
        "minutes": list(minutes.values()),
        "totals": totals,
        "errors": dict(sorted(errors.items(), key=lambda item: -item[1])),
        "per_minute_peak": max((m["total"] for m in minutes.values()), default=0),
    }


def _minute_of(field: str):
    """The minute an instant falls in, as an expression. SQLite keeps datetimes as
    ISO text in UTC, so the minute is the text's first 16 characters: a native
    string function, where Django's truncation is a Python function SQLite calls
    for every row (most of the dashboard's time with tens of thousands of connects
    in the window)."""
    if connection.vendor == "sqlite":
        return Substr(field, 1, 16)
    return TruncMinute(field)


def _as_aware(moment: datetime | str) -> datetime:
    """Truncated minutes come back aware with USE_TZ (as text on SQLite, see
    `_minute_of`); aware datetimes compare and hash by instant, whatever their
    zone, so they key the minutes directly."""
    if isinstance(moment, str):
        return datetime.fromisoformat(moment).replace(tzinfo=UTC)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _host_summary(tile: dict) -> str:
    """One line of figures for the tile's tooltip."""
    parts = [f"{tile['name']} ({tile['region']})", tile["status"]]
    if tile["failed_at"]:
        parts.append(f"declared failed {tile['failed_at'][:19]}Z")
    if tile["down_since"]:
        parts.append(f"down since {tile['down_since'][:19]}Z")
    parts += [
        f"memory {tile['memory_load']}%",
        f"vCPU {tile['cpu_load']}%",
        f"{tile['vms']} VMs",
    ]
    if tile["response_ms"] is not None:
        parts.append(f"response {tile['response_ms']:.0f} ms")
    if tile["load_1m"] is not None:
        parts.append(f"load {tile['load_1m']:.2f}")
    if tile["memory_free_mb"] is not None:
        parts.append(f"{tile['memory_free_mb']} MB free")
    if tile["disk_latency_ms"] is not None:
        parts.append(f"disk {tile['disk_latency_ms']:.1f} ms")
    if tile["agent_error"]:
        parts.append(f"agent: {tile['agent_error']}")
    return " · ".join(parts)


def _host_tile(host: Host) -> dict:
    vcpus_capacity = round(host.vcpus * host.cpu_allocation_ratio)
    memory_capacity = round(host.memory_mb * host.ram_allocation_ratio)
    memory_load = round(host.memory_load * 100)
    cpu_load = round(100 * host.vcpus_used / vcpus_capacity) if vcpus_capacity else 0
    load = max(memory_load, cpu_load)
    if host.failed_at:
        status = "failed"
    elif host.state != HostState.UP:
        status = host.state
    elif load >= LOAD_CRITICAL:
        status = "critical"
    elif load >= LOAD_WARNING:
        status = "warning"
    else:
        status = "ok"
    tile = {
        "name": host.name,
        "region": host.region.name,
        "state": host.state,
        "status": status,
        "failed": host.failed_at is not None,
        "failed_at": _iso(host.failed_at),
        "down_since": _iso(host.down_since),
        "vcpus_used": host.vcpus_used,
        "vcpus_capacity": vcpus_capacity,
        "memory_mb_used": host.memory_mb_used,
        "memory_mb_capacity": memory_capacity,
        "memory_load": memory_load,
        "cpu_load": cpu_load,
        "load": load,
        "vms": host.running_vms,
        "response_ms": host.response_ms,
        "boot_failures_in_row": host.boot_failures_in_row,
        "agent": bool(host.agent_url),
        "agent_reported_at": _iso(host.agent_reported_at),
        "agent_error": host.agent_error,
        "load_1m": host.load_1m,
        "memory_free_mb": host.memory_free_mb,
        "disk_latency_ms": host.disk_latency_ms,
    }
    tile["summary"] = _host_summary(tile)
    return tile


def _banner() -> tuple[list[dict], dict]:
    """Open incidents (not closed) with their pending swaps, and unclosed alerts
    counted by severity with the newest few named. Three queries."""
    incidents = (
        Incident.objects.exclude(status=IncidentStatus.CLOSED)
        .select_related("region", "host")
        .annotate(swaps_pending=Count("swaps", filter=Q(swaps__status="pending")))
        .order_by("-opened_at")
    )
    unclosed = Alert.objects.exclude(status=AlertStatus.CLOSED)
    by_severity = {severity: 0 for severity in AlertSeverity.values}
    unacknowledged = 0
    for row in unclosed.values("severity", "status").annotate(n=Count("pk")).order_by():
        by_severity[row["severity"]] = by_severity.get(row["severity"], 0) + row["n"]
        if row["status"] == AlertStatus.OPEN:
            unacknowledged += row["n"]
    newest = unclosed.order_by("-opened_at")[:BANNER_ALERTS]
    alerts = {
        "open": sum(by_severity.values()),
        "unacknowledged": unacknowledged,
        "by_severity": by_severity,
        "url": "/alerts/",
        "newest": [
            {
                "severity": a.severity,
                "status": a.status,
                "message": a.message,
                "opened_at": _iso(a.opened_at),
                "cleared": a.cleared_at is not None,
            }
            for a in newest
        ],
    }
    return [
        {
            "id": i.pk,
            "title": i.title,
            "kind": i.kind,
            "status": i.status,
            "status_display": i.get_status_display(),
            "region": i.region.name if i.region else None,
            "host": i.host.name if i.host else None,
            "opened_at": _iso(i.opened_at),
            "recovered_at": _iso(i.recovered_at),
            "vms_affected": i.vms_affected,
            "users_affected": i.users_affected,
            "swaps_pending": i.swaps_pending,
            "url": f"/incidents/{i.pk}/",
        }
        for i in incidents
    ], alerts


def dashboard_snapshot() -> dict:
    """Everything the operators' dashboard shows, as plain JSON-ready data:

    - `regions`, `hosts` (the tiles: `status` is ok/warning/critical by load, or
      down/disabled/failed), `pools` (levels against the calendar `target`);
    - `boots`: VMs booting now against the global, per-region and per-pool caps
      (`cap` None means no cap);
    - `allocations`: connects per minute with p50/p95 latency, and window totals;
    - `incidents` (not closed) and `alerts` (unclosed, by severity) for the banner;
    - `generated_at`.
    """
    now = timezone.now()
    regions = list(
        Region.objects.annotate(
            host_count=Count("hosts", distinct=True),
            hosts_up=Count("hosts", filter=Q(hosts__state=HostState.UP), distinct=True),
            hosts_failed=Count("hosts", filter=Q(hosts__failed_at__isnull=False), distinct=True),
            pool_count=Count("pools", distinct=True),
        )
    )
    hosts = Host.objects.select_related("region")
    pools = list(pool_summaries().prefetch_related("schedules").order_by("region__name", "name"))
    policy = SchedulingPolicy.current()
    incidents, alerts = _banner()

    booting_by_region: dict[int, int] = {}
    for p in pools:
        booting_by_region[p.region_id] = booting_by_region.get(p.region_id, 0) + p.booting_count

    return {
        "generated_at": now.isoformat(),
        "regions": [
            {
                "name": r.name,
                "label": str(r),
                "driver": r.get_driver_display(),
                "enabled": r.enabled,
                "reachable": r.reachable,
                "hosts": r.host_count,
                "hosts_up": r.hosts_up,
                "hosts_failed": r.hosts_failed,
                "pools": r.pool_count,
                "booting": booting_by_region.get(r.pk, 0),
                "max_concurrent_boots": r.max_concurrent_boots,
            }
            for r in regions
        ],
        "hosts": [_host_tile(h) for h in hosts],
        "pools": [
            {
                "name": p.name,
                "label": str(p),
                "region": p.region.name,
                "feature_class": str(p.feature_class),
                "target_ready": p.target_ready,
                "target": pool_target(p, at=now),
                "min_ready": p.min_ready,
                "ready": p.ready_count,
                "booting": p.booting_count,
                "in_use": p.in_use_count,
                "error": p.error_count,
                "max_concurrent_boots": p.max_concurrent_boots,
                "short": p.ready_count < p.min_ready,
                "enabled": p.enabled,
                "paused": p.paused_at is not None,
                "pause_reason": p.pause_reason,
                "last_error": p.last_error,
            }
            for p in pools
        ],
        "boots": {
            "booting": sum(booting_by_region.values()),
            "cap": policy.max_concurrent_boots,
            "regions": [
                {
                    "name": r.name,
                    "label": str(r),
                    "booting": booting_by_region.get(r.pk, 0),
                    "cap": r.max_concurrent_boots,
                }
                for r in regions
            ],
            "pools": [
                {
                    "name": p.name,
                    "label": str(p),
                    "region": p.region.name,
                    "booting": p.booting_count,
                    "cap": p.max_concurrent_boots,
                }
                for p in pools
            ],
        },
        "allocations": allocation_figures(now=now),
        "incidents": incidents,
        "alerts": alerts,
    }
