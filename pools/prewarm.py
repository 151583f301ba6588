"""The boot-storm planner: when must pre-warming start so that every desktop of a
shift is booted and ready when the shift starts?

Pure functions over plain data (no database), so each rule is tested directly;
`pools.selectors.prewarm_inputs` gathers the facts and `pools.services.prewarm`
applies the result as calendar windows.

How it computes. Time is a week of local wall-clock time cut into ticks of
`TICK` seconds (shifts repeat weekly; a lead that crosses Monday 00:00 wraps to
Sunday). Every occurrence of a shift (one per weekday it runs on) must have all
its seats booted by `shift start - safety margin`. Occurrences are planned one
after the other, the earliest start in the week first, and each one is placed
*as late as possible*: walking back from its deadline, every tick starts as many
boots as the caps leave room for, given the boots already planned for earlier
shifts. A boot holds a slot for the pool's boot time, and at any moment the boots
of a pool stay within its cap, those of a region within the smaller of the
region's cap and the sum of its up hosts' caps, all boots within the global cap,
and no 60 seconds start more boots than the boots-per-minute limit. An earlier
shift is therefore never delayed by a later one; a later shift that overlaps it
has to start earlier instead. The lead of a shift is that of its most demanding
day. A shift is *impossible* when the walk reaches the longest lead allowed with
seats still unbooted, when the region's up hosts cannot hold the desktops of the
shifts at work at the same time (vCPUs and memory after overcommit), when the
pool's maximum size is below the seats, or when the pool or region is disabled.
It is still given the earliest start allowed, so it gets as many desktops as the
caps give."""

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import time

TICK = 10  # seconds; boots take tens of seconds to minutes
DAY_SECONDS = 24 * 3600
WEEK_TICKS = 7 * DAY_SECONDS // TICK
RATE_TICKS = 60 // TICK  # the boots-per-minute limit counts starts in any 60 s
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MIN_BOOT_SAMPLES = 5


@dataclass(frozen=True)
class ShiftDemand:
    """One shift as the planner sees it."""

    key: int
    label: str
    pool_id: int
    weekdays: tuple[int, ...]  # ISO; empty: every day
    starts_at: time
    ends_at: time
    seats: int


@dataclass(frozen=True)
class PoolFacts:
    pool_id: int
    name: str
    region_id: int
    max_concurrent_boots: int
    max_size: int
    boot_seconds: float
    vcpus: int = 1
    memory_mb: int = 1024
    enabled: bool = True
    boot_source: str = ""


@dataclass(frozen=True)
class HostFacts:
    """An up host: its cap of concurrent boots and what it holds after overcommit."""

    boot_cap: int
    vcpus: float = math.inf
    memory_mb: float = math.inf


@dataclass(frozen=True)
class RegionFacts:
    region_id: int
    name: str
    max_concurrent_boots: int | None = None
    # The region's up hosts; None when the region has no host inventory at all (its
    # cloud places VMs itself): then no host cap and no capacity check apply.
    hosts: tuple[HostFacts, ...] | None = None
    enabled: bool = True


@dataclass(frozen=True)
class Limits:
    """The cloud-wide caps and the planner's own settings."""

    max_concurrent_boots: int = 50
    max_boots_per_minute: int = 60
    margin_seconds: int = 600
    max_lead_seconds: int = 12 * 3600


@dataclass
class Occurrence:
    """One day's instance of a shift and the boots planned for it."""

    key: int
    pool_id: int
    region_id: int
    day: int
    start_tick: int  # in the week, 0 = Monday 00:00
    end_tick: int  # unwrapped: may pass the week's end
    seats: int
    boot_ticks: int
    starts: dict[int, int] = field(default_factory=dict)  # unwrapped tick -> boots started

    @property
    def placed(self) -> int:
        return sum(self.starts.values())

    @property
    def first_tick(self) -> int | None:
        return min(self.starts) if self.starts else None


