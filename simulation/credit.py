"""A discrete-time simulator of the hypervisor's Credit scheduler and of the
scheduling paper's BOOST variant (section 2.2), on one host's physical CPUs.

The model, rule by rule (the paper's text where it says something, Xen credit1
where it is silent):

- Every physical CPU (pCPU) has its own run queues: UNDER (credit > 0) and OVER
  (credit <= 0), first come first served within each; the BOOST variant adds a
  BOOST queue ordered by the VM's factor, highest first, served before UNDER.
- A dispatched vCPU runs a slice of at most 30 ms. It is not preempted by a vCPU
  waking up (the paper calls Credit non-preemptive): the pCPU chooses again only
  when the running vCPU blocks, its slice ends, it crosses into OVER or hits its cap.
- A 10 ms tick debits 100 credits from the vCPU running at that instant (Xen's
  sampled accounting: a vCPU that runs between two ticks pays nothing, one that
  runs across a tick pays for the whole tick; on average it evens out). A vCPU
  that goes from UNDER to OVER at a tick leaves the pCPU for the OVER tail.
- At the end of its slice a vCPU goes to the tail of its priority's queue. In the
  BOOST variant, a vCPU that would go to the UNDER tail goes into BOOST instead if
  its VM's factor is above 0, and the factor drops by 1.
- Credits are refilled only when every active (running or queued) vCPU is OVER,
  checked at each tick: the paper's rule, the default. `accounting="periodic"`
  refills every 30 ms as Xen does. A refill hands out one accounting period of
  credit (300 per pCPU) split between the VMs by weight (round(256 × F)) and
  evenly between a VM's vCPUs, limited by the VM's cap; credit is kept between
  -300 and +600 so an idle desktop cannot hoard it nor a batch job sink forever.
  BOOST factors are reset to the class's value at every refill.
- A cap (percent of one pCPU per vCPU) is enforced like KVM's CFS bandwidth
  (`quota:cpu_quota` per 100 ms `cpu_period`): a vCPU that used its quota is
  parked until the next period starts, and so is one that wakes with its quota
  used (its wake-up latency includes that wait).
- A pCPU whose own queues hold nothing better than OVER takes the first waiting
  BOOST or UNDER vCPU from another pCPU's queue (work stealing); OVER vCPUs are
  only taken by a pCPU that would otherwise be idle (Xen's rule, so no pCPU idles
  while work waits).
- A waking vCPU joins the queue of the pCPU it last ran on (UNDER or OVER tail by
  its credit). `boost_wakeups=True` also lets a waking vCPU of a VM with factor
  left into BOOST: an extension, not the paper's rule.

Time advances from event to event (tick, slice end, burst end, wake-up, cap
period) in whole milliseconds, so the simulation is exact at 1 ms and a minute of
a busy host takes well under a second. Every vCPU draws its bursts and think
times from its own seeded stream, so the two variants replay the same demand."""

import heapq
import logging
import random
from collections import deque
from dataclasses import dataclass, field

from portal.stats import percentile

from .workloads import ClassParams, MixEntry, Workload

logger = logging.getLogger(__name__)

TICK_MS = 10
SLICE_MS = 30
CREDITS_PER_TICK = 100
# One 30 ms accounting period of one pCPU, at 100 credits per 10 ms tick.
ACCOUNTING_PERIOD_MS = 30
CREDITS_PER_PERIOD = CREDITS_PER_TICK * ACCOUNTING_PERIOD_MS // TICK_MS
# An idle desktop banks at most two periods of credit. With one (300) a whole
# 30 ms slice, sampled by three 100-credit ticks, would always end OVER and the
# paper's "enough credit: run three ticks, then the UNDER tail" could never happen.
CREDIT_MAX = 2 * CREDITS_PER_PERIOD
CREDIT_MIN = -CREDITS_PER_PERIOD
CAP_PERIOD_MS = 100

PAPER = "paper"
PERIODIC = "periodic"
ACCOUNTING_MODES = (PAPER, PERIODIC)

