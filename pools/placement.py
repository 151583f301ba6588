"""Placement by the paper's dynamic priority, as pure functions over plain data.

A host holds as many schedulable units V(C, M, F) as its CPU and memory allow under
overcommit. Its priority for a unit of feature weight F is

    priority = free_units x F + LT x mu

where LT is the host's measured response time and mu a (negative) conversion
factor, so a slower host ranks lower. Hosts are grouped: the group whose eligible
hosts add up to the highest priority is served first, and inside it the hosts take
turns (the one placed on longest ago goes next), which spreads a burst of boots
instead of stacking it on the single best host. A host is not eligible when it is
down, has no free unit, is at its cap of concurrent boots, or its last K boots
failed."""

from dataclasses import asdict, dataclass
from datetime import datetime


@dataclass(frozen=True)
class Unit:
    """What one VM needs, and how much its class weighs (F)."""

    vcpus: int
    memory_mb: int
    weight: float


@dataclass(frozen=True)
class HostLoad:
    name: str
    group: str
    up: bool
    vcpus: int
    memory_mb: int
    cpu_allocation_ratio: float
    ram_allocation_ratio: float
    vcpus_used: int
    memory_mb_used: int
    response_ms: float | None
    boots_in_flight: int
    boot_cap: int
    failures_in_row: int
    last_placed_at: datetime | None = None


@dataclass(frozen=True)
class Candidate:
    host: str
    group: str
    free_units: int
    priority: float
    eligible: bool
    why_not: str = ""


@dataclass(frozen=True)
class Placement:
    host: str | None
    group: str | None
    candidates: list[Candidate]

    def as_record(self) -> dict:
        """For the VM's page: the chosen host and every candidate's score."""
        return {
            "host": self.host,
            "group": self.group,
            "candidates": [asdict(c) for c in self.candidates],
        }


def free_units(host: HostLoad, unit: Unit) -> int:
    """How many more units fit on the host under its overcommit ratios."""
    spare_vcpus = host.vcpus * host.cpu_allocation_ratio - host.vcpus_used
    spare_memory = host.memory_mb * host.ram_allocation_ratio - host.memory_mb_used
    return max(0, int(min(spare_vcpus // unit.vcpus, spare_memory // unit.memory_mb)))


def priority(host: HostLoad, unit: Unit, *, mu: float) -> float:
    return free_units(host, unit) * unit.weight + (host.response_ms or 0.0) * mu


def _why_not(host: HostLoad, units: int, *, max_failures: int) -> str:
    if not host.up:
        return "host is down"
    if units < 1:
        return "no free unit"
    if host.boots_in_flight >= host.boot_cap:
        return f"{host.boots_in_flight} boots in flight, cap {host.boot_cap}"
    if max_failures and host.failures_in_row >= max_failures:
        return f"last {host.failures_in_row} boots failed"
    return ""


def place(hosts: list[HostLoad], unit: Unit, *, mu: float, max_failures: int) -> Placement:
    """Choose the host for one VM, with every candidate's score and the reason any
    host was passed over."""
    candidates = []
    for host in hosts:
        units = free_units(host, unit)
        why_not = _why_not(host, units, max_failures=max_failures)
        candidates.append(
            Candidate(
                host=host.name,
                group=host.group,
                free_units=units,
                priority=round(priority(host, unit, mu=mu), 3),
                eligible=not why_not,
                why_not=why_not,
            )
        )
    eligible = [c for c in candidates if c.eligible]
    if not eligible:
        return Placement(host=None, group=None, candidates=candidates)

    group_score: dict[str, float] = {}
    for candidate in eligible:
        group_score[candidate.group] = group_score.get(candidate.group, 0.0) + candidate.priority
    best_group = max(sorted(group_score), key=lambda g: group_score[g])

    by_name = {host.name: host for host in hosts}
    in_group = [c for c in eligible if c.group == best_group]

    # Round-robin: the host placed on longest ago goes next (one never placed on
    # first); ties go to the higher priority, then the name, so it is repeatable.
    def turn(candidate: Candidate) -> tuple:
        placed = by_name[candidate.host].last_placed_at
        return (
            placed is not None,
            placed.timestamp() if placed else 0.0,
            -candidate.priority,
            candidate.host,
        )

    chosen = min(in_group, key=turn)
    return Placement(host=chosen.host, group=best_group, candidates=candidates)
