"""Prometheus metrics. Figures that live in the database (pool levels, VM states,
boots in flight and their recent outcomes, hosts, open sessions, pending swaps,
incidents, alerts, the login probe, recent allocations) and the Celery backlog in
the broker are read at each scrape by a collector, so every web process reports
the same truth. Figures of the connect call itself (answers and latency) are
counted in the process that served it; with several web processes, set
`PROMETHEUS_MULTIPROC_DIR` so prometheus_client sums them across processes."""

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

CONNECTS = Counter(
    "deskops_connects",
    "Thin-client connect answers, by outcome (ready, preparing or an error code).",
    ["outcome"],
)
CONNECT_SECONDS = Histogram(
    "deskops_connect_seconds",
    "Time to answer a thin-client connect.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BOOT_WINDOW = timedelta(minutes=15)
ALLOCATION_WINDOW = timedelta(minutes=5)


class DatabaseCollector:
    """Reads the cloud's state from the database at each scrape."""

    def collect(self):
        from allocation.models import DesktopSession, VMSwap
        from cloud.models import Host
        from pools.choices import BOOTING_STATES
        from pools.models import VM, SchedulingPolicy, VMPool
        from pools.selectors import pool_target

        vms = GaugeMetricFamily("deskops_vms", "VMs by pool and state.", labels=["pool", "state"])
        for row in VM.objects.values("pool__name", "state").annotate(n=Count("id")):
            vms.add_metric([row["pool__name"], row["state"]], row["n"])
        yield vms

        targets = GaugeMetricFamily(
            "deskops_pool_target_ready", "Ready VMs each pool should hold now.", labels=["pool"]
        )
        paused = GaugeMetricFamily(
            "deskops_pool_paused", "1 when a pool's refills are paused.", labels=["pool"]
        )
        for pool in VMPool.objects.prefetch_related("schedules"):
            targets.add_metric([pool.name], pool_target(pool))
            paused.add_metric([pool.name], 1 if pool.paused_at else 0)
        yield targets
        yield paused

        booting = GaugeMetricFamily(
            "deskops_boots_in_flight", "VMs booting now, by region.", labels=["region"]
        )
        for row in (
            VM.objects.filter(state__in=BOOTING_STATES)
            .values("pool__region__name")
            .annotate(n=Count("id"))
        ):
            booting.add_metric([row["pool__region__name"]], row["n"])
        yield booting
        policy = SchedulingPolicy.current()
        yield GaugeMetricFamily(
            "deskops_boot_cap",
            "The global cap on concurrent boots.",
            value=policy.max_concurrent_boots,
        )

        hosts = GaugeMetricFamily(
            "deskops_hosts", "Hosts by region and state.", labels=["region", "state"]
        )
        for row in Host.objects.values("region__name", "state").annotate(n=Count("id")):
            hosts.add_metric([row["region__name"], row["state"]], row["n"])
        yield hosts

        yield GaugeMetricFamily(
            "deskops_sessions_open",
            "Desktop sessions not ended.",
            value=DesktopSession.objects.filter(ended_at__isnull=True).count(),
        )
        yield GaugeMetricFamily(
            "deskops_swaps_pending",
            "Help-desk swaps waiting for a ready VM.",
            value=VMSwap.objects.filter(status=VMSwap.Status.PENDING).count(),
        )
        yield from _boot_outcomes()
        yield from _failures_and_alerts()
        yield from _probe_and_allocations()
        yield from _celery_queues()


def _boot_outcomes():
    """Boots that failed and boots that finished (the VM became ready) in the last
    15 minutes, per pool; every pool is listed, with 0 when quiet."""
    from pools.choices import VMState
    from pools.models import VM, VMPool

    since = timezone.now() - BOOT_WINDOW
    pools = list(VMPool.objects.values_list("name", flat=True))
    failed = dict(
        VM.objects.filter(state=VMState.ERROR, updated_at__gte=since)
        .order_by()
        .values("pool__name")
        .annotate(n=Count("id"))
        .values_list("pool__name", "n")
    )
    ready = dict(
        VM.objects.filter(ready_at__gte=since)
        .order_by()
        .values("pool__name")
        .annotate(n=Count("id"))
        .values_list("pool__name", "n")
    )
    failures = GaugeMetricFamily(
        "deskops_boot_failures_15m", "Boots failed in the last 15 minutes.", labels=["pool"]
    )
    finished = GaugeMetricFamily(
        "deskops_boots_ready_15m",
        "Boots finished (the VM became ready) in the last 15 minutes.",
        labels=["pool"],
    )
    for pool in pools:
        failures.add_metric([pool], failed.get(pool, 0))
        finished.add_metric([pool], ready.get(pool, 0))
    yield failures
    yield finished


def _failures_and_alerts():
    from cloud.models import Region
    from monitoring.choices import AlertSeverity, AlertStatus, IncidentStatus
    from monitoring.models import Alert, Incident

    failed_hosts = GaugeMetricFamily(
        "deskops_hosts_failed",
        "Hosts declared failed (out of placement until an operator returns them).",
        labels=["region"],
    )
    for row in Region.objects.annotate(
        failed=Count("hosts", filter=Q(hosts__failed_at__isnull=False))
    ).values("name", "failed"):
        failed_hosts.add_metric([row["name"]], row["failed"])
    yield failed_hosts

    yield GaugeMetricFamily(
        "deskops_incidents_open",
        "Incidents still recovering (users not all served again).",
        value=Incident.objects.filter(status=IncidentStatus.OPEN).count(),
    )
    counts = dict(
        Alert.objects.exclude(status=AlertStatus.CLOSED)
        .order_by()
        .values("severity")
        .annotate(n=Count("id"))
        .values_list("severity", "n")
    )
    alerts = GaugeMetricFamily(
        "deskops_alerts", "Alerts not closed, by severity.", labels=["severity"]
    )
    for severity in AlertSeverity.values:
        alerts.add_metric([severity], counts.get(severity, 0))
    yield alerts


def _probe_and_allocations():
    from monitoring.models import ConnectRecord, ProbeResult

    last = ProbeResult.objects.order_by("-at").first()
    if last is not None:
        yield GaugeMetricFamily(
            "deskops_login_probe_ok", "1 when the last login probe succeeded.", value=int(last.ok)
        )
        if last.latency_ms is not None:
            yield GaugeMetricFamily(
                "deskops_login_probe_latency_seconds",
                "Time the last login probe's connect took.",
                value=last.latency_ms / 1000.0,
            )
        yield GaugeMetricFamily(
            "deskops_login_probe_age_seconds",
            "Seconds since the last login probe ran.",
            value=max(0.0, (timezone.now() - last.at).total_seconds()),
        )

    allocations = GaugeMetricFamily(
        "deskops_allocations_5m",
        "Thin-client connects answered in the last 5 minutes, by outcome.",
        labels=["outcome"],
    )
    for outcome, n in (
        ConnectRecord.objects.filter(at__gte=timezone.now() - ALLOCATION_WINDOW)
        .order_by()
        .values("outcome")
        .annotate(n=Count("id"))
        .values_list("outcome", "n")
    ):
        allocations.add_metric([outcome], n)
    yield allocations


def _celery_queues():
    from .queues import celery_queue_lengths

    lengths = celery_queue_lengths()
    if lengths is None:
        return
    queued = GaugeMetricFamily(
        "deskops_celery_queue_length",
        "Celery messages waiting in the broker, by queue.",
        labels=["queue"],
    )
    for queue, n in lengths.items():
        queued.add_metric([queue], n)
    yield queued