BLOCKED, QUEUED, RUNNING, PARKED = "blocked", "queued", "running", "parked"


class SimVM:
    """One VM on the simulated host: its class's weight, cap and boost factor, and
    the factor left until the next refill (the paper keeps it per VM)."""

    def __init__(self, name: str, params: ClassParams, workload: Workload, vcpus: int):
        self.name = name
        self.params = params
        self.workload = workload
        self.factor = params.boost_factor
        cap = params.cpu_cap_percent
        # A cap of 100% or more of one pCPU per vCPU limits nothing.
        self.cap_budget_ms = cap * CAP_PERIOD_MS // 100 if 0 < cap < 100 else 0
        self.vcpus: list[VCpu] = []


class VCpu:
    """One virtual CPU: where it is queued or running, its credit, the burst it
    is working on and when it woke for it."""

    __slots__ = (
        "name",
        "vm",
        "pcpu",
        "credit",
        "state",
        "remaining",
        "woke_at",
        "burst_woke_at",
        "cap_used",
        "rng",
        "boost_key",
    )

    def __init__(self, name: str, vm: SimVM, pcpu: int, rng: random.Random):
        self.name = name
        self.vm = vm
        self.pcpu = pcpu
        self.credit = 0.0
        self.state = BLOCKED
        self.remaining = 0
        self.woke_at: int | None = None
        self.burst_woke_at: int | None = None
        self.cap_used = 0
        self.rng = rng
        self.boost_key = 0

    def __repr__(self) -> str:
        return f"<VCpu {self.name} {self.state} credit={self.credit:.0f}>"


class PCpu:
    """A physical CPU: the vCPU it runs, when that vCPU's slice ends, its queues."""

    def __init__(self, index: int):
        self.index = index
        self.running: VCpu | None = None
        self.slice_end = 0
        self.boost: list[VCpu] = []  # ordered by boost_key, highest first; FIFO among equals
        self.under: deque[VCpu] = deque()
        self.over: deque[VCpu] = deque()
        self.busy_ms = 0


@dataclass
class ClassStats:
    """What one feature class got during a run."""

    params: ClassParams
    vms: int = 0
    vcpus: int = 0
    latencies: list[int] = field(default_factory=list)
    responses: list[int] = field(default_factory=list)
    cpu_ms: int = 0
    bursts: int = 0


@dataclass(frozen=True)
class ClassFigures:
    """One class's figures for one run: scheduling latency (wake-up to first run),
    response (wake-up to end of the burst), and throughput."""

    name: str
    label: str
    urgency: int
    vms: int
    vcpus: int
    wakeups: int
    latency_mean_ms: float | None
    latency_p95_ms: float | None
    response_mean_ms: float | None
    response_p95_ms: float | None
    cpu_ms_per_s: float
    bursts_per_s: float


@dataclass(frozen=True)
class RunResult:
    """A whole run: per class, and the host's totals."""

    variant: str
    pcpus: int
    vcpus: int
    seconds: float
    classes: list[ClassFigures]
    utilisation: float
    cpu_ms_per_s: float
    bursts_per_s: float
    refills: int
    steals: int

    def by_class(self) -> dict[str, ClassFigures]:
        return {c.name: c for c in self.classes}


def _p95(values: list[int]) -> float | None:
    """Nearest-rank 95th percentile as a float; None without values."""
    value = percentile(values, 95)
    return None if value is None else float(value)


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


