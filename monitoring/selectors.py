"""Reads for the dashboard: one snapshot of regions, hosts and pools, shaped for
both the page and the websocket."""

from django.db.models import Count, Q

from cloud.choices import HostState
from cloud.models import Host, Region
from pools.selectors import pool_summaries


def dashboard_snapshot() -> dict:
    regions = Region.objects.annotate(
        host_count=Count("hosts", distinct=True),
        hosts_up=Count("hosts", filter=Q(hosts__state=HostState.UP), distinct=True),
        pool_count=Count("pools", distinct=True),
    )
    hosts = Host.objects.select_related("region")
    return {
        "regions": [
            {
                "name": r.name,
                "label": str(r),
                "driver": r.get_driver_display(),
                "hosts": r.host_count,
                "hosts_up": r.hosts_up,
                "pools": r.pool_count,
            }
            for r in regions
        ],
        "hosts": [
            {
                "name": h.name,
                "region": h.region.name,
                "state": h.state,
                "vcpus_used": h.vcpus_used,
                "vcpus_capacity": round(h.vcpus * h.cpu_allocation_ratio),
                "memory_mb_used": h.memory_mb_used,
                "memory_mb_capacity": round(h.memory_mb * h.ram_allocation_ratio),
                "memory_load": round(h.memory_load * 100),
                "vms": h.running_vms,
            }
            for h in hosts
        ],
        "pools": [
            {
                "name": p.name,
                "label": str(p),
                "region": p.region.name,
                "feature_class": str(p.feature_class),
                "target_ready": p.target_ready,
                "min_ready": p.min_ready,
                "ready": p.ready_count,
                "booting": p.booting_count,
                "in_use": p.in_use_count,
                "error": p.error_count,
                "max_concurrent_boots": p.max_concurrent_boots,
                "short": p.ready_count < p.min_ready,
                "last_error": p.last_error,
            }
            for p in pool_summaries()
        ],
    }
