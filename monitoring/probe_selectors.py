"""Reads of the login probe's results: the summary the probe page and the
dashboard show, the points of its latency chart and the latest results."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from portal.stats import percentile

from .models import ProbeResult
from .probe import probe_enabled

# A last result older than this many probe intervals means the probe is not
# running (beat or the worker is down), which is itself worth telling operators.
STALE_AFTER_INTERVALS = 3


def _result_dict(result: ProbeResult | None) -> dict | None:
    if result is None:
        return None
    return {
        "at": result.at,
        "ok": result.ok,
        "status_code": result.status_code,
        "outcome": result.outcome,
        "latency_ms": result.latency_ms,
        "vm_name": result.vm_name,
        "detail": result.detail,
    }


def probe_points(hours: int = 24) -> list[dict]:
    """Every result of the last `hours` hours, oldest first: at, ok, status_code
    (None when no HTTP answer came back), outcome, latency_ms, detail."""
    since = timezone.now() - timedelta(hours=hours)
    return list(
        ProbeResult.objects.filter(at__gte=since)
        .order_by("at", "pk")
        .values("at", "ok", "status_code", "outcome", "latency_ms", "detail")
    )


def probe_results_recent(limit: int = 50) -> list[ProbeResult]:
    """The latest results, newest first."""
    return list(ProbeResult.objects.order_by("-at", "-pk")[:limit])


def probe_summary(hours: int = 24) -> dict:
    """How the login probe did over the last `hours` hours: the last result and
    the last failure (as plain dicts, or None), how many runs and how many
    succeeded, the success rate in percent (None without runs), the p50 and p95
    latency of the successful logins in milliseconds, and the runs per hour
    (oldest hour first, empty hours included: a gap means the probe did not run;
    the oldest hour is only partly in the window).
    `stale` is true when the probe is configured but has not reported for a few
    intervals."""
    now = timezone.now()
    points = probe_points(hours)
    total = len(points)
    succeeded = sum(1 for point in points if point["ok"])
    latencies = sorted(
        point["latency_ms"] for point in points if point["ok"] and point["latency_ms"] is not None
    )
    last = ProbeResult.objects.order_by("-at", "-pk").first()
    last_failure = ProbeResult.objects.filter(ok=False).order_by("-at", "-pk").first()
    stale_after = timedelta(seconds=settings.PROBE_INTERVAL * STALE_AFTER_INTERVALS)
    return {
        "hours": hours,
        "enabled": probe_enabled(),
        "stale": probe_enabled() and (last is None or now - last.at > stale_after),
        "last": _result_dict(last),
        "last_failure": _result_dict(last_failure),
        "total": total,
        "ok": succeeded,
        "failed": total - succeeded,
        "success_rate": round(100 * succeeded / total, 1) if total else None,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "per_hour": _per_hour(points, now=now, hours=hours),
    }


def _per_hour(points: list[dict], *, now: datetime, hours: int) -> list[dict]:
    # Hours are cut in UTC (pages show them in local time): a window of `hours`
    # hours touches `hours + 1` clock hours, the oldest one in part.
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    starts = [current - timedelta(hours=back) for back in range(hours, -1, -1)]
    buckets = {start: {"hour": start, "total": 0, "ok": 0, "failed": 0} for start in starts}
    for point in points:
        start = point["at"].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        bucket = buckets.get(start, buckets[starts[0]])
        bucket["total"] += 1
        bucket["ok" if point["ok"] else "failed"] += 1
    return list(buckets.values())