class CreditScheduler:
    """The simulator. Add VMs, then `run(until_ms)` (it may be called again to go
    on); `result()` gives the figures. With `trace=True` every dispatch is kept
    as (time ms, pCPU, vCPU name) in `dispatches`, for tests and debugging."""

    def __init__(
        self,
        pcpus: int,
        *,
        boost: bool = False,
        accounting: str = PAPER,
        boost_wakeups: bool = False,
        seed: int = 1,
        trace: bool = False,
    ):
        if pcpus < 1:
            raise ValueError("at least one physical CPU")
        if accounting not in ACCOUNTING_MODES:
            raise ValueError(f"accounting must be one of {ACCOUNTING_MODES}")
        self.pcpus = [PCpu(i) for i in range(pcpus)]
        self.boost = boost
        self.accounting = accounting
        self.boost_wakeups = boost_wakeups
        self.seed = seed
        self.trace = trace
        self.dispatches: list[tuple[int, int, str]] = []
        self.vms: list[SimVM] = []
        self.vcpus: list[VCpu] = []
        self.stats: dict[str, ClassStats] = {}
        self.now = 0
        self.started = False
        self.refills = 0
        self.steals = 0
        self._wakes: list[tuple[int, int, VCpu]] = []
        self._wake_seq = 0
        self._first_wake: dict[str, int | None] = {}
        self._has_caps = False

    # Building the host.

    def add_vm(
        self,
        name: str,
        params: ClassParams,
        workload: Workload,
        vcpus: int = 1,
        *,
        pcpu: int | None = None,
        start_ms: int | None = None,
    ) -> SimVM:
        """Add a VM. Its vCPUs go round-robin over the pCPUs unless `pcpu` pins
        them all to one. A sleeping workload's first wake-up is at `start_ms`, or
        at a random point of its first think time so desktops do not start in step."""
        if self.started:
            raise RuntimeError("add VMs before the simulation starts")
        if workload.burst_ms[0] < 1:
            raise ValueError("a burst is at least 1 ms")
        vm = SimVM(name, params, workload, vcpus)
        for index in range(vcpus):
            home = pcpu if pcpu is not None else len(self.vcpus) % len(self.pcpus)
            vcpu_name = f"{name}/{index}"
            rng = random.Random(f"{self.seed}:{vcpu_name}")
            vcpu = VCpu(vcpu_name, vm, home, rng)
            vm.vcpus.append(vcpu)
            self.vcpus.append(vcpu)
            self._first_wake[vcpu_name] = start_ms
        self.vms.append(vm)
        stats = self.stats.setdefault(params.name, ClassStats(params))
        stats.vms += 1
        stats.vcpus += vcpus
        return vm

    def start(self) -> None:
        """Hand out the first credits and set every vCPU's first wake-up. Called
        by `run`; call it first to look at or change the state at time 0."""
        if self.started:
            return
        self.started = True
        self._refill()
        for vcpu in self.vcpus:
            workload = vcpu.vm.workload
            first = self._first_wake[vcpu.name]
            if first is None:
                first = 0 if workload.cpu_bound else vcpu.rng.randint(0, workload.think_ms[1])
            self._push_wake(vcpu, first)

    # The rules.

    def _push_wake(self, vcpu: VCpu, at: int) -> None:
        self._wake_seq += 1
        heapq.heappush(self._wakes, (at, self._wake_seq, vcpu))

    def _draw_burst(self, vcpu: VCpu) -> int:
        workload = vcpu.vm.workload
        if workload.long_chance and vcpu.rng.random() < workload.long_chance:
            return vcpu.rng.randint(*workload.long_burst_ms)
        return vcpu.rng.randint(*workload.burst_ms)

    def _wake(self, vcpu: VCpu, now: int) -> None:
        vcpu.remaining = self._draw_burst(vcpu)
        # A batch vCPU never sleeps: its start is not a wake-up a user waits on.
        vcpu.woke_at = None if vcpu.vm.workload.cpu_bound else now
        vcpu.burst_woke_at = vcpu.woke_at
        if self._at_cap(vcpu):
            # Its last burst used the whole quota: it may not run before the next
            # cap period, so it waits parked, not in a queue, and its wait counts.
            vcpu.state = PARKED
            return
        self._enqueue(vcpu, self.pcpus[vcpu.pcpu], slice_ended=False)

    @staticmethod
    def _at_cap(vcpu: VCpu) -> bool:
        budget = vcpu.vm.cap_budget_ms
        return bool(budget) and vcpu.cap_used >= budget

    def _enqueue(self, vcpu: VCpu, pcpu: PCpu, *, slice_ended: bool) -> None:
        """Put a runnable vCPU at the tail of its priority's queue, or into BOOST
        when the variant's rule says so."""
        vcpu.state = QUEUED
        vcpu.pcpu = pcpu.index
        if vcpu.credit <= 0:
            pcpu.over.append(vcpu)
            return
        vm = vcpu.vm
        if self.boost and vm.factor > 0 and (slice_ended or self.boost_wakeups):
            vm.factor -= 1
            vcpu.boost_key = vm.factor
            position = len(pcpu.boost)
            for i, queued in enumerate(pcpu.boost):
                if queued.boost_key < vcpu.boost_key:
                    position = i
                    break
            pcpu.boost.insert(position, vcpu)
            return
        pcpu.under.append(vcpu)

    def _steal(self, pcpu: PCpu, *, over_too: bool) -> VCpu | None:
        """The first waiting vCPU of another pCPU, BOOST before UNDER (and OVER
        last, only for a pCPU that would otherwise idle)."""
        count = len(self.pcpus)
        others = [self.pcpus[(pcpu.index + k) % count] for k in range(1, count)]
        for other in others:
            if other.boost:
                return other.boost.pop(0)
        for other in others:
            if other.under:
                return other.under.popleft()
        if over_too:
            for other in others:
                if other.over:
                    return other.over.popleft()
        return None

    def _pick(self, pcpu: PCpu) -> VCpu | None:
        if pcpu.boost:
            return pcpu.boost.pop(0)
        if pcpu.under:
            return pcpu.under.popleft()
        stolen = self._steal(pcpu, over_too=not pcpu.over)
        if stolen is not None:
            self.steals += 1
            return stolen
        if pcpu.over:
            return pcpu.over.popleft()
        return None

    def _dispatch(self, pcpu: PCpu, now: int) -> None:
        vcpu = self._pick(pcpu)
        # A vCPU that used its quota is parked, never dispatched: running it for
        # 0 ms would record a wake-up latency it did not have.
        while vcpu is not None and self._at_cap(vcpu):
            vcpu.state = PARKED
            vcpu = self._pick(pcpu)
        if vcpu is None:
            return
        vcpu.state = RUNNING
        vcpu.pcpu = pcpu.index
        pcpu.running = vcpu
        pcpu.slice_end = now + SLICE_MS
        if vcpu.woke_at is not None:
            self.stats[vcpu.vm.params.name].latencies.append(now - vcpu.woke_at)
            vcpu.woke_at = None
        if self.trace:
            self.dispatches.append((now, pcpu.index, vcpu.name))

    def _refill(self) -> None:
        """Hand out one accounting period of credit by weight, reset the BOOST
        factors, and move the OVER vCPUs that are UNDER again to the UNDER tail."""
        total = CREDITS_PER_PERIOD * len(self.pcpus)
        weights = sum(vm.params.xen_weight for vm in self.vms) or 1
        for vm in self.vms:
            per_vcpu = total * vm.params.xen_weight / weights / len(vm.vcpus)
            if vm.cap_budget_ms:
                per_vcpu = min(per_vcpu, CREDITS_PER_PERIOD * vm.params.cpu_cap_percent / 100)
            for vcpu in vm.vcpus:
                vcpu.credit = min(CREDIT_MAX, vcpu.credit + per_vcpu)
        for vm in self.vms:
            vm.factor = vm.params.boost_factor
        for pcpu in self.pcpus:
            still_over: deque[VCpu] = deque()
            for vcpu in pcpu.over:
                (pcpu.under if vcpu.credit > 0 else still_over).append(vcpu)
            pcpu.over = still_over
        self.refills += 1

    def _all_active_over(self) -> bool:
        """True when some vCPU is running or queued and none of them is UNDER."""
        active = False
        for pcpu in self.pcpus:
            if pcpu.boost or pcpu.under:
                return False
            if pcpu.running is not None:
                if pcpu.running.credit > 0:
                    return False
                active = True
            if pcpu.over:
                active = True
        return active

    def _on_running(self, pcpu: PCpu, now: int, tick: bool) -> None:
        """The rules that apply to a running vCPU at an event: tick debit, end of
        its burst, cap, crossing into OVER, end of its slice."""
        vcpu = pcpu.running
        crossed = False
        if tick:
            was_under = vcpu.credit > 0
            vcpu.credit = max(CREDIT_MIN, vcpu.credit - CREDITS_PER_TICK)
            crossed = was_under and vcpu.credit <= 0
        if vcpu.remaining == 0:
            stats = self.stats[vcpu.vm.params.name]
            stats.bursts += 1
            workload = vcpu.vm.workload
            if workload.cpu_bound:
                vcpu.remaining = self._draw_burst(vcpu)
            else:
                stats.responses.append(now - vcpu.burst_woke_at)
                vcpu.state = BLOCKED
                pcpu.running = None
                self._push_wake(vcpu, now + vcpu.rng.randint(*workload.think_ms))
                return
        if self._at_cap(vcpu):
            vcpu.state = PARKED
            pcpu.running = None
            return
        if crossed or now >= pcpu.slice_end:
            pcpu.running = None
            self._enqueue(vcpu, pcpu, slice_ended=not crossed)

    def _events(self, now: int) -> None:
        while self._wakes and self._wakes[0][0] <= now:
            _, _, vcpu = heapq.heappop(self._wakes)
            self._wake(vcpu, now)
        if now % CAP_PERIOD_MS == 0:
            for vm in self.vms:
                if not vm.cap_budget_ms:
                    continue
                for vcpu in vm.vcpus:
                    vcpu.cap_used = 0
                    if vcpu.state == PARKED:
                        self._enqueue(vcpu, self.pcpus[vcpu.pcpu], slice_ended=False)
        tick = now > 0 and now % TICK_MS == 0
        for pcpu in self.pcpus:
            if pcpu.running is not None:
                self._on_running(pcpu, now, tick)
        if self.accounting == PAPER:
            if tick and self._all_active_over():
                self._refill()
        elif now > 0 and now % ACCOUNTING_PERIOD_MS == 0:
            self._refill()
        for pcpu in self.pcpus:
            if pcpu.running is None:
                self._dispatch(pcpu, now)

    def _next_event(self, now: int, until: int) -> int:
        """The next instant at which a rule may apply; it runs once per event, so
        it is kept lean."""
        nearest = min(until, (now // TICK_MS + 1) * TICK_MS)
        if self.accounting == PERIODIC:
            nearest = min(nearest, (now // ACCOUNTING_PERIOD_MS + 1) * ACCOUNTING_PERIOD_MS)
        if self._has_caps:
            nearest = min(nearest, (now // CAP_PERIOD_MS + 1) * CAP_PERIOD_MS)
        if self._wakes and self._wakes[0][0] < nearest:
            nearest = self._wakes[0][0]
        for pcpu in self.pcpus:
            vcpu = pcpu.running
            if vcpu is None:
                continue
            if now + vcpu.remaining < nearest:
                nearest = now + vcpu.remaining
            if pcpu.slice_end < nearest:
                nearest = pcpu.slice_end
            budget = vcpu.vm.cap_budget_ms
            if budget and now + budget - vcpu.cap_used < nearest:
                nearest = now + budget - vcpu.cap_used
        return nearest

    def run(self, until_ms: int) -> None:
        """Simulate up to `until_ms` (absolute time, ms)."""
        self.start()
        self._has_caps = any(vm.cap_budget_ms for vm in self.vms)
        now = self.now
        while now < until_ms:
            self._events(now)
            nearest = self._next_event(now, until_ms)
            step = nearest - now
            for pcpu in self.pcpus:
                vcpu = pcpu.running
                if vcpu is None:
                    continue
                vcpu.remaining -= step
                vcpu.cap_used += step
                pcpu.busy_ms += step
                self.stats[vcpu.vm.params.name].cpu_ms += step
            now = nearest
        self.now = now

    # Figures.

    def result(self, variant: str = "") -> RunResult:
        seconds = self.now / 1000 or 1.0
        classes = []
        ordered = sorted(self.stats.values(), key=lambda s: (-s.params.urgency, s.params.name))
        for stats in ordered:
            classes.append(
                ClassFigures(
                    name=stats.params.name,
                    label=stats.params.label,
                    urgency=stats.params.urgency,
                    vms=stats.vms,
                    vcpus=stats.vcpus,
                    wakeups=len(stats.latencies),
                    latency_mean_ms=_mean(stats.latencies),
                    latency_p95_ms=_p95(stats.latencies),
                    response_mean_ms=_mean(stats.responses),
                    response_p95_ms=_p95(stats.responses),
                    cpu_ms_per_s=stats.cpu_ms / seconds,
                    bursts_per_s=stats.bursts / seconds,
                )
            )
        busy = sum(p.busy_ms for p in self.pcpus)
        return RunResult(
            variant=variant or ("boost" if self.boost else "credit"),
            pcpus=len(self.pcpus),
            vcpus=len(self.vcpus),
            seconds=seconds,
            classes=classes,
            utilisation=busy / (len(self.pcpus) * self.now) if self.now else 0.0,
            cpu_ms_per_s=busy / seconds,
            bursts_per_s=sum(s.bursts for s in self.stats.values()) / seconds,
            refills=self.refills,
            steals=self.steals,
        )


def simulate(
    mix: list[MixEntry],
    *,
    pcpus: int,
    seconds: float,
    seed: int = 1,
    boost: bool = False,
    accounting: str = PAPER,
    boost_wakeups: bool = False,
) -> RunResult:
    """Run one variant of the scheduler on a host mix for `seconds` of host time."""
    scheduler = CreditScheduler(
        pcpus, boost=boost, accounting=accounting, boost_wakeups=boost_wakeups, seed=seed
    )
    for entry in mix:
        for number in range(1, entry.count + 1):
            scheduler.add_vm(
                f"{entry.feature_class.name}-{entry.workload.name}-{entry.vcpus}-{number}",
                entry.feature_class,
                entry.workload,
                entry.vcpus,
            )
    scheduler.run(round(seconds * 1000))
    return scheduler.result()


@dataclass(frozen=True)
class ClassChange:
    """One class under both variants, and how BOOST changed it (negative: lower)."""

    credit: ClassFigures
    boost: ClassFigures

    @property
    def name(self) -> str:
        return self.credit.name

    @property
    def label(self) -> str:
        return self.credit.label

    def change(self, attribute: str) -> float | None:
        """Relative change from Credit to BOOST, e.g. -0.4 for 40% lower."""
        before, after = getattr(self.credit, attribute), getattr(self.boost, attribute)
        if before is None or after is None or before == 0:
            return None
        return (after - before) / before


@dataclass(frozen=True)
class Comparison:
    """Both variants on the same mix, seed and host."""

    credit: RunResult
    boost: RunResult
    seed: int
    accounting: str
    boost_wakeups: bool

    def classes(self) -> list[ClassChange]:
        boosted = self.boost.by_class()
        return [ClassChange(c, boosted[c.name]) for c in self.credit.classes]

    @property
    def throughput_change(self) -> float:
        before = self.credit.cpu_ms_per_s
        return (self.boost.cpu_ms_per_s - before) / before if before else 0.0


def compare(
    mix: list[MixEntry],
    *,
    pcpus: int,
    seconds: float,
    seed: int = 1,
    accounting: str = PAPER,
    boost_wakeups: bool = False,
) -> Comparison:
    """Credit and BOOST on the same host mix, with the same demand."""
    options = dict(
        pcpus=pcpus, seconds=seconds, seed=seed, accounting=accounting, boost_wakeups=boost_wakeups
    )
    credit = simulate(mix, boost=False, **options)
    boost = simulate(mix, boost=True, **options)
    logger.info(
        "scheduler simulation: %s pCPUs, %s vCPUs, %s s: utilisation %.2f / %.2f",
        pcpus,
        credit.vcpus,
        seconds,
        credit.utilisation,
        boost.utilisation,
    )
    return Comparison(
        credit=credit, boost=boost, seed=seed, accounting=accounting, boost_wakeups=boost_wakeups
    )
