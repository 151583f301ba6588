"""The pools of a generated world and their VMs: one VM in use for every planned
binding, in a pool of the allocator that serves it, and the rest spread over the
pools in the states a pool goes through (mostly ready)."""

from datetime import time, timedelta

from pools.choices import VMState
from pools.models import VM, FeatureClass, PoolSchedule, VMPool

from .cloud import RUNNING_VM_STATES
from .context import BATCH, Context, insert

# Shares of the VMs not held by a binding, by state.
IDLE_VM_STATES = [
    (VMState.READY, 60),
    (VMState.BUILDING, 8),
    (VMState.REQUESTED, 2),
    (VMState.RECYCLING, 6),
    (VMState.QUARANTINED, 3),
    (VMState.ERROR, 4),
    (VMState.LOST, 2),
    (VMState.DELETED, 15),
]


def build_pools(ctx: Context) -> None:
    size, p = ctx.size, ctx.prefix
    features = [
        FeatureClass.objects.get_or_create(name=name, defaults={"label": label})[0]
        for name, label in [("agent", "Agent"), ("vip", "VIP agent"), ("supervisor", "Supervisor")]
    ]
    per_pool = max(1, size.vms // size.pools)
    ctx.pools = insert(
        VMPool,
        [
            VMPool(
                name=f"{p}-pool-{i:03d}",
                label=f"Pool {i} ({p})",
                region=ctx.regions[i % size.regions],
                feature_class=features[i % len(features)],
                flavor="desk.medium",
                vcpus=2,
                memory_mb=4096,
                image="win10-2024.06",
                target_ready=max(1, per_pool // 5),
                min_ready=max(1, per_pool // 20),
                max_size=per_pool * 2,
                max_concurrent_boots=10,
                paused_at=ctx.ago(days=1) if i % 17 == 5 else None,
                pause_reason="5 boot failures in 10 minutes" if i % 17 == 5 else "",
            )
            for i in range(size.pools)
        ],
    )
    insert(
        PoolSchedule,
        [
            PoolSchedule(
                pool=pool,
                weekdays=[1, 2, 3, 4, 5],
                starts=time(7),
                ends=time(19),
                target_ready=pool.target_ready * 2,
                label="Day shift",
            )
            for pool in ctx.pools
        ],
    )
    ctx.count("pools", len(ctx.pools))


def _vm(ctx: Context, pool: VMPool, index: int, state: str) -> VM:
    hosts = ctx.hosts_by_region.get(pool.region_id, [])
    host_name = ctx.rng.choice(hosts).name if hosts and state != VMState.REQUESTED else ""
    requested = ctx.ago()
    booted = state not in (VMState.REQUESTED, VMState.BUILDING)
    running = state in RUNNING_VM_STATES and bool(host_name)
    return VM(
        pool=pool,
        name=f"{pool.name}-{index:05d}",
        server_id=ctx.uid() if host_name else "",
        state=state,
        host_name=host_name,
        ip_address=ctx.address(10, index) if running else None,
        error="No valid host was found." if state == VMState.ERROR else "",
        requested_at=requested,
        boot_started_at=requested + timedelta(seconds=3) if host_name else None,
        ready_at=requested + timedelta(seconds=ctx.rng.uniform(25, 90)) if booted else None,
        assigned_at=requested + timedelta(minutes=5) if state == VMState.IN_USE else None,
        placement={"host": host_name, "score": round(ctx.rng.uniform(0, 1), 3)}
        if host_name
        else None,
        quarantined_until=ctx.now + timedelta(hours=24) if state == VMState.QUARANTINED else None,
        cloud_status="ACTIVE" if running else ("ERROR" if state == VMState.ERROR else ""),
        updated_at=requested + timedelta(minutes=10),
    )


def build_vms(ctx: Context) -> None:
    """The VMs: first one in use for each planned binding (`ctx.plan`, in its
    pool), then the idle ones, spread over the pools in turn. A pool's maximum
    size leaves room above what it holds."""
    size = ctx.size
    idle_states, weights = zip(*IDLE_VM_STATES, strict=True)
    ctx.vms = []
    for index in range(size.vms):
        if index < len(ctx.plan):
            planned = ctx.plan[index]
            vm = _vm(ctx, planned.pool, index, VMState.IN_USE)
            planned.vm = vm
        else:
            pool = ctx.pools[index % size.pools]
            vm = _vm(ctx, pool, index, ctx.rng.choices(idle_states, weights)[0])
        ctx.vms.append(vm)
    insert(VM, ctx.vms)
    held: dict[int, int] = {}
    for vm in ctx.vms:
        held[vm.pool_id] = held.get(vm.pool_id, 0) + 1
    for pool in ctx.pools:
        pool.max_size = max(pool.max_size, held.get(pool.pk, 0) + pool.target_ready)
    VMPool.objects.bulk_update(ctx.pools, ["max_size"], batch_size=BATCH)
    ctx.count("VMs", len(ctx.vms))