@dataclass
class ShiftPlan:
    """The verdict on one shift: when pre-warming starts and whether it suffices."""

    shift: ShiftDemand
    pool: PoolFacts
    region: RegionFacts
    lead_seconds: int
    prewarm_start: time
    days_before: int  # 1 when pre-warming starts the day before the shift
    limited_by: str
    boots_per_minute: float
    problems: list[str] = field(default_factory=list)
    shortfall: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> str:
        return "ok" if self.ok else "impossible"

    @property
    def window_weekdays(self) -> list[int]:
        """The weekdays of the calendar window: the window belongs to the day it
        starts on, so a lead past midnight moves it to the day before."""
        return sorted({(day - 1 - self.days_before) % 7 + 1 for day in self.shift.weekdays})

    @property
    def lead_text(self) -> str:
        hours, minutes = divmod(math.ceil(self.lead_seconds / 60), 60)
        return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"

    @property
    def prewarm_label(self) -> str:
        start = self.prewarm_start.strftime("%H:%M")
        return f"{start} the day before" if self.days_before else start


@dataclass
class Plan:
    shifts: list[ShiftPlan]
    occurrences: list[Occurrence]
    regions: dict[int, RegionFacts]

    def for_region(self, region_id: int) -> list[ShiftPlan]:
        return [s for s in self.shifts if s.region.region_id == region_id]


def boot_seconds_observed(
    samples: list[float], *, default: float, floor: float, min_samples: int = MIN_BOOT_SAMPLES
) -> tuple[float, str]:
    """A pool's boot time: the median of its recent boots when there are enough of
    them (a median, so one stuck boot does not stretch every plan), else the
    default; never below the floor. Returns the seconds and where they come from."""
    if len(samples) >= min_samples:
        seconds = statistics.median(samples)
        source = f"median of {len(samples)} recent boots"
    else:
        seconds = default
        source = f"default ({len(samples)} recent boots, {min_samples} needed)"
    if seconds < floor:
        return float(floor), f"{source}, raised to the floor"
    return float(seconds), source


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def _region_cap(region: RegionFacts) -> tuple[int | None, str]:
    """The region's own concurrency limit and its name: the smaller of its cap
    and the sum of its up hosts' caps."""
    candidates = []
    if region.max_concurrent_boots is not None:
        candidates.append((region.max_concurrent_boots, f"region boot cap ({region.name})"))
    if region.hosts is not None:
        total = sum(h.boot_cap for h in region.hosts)
        candidates.append((total, f"host boot caps ({len(region.hosts)} up hosts)"))
    if not candidates:
        return None, ""
    return min(candidates, key=lambda c: c[0])


def binding_cap(pool: PoolFacts, region: RegionFacts, limits: Limits) -> tuple[str, float]:
    """Which cap bounds the pool's boot rate when it boots alone, and that rate
    in boots per minute (concurrency / boot time, or the per-minute limit)."""
    per_minute = 60.0 / max(pool.boot_seconds, 1.0)
    candidates = [
        (pool.max_concurrent_boots * per_minute, f"pool boot cap ({pool.max_concurrent_boots})"),
        (limits.max_concurrent_boots * per_minute, "global boot cap"),
        (float(limits.max_boots_per_minute), "boots per minute"),
    ]
    cap, name = _region_cap(region)
    if cap is not None:
        candidates.append((cap * per_minute, f"{name}: {cap}"))
    rate, name = min(candidates, key=lambda c: c[0])
    return name, rate


class _Timeline:
    """Boots planned so far: slots held per key (global, region, pool) and boots
    started per tick, over a cyclic week."""

    def __init__(self) -> None:
        self.busy: dict[tuple, defaultdict] = defaultdict(lambda: defaultdict(int))
        self.started: defaultdict = defaultdict(int)

    def span(self, key: tuple, tick: int, length: int) -> list[int]:
        """Slots held under `key` at each tick of [tick, tick + length)."""
        busy = self.busy[key]
        return [busy.get((tick + i) % WEEK_TICKS, 0) for i in range(length)]

    def start_room(self, tick: int, limit: int) -> tuple[int, int]:
        """How many boots may start at `tick` under the per-minute limit (the
        fullest 60 s window containing it decides), and, when none may, the
        first tick of the earliest full window: no start inside it fits either."""
        counts = [
            self.started.get((tick + i) % WEEK_TICKS, 0) for i in range(-RATE_TICKS + 1, RATE_TICKS)
        ]
        sums = [sum(counts[i : i + RATE_TICKS]) for i in range(RATE_TICKS)]
        room = limit - max(sums)
        if room > 0:
            return room, tick
        first_full = next(i for i, total in enumerate(sums) if total >= limit)
        return 0, tick - RATE_TICKS + 1 + first_full

    def add(self, keys: list[tuple], tick: int, length: int, count: int) -> None:
        for key in keys:
            busy = self.busy[key]
            for i in range(length):
                busy[(tick + i) % WEEK_TICKS] += count
        self.started[tick % WEEK_TICKS] += count


