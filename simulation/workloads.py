"""What the CPU scheduler simulation runs: feature classes with their scheduler
parameters, the workloads a desktop puts on its vCPUs, and a host's mix of VMs.

Plain dataclasses, with no database behind them, so the scheduler can be run and
tested on its own; `simulation/credit_hosts.py` builds a mix from a host's VMs."""

from dataclasses import dataclass

# Xen's default domain weight: a feature class of weight 1.0 gets 256.
XEN_DEFAULT_WEIGHT = 256


@dataclass(frozen=True)
class ClassParams:
    """A feature class as the scheduler sees it: `weight` is the class's F, turned
    into a Xen-style credit weight of round(256 × F); `cpu_cap_percent` limits each
    vCPU to that share of one physical CPU (0: uncapped); `boost_factor` is the
    paper's factor, how many slices a VM may jump the queue between two refills
    (0: never boosted)."""

    name: str
    label: str
    weight: float = 1.0
    urgency: int = 1
    cpu_cap_percent: int = 0
    boost_factor: int = 0

    @property
    def xen_weight(self) -> int:
        # A weight of 0 would never earn credit; the scheduler gives it the least share.
        return max(1, round(XEN_DEFAULT_WEIGHT * self.weight))


@dataclass(frozen=True)
class Workload:
    """The CPU demand of one vCPU: a burst of `burst_ms` of CPU work, then
    `think_ms` asleep (blocked) before the next burst. With `think_ms` (0, 0) the
    vCPU never sleeps (a batch job); bursts then only count completed work units.
    With `long_chance` > 0 a burst is, at that probability, a long one of
    `long_burst_ms` (a supervisor's report). Ranges are inclusive, in ms."""

    name: str
    burst_ms: tuple[int, int]
    think_ms: tuple[int, int]
    long_burst_ms: tuple[int, int] = (0, 0)
    long_chance: float = 0.0

    @property
    def cpu_bound(self) -> bool:
        return self.think_ms[1] <= 0

    def mean_demand(self) -> float:
        """Share of one CPU the workload asks for when it never waits."""
        if self.cpu_bound:
            return 1.0
        short = sum(self.burst_ms) / 2
        long = sum(self.long_burst_ms) / 2
        burst = (1 - self.long_chance) * short + self.long_chance * long
        return burst / (burst + sum(self.think_ms) / 2)


# An agent's desktop: a short burst of CPU (a click, a screen update) every
# 100-500 ms of the user reading or talking.
INTERACTIVE = Workload("interactive", burst_ms=(5, 50), think_ms=(100, 500))
# A supervisor: interactive use, and now and then a report that runs for a second.
MIXED = Workload(
    "mixed", burst_ms=(5, 50), think_ms=(200, 800), long_burst_ms=(300, 1500), long_chance=0.05
)
# Background work that never waits (installs, scans, other tenants' jobs), counted
# in units of 100 ms of CPU.
BATCH = Workload("batch", burst_ms=(100, 100), think_ms=(0, 0))

WORKLOADS = {w.name: w for w in (INTERACTIVE, MIXED, BATCH)}

# The classes of the paper (urgency: VIP agent > agent > supervisor), as the demo
# seeds them, and a background class for batch load. Their weights follow the
# urgency; the boost factor is what the paper adds for the urgent ones.
DEFAULT_CLASSES = {
    c.name: c
    for c in (
        ClassParams("vip-agent", "VIP agent", weight=3.0, urgency=3, boost_factor=3),
        ClassParams("agent", "Agent", weight=2.0, urgency=2, boost_factor=1),
        ClassParams("supervisor", "Supervisor", weight=1.0, urgency=1, cpu_cap_percent=50),
        ClassParams("background", "Background batch", weight=1.0, urgency=0),
    )
}


@dataclass(frozen=True)
class MixEntry:
    """`count` VMs of `vcpus` vCPUs each, of one feature class, running one workload."""

    feature_class: ClassParams
    vcpus: int
    workload: Workload
    count: int


def default_mix() -> list[MixEntry]:
    """A busy 8-core host: 4 VIP agents, 12 agents and 2 supervisors, each with a
    2-vCPU desktop, and 4 batch VMs in the background: 44 vCPUs on 8 physical
    CPUs (5.5:1), so that the CPUs are always busy and the scheduler decides who
    waits."""
    c = DEFAULT_CLASSES
    return [
        MixEntry(c["vip-agent"], 2, INTERACTIVE, 4),
        MixEntry(c["agent"], 2, INTERACTIVE, 12),
        MixEntry(c["supervisor"], 2, MIXED, 2),
        MixEntry(c["background"], 2, BATCH, 4),
    ]


def workload_for_class(name: str) -> Workload:
    """The workload a desktop of a feature class runs when only its class is known:
    supervisors mix interactive use and reports, everyone else is interactive."""
    return MIXED if "supervisor" in name else INTERACTIVE


class MixError(ValueError):
    """A mix that cannot be simulated (unknown class or workload, bad numbers)."""


def parse_mix(text: str, classes: dict[str, ClassParams]) -> list[MixEntry]:
    """A mix written as `class:vcpus:workload:count` items separated by commas,
    e.g. `vip-agent:2:interactive:4,background:2:batch:2`."""
    entries = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        fields = item.split(":")
        if len(fields) != 4:
            raise MixError(f"{item!r}: expected class:vcpus:workload:count")
        name, vcpus, workload, count = fields
        if name not in classes:
            raise MixError(f"{item!r}: unknown feature class {name!r}")
        if workload not in WORKLOADS:
            raise MixError(f"{item!r}: workload must be one of {', '.join(WORKLOADS)}")
        try:
            vcpus_n, count_n = int(vcpus), int(count)
        except ValueError:
            raise MixError(f"{item!r}: vcpus and count must be whole numbers") from None
        if not 1 <= vcpus_n <= 64 or not 1 <= count_n <= 1000:
            raise MixError(f"{item!r}: vcpus must be 1-64 and count 1-1000")
        entries.append(MixEntry(classes[name], vcpus_n, WORKLOADS[workload], count_n))
    if not entries:
        raise MixError("the mix is empty")
    return entries
