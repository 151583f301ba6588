"""The three placement policies the working-day replay compares, all with one
signature: given the region's hosts, the class of the desktop to boot and the
simulated time, decide where it goes.

- dynamic priority: the portal's own placement (`pools.placement.place`), called
  as is, so the replay measures the code that places real VMs;
- round-robin: the next host in a fixed order that is up and has room;
- Nova-style weigher: what OpenStack's filter scheduler does by default with the
  RAM and CPU weighers: keep the hosts that fit under their allocation ratios,
  weigh each by free RAM and by free vCPUs, normalise each weigher's values over
  the candidates, add them with multipliers of 1.0 and take the best host
  (`host_subset_size = 1`).

A policy answers with a `Decision`: a host, "wait" (every host that could take the
desktop is at its cap of concurrent boots: ask again when a boot ends), or
neither (no host can hold it: the placement is refused)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pools.placement import HostLoad, Unit, place

# Simulated seconds are turned into datetimes for `place`, whose round-robin
# inside a group compares when each host was last placed on.
EPOCH = datetime(2024, 1, 1)

# Nova's defaults: ram_weight_multiplier and cpu_weight_multiplier are 1.0.
RAM_WEIGHT_MULTIPLIER = 1.0
CPU_WEIGHT_MULTIPLIER = 1.0


class HostView(Protocol):
    """What a policy may read of a simulated host."""

    name: str
    group: str
    up: bool
    vcpus: int
    memory_mb: int
    cpu_allocation_ratio: float
    ram_allocation_ratio: float
    vcpus_used: int
    memory_mb_used: int
    boot_cap: int
    last_placed_at: float | None

    @property
    def boots_in_flight(self) -> int: ...

    @property
    def response_ms(self) -> float: ...


class UnitView(Protocol):
    """What a policy may read of the desktop to place."""

    vcpus: int
    memory_mb: int
    weight: float


@dataclass(frozen=True)
class Decision:
    host: str | None
    wait: bool = False


REFUSED = Decision(host=None)
WAIT = Decision(host=None, wait=True)

Policy = Callable[[Sequence[HostView], UnitView, float], Decision]


def fits(host: HostView, unit: UnitView) -> bool:
    """Whether the host is up and has room for the unit under its allocation
    ratios (Nova's compute filter and its placement claim of VCPU and MEMORY_MB)."""
    return (
        host.up
        and host.vcpus * host.cpu_allocation_ratio - host.vcpus_used >= unit.vcpus
        and host.memory_mb * host.ram_allocation_ratio - host.memory_mb_used >= unit.memory_mb
    )


def host_load(h: "HostView") -> HostLoad:
    """A simulated host as the portal's placement sees it."""
    return HostLoad(
        name=h.name,
        group=h.group,
        up=h.up,
        vcpus=h.vcpus,
        memory_mb=h.memory_mb,
        cpu_allocation_ratio=h.cpu_allocation_ratio,
        ram_allocation_ratio=h.ram_allocation_ratio,
        vcpus_used=h.vcpus_used,
        memory_mb_used=h.memory_mb_used,
        response_ms=h.response_ms,
        boots_in_flight=h.boots_in_flight,
        boot_cap=h.boot_cap,
        failures_in_row=0,
        last_placed_at=(
            EPOCH + timedelta(seconds=h.last_placed_at) if h.last_placed_at is not None else None
        ),
    )


def dynamic_priority(*, mu: float, max_failures: int) -> Policy:
    """The portal's placement. When no host can be chosen but some host has room
    (every such host is at its boot cap), the request waits for a boot to end;
    when no host has room, it is refused."""

    def decide(hosts: Sequence[HostView], unit: UnitView, now: float) -> Decision:
        # Hosts `place` would pass over anyway (down, at their boot cap, or with
        # no room for the unit) are left out: its choice is the same, and in a
        # boot storm most hosts are at their cap, so this saves most of the work.
        open_hosts = [h for h in hosts if h.boots_in_flight < h.boot_cap and fits(h, unit)]
        if not open_hosts:
            return WAIT if any(fits(h, unit) for h in hosts) else REFUSED
        loads = [host_load(h) for h in open_hosts]
        decision = place(
            loads,
            Unit(vcpus=unit.vcpus, memory_mb=unit.memory_mb, weight=unit.weight),
            mu=mu,
            max_failures=max_failures,
        )
        if decision.host is not None:
            return Decision(host=decision.host)
        return WAIT if any(fits(h, unit) for h in hosts) else REFUSED

    return decide


def round_robin(**_: object) -> Policy:
    """Hosts in a fixed order; each placement goes to the next one after the
    last chosen that is up and has room. Boot caps are not looked at: a boot
    sent to a busy host waits in that host's queue."""
    state = {"next": 0}

    def decide(hosts: Sequence[HostView], unit: UnitView, now: float) -> Decision:
        count = len(hosts)
        for step in range(count):
            index = (state["next"] + step) % count
            if fits(hosts[index], unit):
                state["next"] = (index + 1) % count
                return Decision(host=hosts[index].name)
        return REFUSED

    return decide


def normalise(values: list[float]) -> list[float]:
    """Nova's weight normalisation for a weigher with `minval = 0` (the RAM and
    CPU weighers): each raw weight is clamped at 0, then scaled by the largest
    one, so the best candidate gets 1.0 (when none is above 0, all get 0)."""
    clamped = [max(0.0, v) for v in values]
    top = max(clamped, default=0.0)
    if top == 0.0:
        return [0.0] * len(clamped)
    return [v / top for v in clamped]


def nova_weights(hosts: Sequence[HostView]) -> list[float]:
    """The weight Nova's RAMWeigher + CPUWeigher give each host: free physical
    RAM (Nova's `free_ram_mb`, not scaled by the RAM ratio) and free vCPUs under
    the CPU allocation ratio, each normalised over the candidates."""
    free_ram = [float(h.memory_mb - h.memory_mb_used) for h in hosts]
    free_vcpus = [h.vcpus * h.cpu_allocation_ratio - h.vcpus_used for h in hosts]
    return [
        RAM_WEIGHT_MULTIPLIER * ram + CPU_WEIGHT_MULTIPLIER * cpu
        for ram, cpu in zip(normalise(free_ram), normalise(free_vcpus), strict=True)
    ]


def nova_weigher(**_: object) -> Policy:
    """Filter, weigh, take the best (ties: the first in host order, as Nova's
    stable sort does). Boot caps are not looked at, as Nova's scheduler does not:
    a boot sent to a busy host waits in that host's queue (the compute service's
    own limit of concurrent builds)."""

    def decide(hosts: Sequence[HostView], unit: UnitView, now: float) -> Decision:
        candidates = [h for h in hosts if fits(h, unit)]
        if not candidates:
            return REFUSED
        weights = nova_weights(candidates)
        best = max(range(len(candidates)), key=lambda i: (weights[i], -i))
        return Decision(host=candidates[best].name)

    return decide


# key: (label, factory); the order is the order of the report.
POLICIES: dict[str, tuple[str, Callable[..., Policy]]] = {
    "dynamic": ("Dynamic priority", dynamic_priority),
    "round-robin": ("Round-robin", round_robin),
    "nova": ("Nova weigher", nova_weigher),
}
