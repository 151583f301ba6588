"""Reads of the pools app."""

from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from cloud.choices import HostState
from cloud.models import Host, Region

from .choices import BOOTING_STATES, VMState
from .flavors import class_extra_specs
from .models import VM, FeatureClass, SchedulingPolicy, Shift, VMPool
from .placement import HostLoad, Unit
from .prewarm import (
    HostFacts,
    Limits,
    Plan,
    PoolFacts,
    RegionFacts,
    ShiftDemand,
    boot_seconds_observed,
    plan_prewarm,
)


def pool_summaries() -> QuerySet[VMPool]:
    """Every pool with its VM counts by state, in one query."""
    return VMPool.objects.select_related("region", "feature_class").annotate(
        ready_count=Count("vms", filter=Q(vms__state=VMState.READY)),
        booting_count=Count("vms", filter=Q(vms__state__in=BOOTING_STATES)),
        in_use_count=Count("vms", filter=Q(vms__state=VMState.IN_USE)),
        error_count=Count("vms", filter=Q(vms__state=VMState.ERROR)),
    )


def pool_ids_to_refill() -> list[int]:
    """The pools a refill pass visits, most urgent feature class first: enabled,
    in an enabled region, not paused (the same choice as `pools_refill_all`)."""
    pools = VMPool.objects.filter(enabled=True, region__enabled=True, paused_at__isnull=True)
    return list(pools.order_by("-feature_class__urgency", "name").values_list("pk", flat=True))


def _in_window(schedule, moment: datetime) -> bool:
    """Whether a calendar window is open at `moment` (local time). A window that
    runs past midnight belongs to the weekday it starts on."""

    def on(day: int) -> bool:
        return not schedule.weekdays or day in schedule.weekdays

    now, starts, ends = moment.time(), schedule.starts, schedule.ends
    today = moment.isoweekday()
    if starts <= ends:
        return on(today) and starts <= now < ends
    yesterday = (moment - timedelta(days=1)).isoweekday()
    return (on(today) and now >= starts) or (on(yesterday) and now < ends)


def pool_target(pool: VMPool, *, at: datetime | None = None) -> int:
    """How many VMs the pool should keep ready now: the highest target of its
    calendar windows open at this (local) time, else its usual target."""
    moment = timezone.localtime(at or timezone.now())
    targets = [s.target_ready for s in pool.schedules.all() if _in_window(s, moment)]
    return max(targets) if targets else pool.target_ready


def boots_in_flight() -> dict:
    """VMs booting now: in all, per region id, and per (region id, host name)."""
    rows = VM.objects.filter(state__in=BOOTING_STATES).values_list("pool__region_id", "host_name")
    per_region: Counter = Counter()
    per_host: Counter = Counter()
    for region_id, host_name in rows:
        per_region[region_id] += 1
        if host_name:
            per_host[(region_id, host_name)] += 1
    return {"total": sum(per_region.values()), "region": per_region, "host": per_host}


def boots_started_since(moment: datetime) -> int:
    """Boots (new VMs and rebuilds) started since `moment`."""
    return VM.objects.filter(
        Q(requested_at__gte=moment) | Q(state=VMState.RECYCLING, boot_started_at__gte=moment)
    ).count()


def host_loads(*, region: Region, policy: SchedulingPolicy, in_flight: dict) -> list[HostLoad]:
    """The region's hosts as placement sees them. Usage is the last host sync plus
    the VMs requested on each host since, so a burst of placements between two
    syncs is not placed on the same "empty" host over and over."""
    synced_at = region.hosts_synced_at or timezone.now() - timedelta(days=365)
    recent = Counter()
    recent_memory = Counter()
    for host_name, vcpus, memory in (
        VM.objects.filter(pool__region=region, requested_at__gt=synced_at)
        .exclude(host_name="")
        .values_list("host_name", "pool__vcpus", "pool__memory_mb")
    ):
        recent[host_name] += vcpus
        recent_memory[host_name] += memory
    return [
        HostLoad(
            name=host.name,
            group=host.placement_group or region.name,
            # A host declared failed stays out until an operator returns it to service.
            up=host.state == HostState.UP and host.failed_at is None,
            vcpus=host.vcpus,
            memory_mb=host.memory_mb,
            cpu_allocation_ratio=host.cpu_allocation_ratio,
            ram_allocation_ratio=host.ram_allocation_ratio,
            vcpus_used=host.vcpus_used + recent[host.name],
            memory_mb_used=host.memory_mb_used + recent_memory[host.name],
            response_ms=host.response_ms,
            boots_in_flight=in_flight["host"][(region.pk, host.name)],
            boot_cap=host.max_concurrent_boots or policy.host_max_concurrent_boots,
            failures_in_row=host.boot_failures_in_row,
            last_placed_at=host.last_placed_at,
        )
        for host in Host.objects.filter(region=region).order_by("name")
    ]


def pool_unit(pool: VMPool) -> Unit:
    return Unit(vcpus=pool.vcpus, memory_mb=pool.memory_mb, weight=pool.feature_class.weight)


