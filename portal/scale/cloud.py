"""The clouds of a generated world: regions, their hosts, and the simulated cloud
behind them, down to one running server for every running VM, so a thin client
of the world gets a real console through the simulated driver."""

import uuid
from collections import Counter
from datetime import timedelta

from cloud.choices import HostState, ServerStatus
from cloud.drivers.simulated import SPICE_BASE_PORT
from cloud.models import Host, Region, SimHost, SimServer, SimulatedRegion
from pools.choices import VMState
from pools.models import SchedulingPolicy

from .context import BATCH, Context, insert

HOST_VCPUS = 64
HOST_MEMORY_MB = 524_288
# The VM states in which a server runs on its host.
RUNNING_VM_STATES = (VMState.READY, VMState.IN_USE, VMState.RECYCLING, VMState.QUARANTINED)


def build_regions_and_hosts(ctx: Context) -> None:
    size, p = ctx.size, ctx.prefix
    SchedulingPolicy.objects.get_or_create(pk=1)
    ctx.regions = insert(
        Region,
        [
            Region(
                name=f"{p}-r{i:03d}",
                label=f"Region {i} ({p})",
                max_concurrent_boots=40 if i % 2 else None,
                hosts_synced_at=ctx.now,
            )
            for i in range(size.regions)
        ],
    )
    # Boots of a few seconds, so a refill the benchmarks set off ends quickly.
    insert(
        SimulatedRegion,
        [
            SimulatedRegion(region=r, boot_seconds_min=2.0, boot_seconds_max=5.0)
            for r in ctx.regions
        ],
    )
    ctx.hosts = []
    for i in range(size.hosts):
        state = ctx.rng.choices(
            [HostState.UP, HostState.DOWN, HostState.DISABLED], weights=[96, 3, 1]
        )[0]
        down_since = ctx.ago(days=1) if state == HostState.DOWN else None
        ctx.hosts.append(
            Host(
                region=ctx.regions[i % size.regions],
                name=f"{p}-cmp-{i:04d}",
                state=state,
                vcpus=HOST_VCPUS,
                memory_mb=HOST_MEMORY_MB,
                response_ms=ctx.rng.uniform(5, 60),
                placement_group=f"rack-{i % 10}",
                down_since=down_since,
                failed_at=down_since if down_since and i % 2 else None,
                load_1m=ctx.rng.uniform(0.5, 30),
                memory_free_mb=ctx.rng.randint(10_000, 300_000),
                disk_latency_ms=ctx.rng.uniform(0.2, 8),
                agent_reported_at=ctx.now,
                last_placed_at=ctx.ago(days=1),
            )
        )
    insert(Host, ctx.hosts)
    ctx.sim_hosts = insert(
        SimHost,
        [
            SimHost(
                region=h.region,
                name=h.name,
                address=ctx.address(198, i),
                vcpus=h.vcpus,
                memory_mb=h.memory_mb,
                state=h.state,
            )
            for i, h in enumerate(ctx.hosts)
        ],
    )
    ctx.hosts_by_region = {}
    for host in ctx.hosts:
        ctx.hosts_by_region.setdefault(host.region_id, []).append(host)
    ctx.count("regions", len(ctx.regions))
    ctx.count("hosts", len(ctx.hosts))


def build_sim_servers(ctx: Context) -> None:
    """A server of the simulated cloud for every VM that runs on a host (its
    `server_id` is the server's id), each with its own SPICE port on the host,
    and the hosts' usage as the next host sync would report it."""
    sim_host = {(h.region_id, h.name): h for h in ctx.sim_hosts}
    ports: Counter = Counter()
    running_on: Counter = Counter()
    servers = []
    for vm in ctx.vms:
        if vm.state not in RUNNING_VM_STATES or not vm.host_name:
            continue
        host = sim_host[(vm.pool.region_id, vm.host_name)]
        running_on[vm.host_name] += 1
        port = SPICE_BASE_PORT + 2 * ports[host.pk]
        ports[host.pk] += 1
        servers.append(
            SimServer(
                id=uuid.UUID(vm.server_id),
                region_id=host.region_id,
                host=host,
                name=vm.name,
                flavor=vm.pool.flavor,
                vcpus=vm.pool.vcpus,
                memory_mb=vm.pool.memory_mb,
                image=vm.pool.image,
                status=ServerStatus.ACTIVE,
                task_state="",
                ready_at=vm.ready_at or ctx.now - timedelta(minutes=5),
                ip_address=vm.ip_address,
                spice_port=port,
                created_at=vm.requested_at,
            )
        )
    insert(SimServer, servers)
    for host in ctx.hosts:
        count = running_on[host.name]
        host.running_vms = count
        host.vcpus_used = min(count * 2, 65_535)
        host.memory_mb_used = count * 4096
    Host.objects.bulk_update(
        ctx.hosts, ["running_vms", "vcpus_used", "memory_mb_used"], batch_size=BATCH
    )
    ctx.count("simulated servers", len(servers))