def _place(
    occ: Occurrence,
    pool: PoolFacts,
    region: RegionFacts,
    limits: Limits,
    timeline: _Timeline,
    deadline: int,
    earliest: int,
) -> None:
    """Plan the occurrence's boots as late as possible before `deadline`, never
    before `earliest`, in the room the earlier occurrences left."""
    length = occ.boot_ticks
    region_cap, _ = _region_cap(region)
    caps = [(("pool", pool.pool_id), pool.max_concurrent_boots)]
    caps.append((("global",), limits.max_concurrent_boots))
    if region_cap is not None:
        caps.append((("region", region.region_id), region_cap))
    keys = [key for key, _ in caps]
    remaining = occ.seats
    tick = deadline - length
    while remaining > 0 and tick >= earliest:
        room, window_start = timeline.start_room(tick, limits.max_boots_per_minute)
        if room <= 0:
            tick = min(tick, window_start) - 1
            continue
        room = min(room, remaining)
        full_at = None
        for key, cap in caps:
            held = timeline.span(key, tick, length)
            if max(held) >= cap:
                full_at = next(i for i, n in enumerate(held) if n >= cap)
                break
            room = min(room, cap - max(held))
        if full_at is not None:
            # Every start whose boot would still run at that full tick is refused
            # too: jump to the latest start whose boot ends before it.
            tick = tick + full_at - length
            continue
        timeline.add(keys, tick, length, room)
        occ.starts[tick] = room
        remaining -= room
        tick -= 1


def _occurrences(shift: ShiftDemand, pool: PoolFacts) -> list[Occurrence]:
    start = _seconds(shift.starts_at)
    duration = (_seconds(shift.ends_at) - start) % DAY_SECONDS or DAY_SECONDS
    boot_ticks = max(1, math.ceil(pool.boot_seconds / TICK))
    days = shift.weekdays or tuple(range(1, 8))
    result = []
    for day in sorted(set(days)):
        start_tick = ((day - 1) * DAY_SECONDS + start) // TICK
        result.append(
            Occurrence(
                key=shift.key,
                pool_id=pool.pool_id,
                region_id=pool.region_id,
                day=day,
                start_tick=start_tick,
                end_tick=start_tick + duration // TICK,
                seats=shift.seats,
                boot_ticks=boot_ticks,
            )
        )
    return result


def _at_work(occ: Occurrence, tick: int) -> bool:
    """Whether the occurrence's shift is on at `tick` (cyclic week)."""
    return (tick - occ.start_tick) % WEEK_TICKS < occ.end_tick - occ.start_tick


def _capacity_problems(
    occurrences: list[Occurrence], pools: dict[int, PoolFacts], regions: dict[int, RegionFacts]
) -> dict[int, str]:
    """For each shift, a problem when at one of its starts the desktops of every
    shift then at work in its region need more vCPUs or memory than the region's
    up hosts hold. Other VMs of the region are not counted."""
    by_region = defaultdict(list)
    for occ in occurrences:
        by_region[occ.region_id].append(occ)
    problems: dict[int, str] = {}
    for region_id, occs in by_region.items():
        hosts = regions[region_id].hosts
        if not hosts:
            continue  # no inventory: unknown; no up host: told elsewhere
        vcpus = sum(h.vcpus for h in hosts)
        memory = sum(h.memory_mb for h in hosts)
        for occ in occs:
            working = [o for o in occs if _at_work(o, occ.start_tick)]
            need_vcpus = sum(o.seats * pools[o.pool_id].vcpus for o in working)
            need_memory = sum(o.seats * pools[o.pool_id].memory_mb for o in working)
            if need_memory > memory or need_vcpus > vcpus:
                problems.setdefault(
                    occ.key,
                    f"not enough host capacity: the shifts at work on {DAY_NAMES[occ.day - 1]} "
                    f"need {need_vcpus} vCPUs and {need_memory} MB; the region's up hosts "
                    f"hold {vcpus:.0f} vCPUs and {memory:.0f} MB",
                )
    return problems