# The boot time of a pool is measured over its latest boots of the last two weeks.
BOOT_SAMPLE_SIZE = 50
BOOT_SAMPLE_DAYS = 14


def pool_boot_samples(pool_id: int, *, now: datetime | None = None) -> list[float]:
    """Seconds from the start of each of the pool's latest boots (or from the
    request, when the start was not recorded) to the VM being ready."""
    since = (now or timezone.now()) - timedelta(days=BOOT_SAMPLE_DAYS)
    rows = (
        VM.objects.filter(pool_id=pool_id, ready_at__gte=since)
        .order_by("-ready_at")
        .values_list("requested_at", "boot_started_at", "ready_at")[:BOOT_SAMPLE_SIZE]
    )
    return [
        (ready - (started or requested)).total_seconds()
        for requested, started, ready in rows
        if ready >= (started or requested)
    ]


def prewarm_inputs() -> tuple[list[ShiftDemand], dict, dict, Limits]:
    """Every fact the boot-storm planner needs, read in a few queries: the shifts,
    their pools (caps, size, measured boot time), their regions (cap, up hosts
    with their boot caps and overcommitted capacity), and the cloud-wide caps."""
    shifts = list(Shift.objects.select_related("pool__region").order_by("pk"))
    policy = SchedulingPolicy.current()
    pools, regions = {}, {}
    for shift in shifts:
        pool = shift.pool
        if pool.pk not in pools:
            seconds, source = boot_seconds_observed(
                pool_boot_samples(pool.pk),
                default=settings.PREWARM_BOOT_SECONDS,
                floor=settings.PREWARM_BOOT_SECONDS_FLOOR,
            )
            pools[pool.pk] = PoolFacts(
                pool_id=pool.pk,
                name=pool.name,
                region_id=pool.region_id,
                max_concurrent_boots=pool.max_concurrent_boots,
                max_size=pool.max_size,
                boot_seconds=seconds,
                vcpus=pool.vcpus,
                memory_mb=pool.memory_mb,
                enabled=pool.enabled,
                boot_source=source,
            )
        regions[pool.region_id] = pool.region
    hosts_by_region: dict[int, list] = {region_id: [] for region_id in regions}
    inventory: set[int] = set()
    for host in Host.objects.filter(region_id__in=regions):
        inventory.add(host.region_id)
        if host.state == HostState.UP and host.failed_at is None:
            hosts_by_region[host.region_id].append(
                HostFacts(
                    boot_cap=host.max_concurrent_boots or policy.host_max_concurrent_boots,
                    vcpus=host.vcpus * host.cpu_allocation_ratio,
                    memory_mb=host.memory_mb * host.ram_allocation_ratio,
                )
            )
    region_facts = {
        region_id: RegionFacts(
            region_id=region_id,
            name=region.name,
            max_concurrent_boots=region.max_concurrent_boots,
            hosts=tuple(hosts_by_region[region_id]) if region_id in inventory else None,
            enabled=region.enabled,
        )
        for region_id, region in regions.items()
    }
    demands = [
        ShiftDemand(
            key=shift.pk,
            label=shift.label,
            pool_id=shift.pool_id,
            weekdays=tuple(shift.weekdays or ()),
            starts_at=shift.starts_at,
            ends_at=shift.ends_at,
            seats=shift.seats,
        )
        for shift in shifts
    ]
    limits = Limits(
        max_concurrent_boots=policy.max_concurrent_boots,
        max_boots_per_minute=policy.max_boots_per_minute,
        margin_seconds=settings.PREWARM_SAFETY_MARGIN_MINUTES * 60,
        max_lead_seconds=settings.PREWARM_MAX_LEAD_HOURS * 3600,
    )
    return demands, pools, region_facts, limits


def prewarm_plan() -> Plan:
    """The boot-storm plan of every shift, from the facts as they are now."""
    return plan_prewarm(*prewarm_inputs())


def feature_class_summaries() -> QuerySet[FeatureClass]:
    """Every feature class with the number of its pools, most urgent first."""
    return FeatureClass.objects.annotate(pool_count=Count("pools")).order_by("-urgency", "name")


def feature_class_pool_rows(feature_class: FeatureClass) -> list[dict]:
    """The class's pools, each with what the last apply to flavors did to its
    flavor and whether the flavor is known to carry the class's specs as they
    are now (an edit of the class since the apply makes it stale)."""
    wanted = class_extra_specs(feature_class)
    last = {entry.get("pool"): entry for entry in feature_class.flavors_outcome or []}
    rows = []
    for pool in feature_class.pools.select_related("region").order_by("region__name", "name"):
        outcome = last.get(pool.name)
        rows.append(
            {
                "pool": pool,
                "outcome": outcome,
                "in_effect": bool(outcome)
                and outcome.get("status") in ("changed", "unchanged")
                and outcome.get("flavor") == pool.flavor
                and outcome.get("after") == wanted,
            }
        )
    return rows
