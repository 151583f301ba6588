"""Prometheus metrics. Figures that live in the database (pool levels, VM states,
boots in flight, hosts, open sessions, pending swaps) are read at each scrape by a
collector, so every web process reports the same truth. Figures of the connect
call itself (answers and latency) are counted in the process that served it; with
several web processes, set `PROMETHEUS_MULTIPROC_DIR` so prometheus_client sums
them across processes."""

from django.db.models import Count
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