def plan_prewarm(
    shifts: list[ShiftDemand],
    pools: dict[int, PoolFacts],
    regions: dict[int, RegionFacts],
    limits: Limits,
) -> Plan:
    """Plan every shift (see the module's docstring for the rules)."""
    margin_ticks = math.ceil(limits.margin_seconds / TICK)
    max_lead_ticks = limits.max_lead_seconds // TICK
    occurrences = []
    for shift in shifts:
        occurrences.extend(_occurrences(shift, pools[shift.pool_id]))
    occurrences.sort(key=lambda o: (o.start_tick, o.key))
    timeline = _Timeline()
    for occ in occurrences:
        pool = pools[occ.pool_id]
        _place(
            occ,
            pool,
            regions[pool.region_id],
            limits,
            timeline,
            deadline=occ.start_tick - margin_ticks,
            earliest=occ.start_tick - max_lead_ticks,
        )
    capacity = _capacity_problems(occurrences, pools, regions)
    by_shift = defaultdict(list)
    for occ in occurrences:
        by_shift[occ.key].append(occ)
    plans = [
        _shift_plan(shift, pools, regions, limits, by_shift[shift.key], capacity.get(shift.key))
        for shift in shifts
    ]
    plans.sort(key=lambda p: (p.region.name, p.shift.starts_at, p.shift.label))
    return Plan(shifts=plans, occurrences=occurrences, regions=regions)


def _shift_plan(
    shift: ShiftDemand,
    pools: dict[int, PoolFacts],
    regions: dict[int, RegionFacts],
    limits: Limits,
    occs: list[Occurrence],
    capacity_problem: str | None,
) -> ShiftPlan:
    pool = pools[shift.pool_id]
    region = regions[pool.region_id]
    limited_by, rate = binding_cap(pool, region, limits)
    problems = []
    if not pool.enabled:
        problems.append("the pool is disabled: nothing boots")
    if not region.enabled:
        problems.append("the region is disabled: nothing boots")
    if region.hosts is not None and not region.hosts:
        problems.append("no host of the region is up")
    if shift.seats > pool.max_size:
        problems.append(f"the pool may hold at most {pool.max_size} VMs")
    if capacity_problem:
        problems.append(capacity_problem)
    # The lead of the most demanding day; a day whose boots did not all fit needs
    # the longest lead allowed (and falls short).
    lead_ticks, shortfall, short_day = 0, 0, None
    for occ in occs:
        missing = occ.seats - occ.placed
        if missing:
            lead = limits.max_lead_seconds // TICK
            if missing > shortfall:
                shortfall, short_day = missing, occ.day
        else:
            lead = occ.start_tick - occ.first_tick
        lead_ticks = max(lead_ticks, lead)
    if shortfall and region.hosts != ():
        hours = limits.max_lead_seconds / 3600
        problems.append(
            f"even starting {hours:g} h ahead, {shortfall} of {shift.seats} desktops would not "
            f"be ready on {DAY_NAMES[short_day - 1]} (bound by the {limited_by})"
        )
    # Pre-warming starts on a whole minute, rounding earlier (a tick may end mid-minute).
    shift_start = _seconds(shift.starts_at)
    start = shift_start - lead_ticks * TICK
    start -= start % 60
    days_before = 1 if start < 0 else 0
    clock = start % DAY_SECONDS
    return ShiftPlan(
        shift=shift,
        pool=pool,
        region=region,
        lead_seconds=shift_start - start,
        prewarm_start=time(clock // 3600, clock % 3600 // 60),
        days_before=days_before,
        limited_by=limited_by,
        boots_per_minute=rate,
        problems=problems,
        shortfall=shortfall,
    )
