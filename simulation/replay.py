"""A working day of a simulated region, replayed once per placement policy.

The day is one seeded event stream, the same for every policy:

- a region of hosts of three sizes, one placement group per size (large hosts
  answer faster than small ones; every host's response time grows with its load);
- seats of three feature classes (VIP agent, agent, supervisor; the weights F and
  flavors of the demo cloud) working a morning and an afternoon shift that
  overlap in the early afternoon, the peak;
- pools that pre-warm each shift's desktops from `prewarm_lead_minutes` (90 by
  default) before it starts and keep a small buffer of ready desktops during the
  day; agents arriving around
  the shift start (the login surge) take ready desktops or wait for a boot;
- help-desk swaps of broken desktops during the day (the old VM is deleted, the
  user gets a fresh one);
- logouts at shift end: a released desktop is rebuilt for the pool while the pool
  is short, deleted otherwise;
- one large host failing mid-afternoon: its users' desktops are booted again
  elsewhere (evacuation), its boots in progress fail, its idle desktops are lost.

A host boots at most `host_boot_cap` desktops at once and a boot takes longer
the more boots share the host (a boot storm saturates its disk). Dynamic priority
never places on a host at its cap (the request waits for a boot to end);
round-robin and the Nova weigher do not look at boot caps, so their boots queue
on the chosen host, as they would in front of a Nova compute's build limit.
Queues are served most urgent first: evacuations, then users waiting, then pool
boots; a more urgent class first within each.

Host CPU utilisation is the busy share of the host's cores (a desktop in use
keeps 0.45 of each vCPU busy, a boot 1.0, an idle desktop 0.1); RAM utilisation
is the share of the host's allocatable RAM (after overcommit) held by VMs."""

import heapq
import math
import random
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from portal.stats import percentile

from .replay_policies import POLICIES, Policy

HOUR = 3600
MINUTE = 60
DAY_START = 6 * HOUR
DAY_END = 22 * HOUR + 30 * MINUTE
SAMPLE_EVERY = MINUTE
CURVE_EVERY = 5 * MINUTE
LATE_AFTER = 5 * MINUTE  # a desktop within five minutes is the service goal
KEEP_PREWARM_AFTER_START = 20 * MINUTE

ACTIVITY = {"queued": 0.0, "booting": 1.0, "ready": 0.1, "in-use": 0.45}

# Queue order by kind of boot: lower is served first.
KIND_RANK = {"evacuation": 0, "user": 1, "rebuild": 2, "pool": 2}


@dataclass(frozen=True)
class SeatClass:
    name: str
    label: str
    share: float
    vcpus: int
    memory_mb: int
    weight: float
    urgency: int


CLASSES = (
    SeatClass("vip-agent", "VIP agent", 0.10, 4, 8192, 3.0, 3),
    SeatClass("agent", "Agent", 0.80, 2, 4096, 2.0, 2),
    SeatClass("supervisor", "Supervisor", 0.10, 2, 4096, 1.0, 1),
)
CLASS_BY_NAME = {c.name: c for c in CLASSES}


@dataclass(frozen=True)
class HostKind:
    group: str
    threads: int
    memory_mb: int
    base_response_ms: float


HOST_KINDS = {
    "L": HostKind("large", 128, 416 * 1024, 4.0),
    "M": HostKind("medium", 96, 352 * 1024, 6.0),
    "S": HostKind("small", 64, 224 * 1024, 9.0),
}
# Three large, four medium, three small in every ten hosts.
LAYOUT = "LMSMLMSMLS"


@dataclass(frozen=True)
class Shift:
    label: str
    starts: int
    ends: int
    share: float


SHIFTS = (
    Shift("morning", 8 * HOUR, 16 * HOUR + 30 * MINUTE, 0.55),
    Shift("afternoon", 13 * HOUR, 21 * HOUR + 30 * MINUTE, 0.45),
)


@dataclass(frozen=True)
class ReplayConfig:
    """The parameters of one replay; everything else is fixed by the model."""

    seed: int = 1
    hosts: int = 40
    seats: int = 3000
    host_boot_cap: int = 3
    mu: float = -0.05
    max_failures: int = 3
    boot_seconds: float = 150.0
    boot_slowdown: float = 0.4  # each other boot on the host adds this share
    cpu_allocation_ratio: float = 2.0
    ram_allocation_ratio: float = 1.2
    swaps_per_seat_hour: float = 0.005
    prewarm_lead_minutes: int = 90
    # Most boots the pools start at once in the region (the portal's region cap);
    # 0: the sum of the hosts' caps. Users' and evacuation boots are not held back.
    region_boot_cap: int = 0
    host_failure: bool = True


@dataclass(frozen=True)
class HostSpec:
    name: str
    group: str
    vcpus: int
    memory_mb: int
    base_response_ms: float


@dataclass(frozen=True)
class User:
    id: int
    seat_class: str
    shift: str
    login_at: float
    logout_at: float


@dataclass(frozen=True)
class Event:
    at: float
    kind: str  # login, logout, swap, host-failure
    user: int | None = None
    host: str | None = None


@dataclass(frozen=True)
class Day:
    hosts: tuple[HostSpec, ...]
    users: tuple[User, ...]
    events: tuple[Event, ...]
    seats: dict  # (shift label, class name) -> seats


def seat_split(seats: int) -> dict[tuple[str, str], int]:
    """Seats per shift and class; the remainders go to the largest class."""
    split = {}
    for shift in SHIFTS:
        for seat_class in CLASSES:
            split[(shift.label, seat_class.name)] = int(seats * shift.share * seat_class.share)
    split[(SHIFTS[0].label, "agent")] += seats - sum(split.values())
    return split


def build_day(config: ReplayConfig) -> Day:
    """The day's hosts and event stream: a pure function of the configuration,
    so every policy replays exactly the same day."""
    rng = random.Random(config.seed)
    hosts = []
    for index in range(config.hosts):
        kind = HOST_KINDS[LAYOUT[index % len(LAYOUT)]]
        hosts.append(
            HostSpec(
                name=f"cmp-{index + 1:03d}",
                group=kind.group,
                vcpus=kind.threads,
                memory_mb=kind.memory_mb,
                base_response_ms=kind.base_response_ms,
            )
        )
    seats = seat_split(config.seats)
    users, events = [], []
    for shift in SHIFTS:
        for seat_class in CLASSES:
            for _ in range(seats[(shift.label, seat_class.name)]):
                # Most arrive in the minutes before the start; a few are late.
                offset = min(20 * MINUTE, max(-25 * MINUTE, rng.gauss(-4 * MINUTE, 6 * MINUTE)))
                login = shift.starts + offset
                logout = shift.ends + rng.uniform(0, 15 * MINUTE)
                user = User(len(users), seat_class.name, shift.label, login, logout)
                users.append(user)
                events.append(Event(login, "login", user=user.id))
                events.append(Event(logout, "logout", user=user.id))
                moment = login + 10 * MINUTE
                rate = config.swaps_per_seat_hour / HOUR
                while rate > 0:
                    moment += rng.expovariate(rate)
                    if moment >= logout:
                        break
                    events.append(Event(moment, "swap", user=user.id))
    if config.host_failure:
        large = [h for h in hosts if h.group == "large"] or hosts
        failed = rng.choice(large)
        events.append(
            Event(
                14 * HOUR + 30 * MINUTE + rng.uniform(0, 20 * MINUTE),
                "host-failure",
                host=failed.name,
            )
        )
    events.sort(key=lambda e: (e.at, e.kind, e.user if e.user is not None else -1))
    return Day(hosts=tuple(hosts), users=tuple(users), events=tuple(events), seats=seats)


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Population standard deviation over the mean; 0 for no load at all."""
    if not values:
        return 0.0
    mean = sum(values) / len(values)
    if mean <= 0:
        return 0.0
    # Plain floats: statistics.pstdev is exact but ten times slower, and this
    # runs for every sample of every replay.
    variance = sum((v - mean) ** 2 for v in values) / len(values)
    return math.sqrt(variance) / mean


def summary(values: Sequence[float]) -> dict:
    return {
        "count": len(values),
        "mean": round(statistics.fmean(values), 1) if values else 0.0,
        "p95": round(percentile(values, 95), 1) if values else 0.0,
        "max": round(max(values), 1) if values else 0.0,
    }


class _Host:
    """A simulated host's capacity, allocations and boots, as a policy sees it."""

    def __init__(self, spec: HostSpec, config: ReplayConfig):
        self.name = spec.name
        self.group = spec.group
        self.vcpus = spec.vcpus
        self.memory_mb = spec.memory_mb
        self.base_response_ms = spec.base_response_ms
        self.cpu_allocation_ratio = config.cpu_allocation_ratio
        self.ram_allocation_ratio = config.ram_allocation_ratio
        self.boot_cap = config.host_boot_cap
        self.up = True
        self.vcpus_used = 0
        self.memory_mb_used = 0
        self.cpu_load = 0.0
        self.booting: set[int] = set()
        self.queue: list = []
        self.vms: set[int] = set()
        self.in_use: Counter = Counter()
        self.last_placed_at: float | None = None

    @property
    def boots_in_flight(self) -> int:
        return len(self.booting)

    @property
    def cpu_util(self) -> float:
        return min(1.0, self.cpu_load / self.vcpus)

    @property
    def ram_util(self) -> float:
        return self.memory_mb_used / (self.memory_mb * self.ram_allocation_ratio)

    @property
    def response_ms(self) -> float:
        """Slower the busier the host and the more boots it runs."""
        util = self.cpu_util
        return self.base_response_ms * (1 + 3 * util * util) + 4 * len(self.booting)


class _VM:
    __slots__ = ("id", "seat_class", "host", "state", "requested_at", "kind", "key")

    def __init__(self, vm_id: int, seat_class: SeatClass, kind: str, now: float, seq: int):
        self.id = vm_id
        self.seat_class = seat_class
        self.host: _Host | None = None
        self.state = "pending"
        self.requested_at = now
        self.kind = kind
        self.key = (KIND_RANK[kind], -seat_class.urgency, now, seq)


# Order of simultaneous events: boots end first, so their desktops can serve a
# login of the same second; the pool and the samples look last.
_ORDER = {
    "boot-done": 0,
    "host-failure": 1,
    "logout": 2,
    "swap": 3,
    "login": 4,
    "tick": 5,
    "sample": 6,
}


class _Replay:
    """One policy over one day. Not for reuse: build a new one per run."""

    def __init__(self, day: Day, config: ReplayConfig, policy: Policy):
        self.day = day
        self.config = config
        self.policy = policy
        self.hosts = [_Host(spec, config) for spec in day.hosts]
        self.host_by_name = {h.name: h for h in self.hosts}
        self.users = {u.id: u for u in day.users}
        self.class_seats = Counter()
        for (_, name), count in day.seats.items():
            self.class_seats[name] += count
        self.seq = 0
        self.queue: list = []
        self.pending: list = []  # requests waiting for any host's boot slot
        self.vms: dict[int, _VM] = {}
        self.ready: dict[str, deque] = {c.name: deque() for c in CLASSES}
        self.ready_count: Counter = Counter()
        self.in_progress: Counter = Counter()
        self.waiting: dict[str, list] = {c.name: [] for c in CLASSES}
        self.waiting_count: Counter = Counter()
        self.wait_since: dict[int, tuple[float, str]] = {}
        self.sessions: dict[int, _VM] = {}
        self.logged_in: Counter = Counter()
        self.first_prewarm = min(s.starts for s in SHIFTS) - config.prewarm_lead_minutes * MINUTE
        self.last_end = max(s.ends for s in SHIFTS)
        self.region_boot_cap = config.region_boot_cap or config.hosts * config.host_boot_cap
        # measurements
        self.boot_waits: list[float] = []
        self.class_boot_waits: dict[str, list[float]] = {c.name: [] for c in CLASSES}
        self.user_waits: dict[str, list[float]] = {"login": [], "swap": [], "evacuation": []}
        self.class_login_waits: dict[str, list[float]] = {c.name: [] for c in CLASSES}
        self.late_logins: Counter = Counter()
        self.refused: Counter = Counter()
        self.failed_boots = 0
        self.lost_ready = 0
        self.displaced = 0
        self.never_served: Counter = Counter()
        self.samples: list[tuple[float, float, float, float, float]] = []
        self.class_host_cpu: dict[str, list[float]] = {c.name: [] for c in CLASSES}

    # -- the event loop ----------------------------------------------------------

    def push(self, at: float, kind: str, payload=None) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, _ORDER[kind], self.seq, kind, payload))

    def run(self) -> dict:
        for event in self.day.events:
            self.push(event.at, event.kind, event)
        moment = DAY_START
        while moment <= DAY_END:
            self.push(moment, "tick")
            self.push(moment, "sample")
            moment += SAMPLE_EVERY
        while self.queue:
            at, _, _, kind, payload = heapq.heappop(self.queue)
            if at > DAY_END:
                break
            getattr(self, "_on_" + kind.replace("-", "_"))(at, payload)
        for _, reason in self.wait_since.values():
            self.never_served[reason] += 1
        return self.results()

    # -- VMs -----------------------------------------------------------------------

    def _set_state(self, vm: _VM, state: str) -> None:
        host = vm.host
        if host is not None:
            vcpus = vm.seat_class.vcpus
            host.cpu_load += (ACTIVITY.get(state, 0.0) - ACTIVITY.get(vm.state, 0.0)) * vcpus
            if vm.state == "in-use":
                host.in_use[vm.seat_class.name] -= 1
            if state == "in-use":
                host.in_use[vm.seat_class.name] += 1
        vm.state = state

    def _free(self, vm: _VM) -> None:
        """Delete the VM: its host gets the room back."""
        host = vm.host
        self._set_state(vm, "gone")
        if host is not None:
            host.vcpus_used -= vm.seat_class.vcpus
            host.memory_mb_used -= vm.seat_class.memory_mb
            host.vms.discard(vm.id)
            host.booting.discard(vm.id)
        self.vms.pop(vm.id, None)

    def request_boot(self, seat_class: SeatClass, kind: str, now: float) -> bool:
        """Ask the policy for a host for a new desktop; False when refused."""
        self.seq += 1
        vm = _VM(self.seq, seat_class, kind, now, self.seq)
        decision = self.policy(self.hosts, seat_class, now)
        if decision.host is None and not decision.wait:
            self.refused[kind] += 1
            return False
        self.vms[vm.id] = vm
        self.in_progress[seat_class.name] += 1
        if decision.wait:
            heapq.heappush(self.pending, (vm.key, vm.id))
        else:
            self._place(vm, self.host_by_name[decision.host], now)
        return True

    def _place(self, vm: _VM, host: _Host, now: float) -> None:
        vm.host = host
        host.vcpus_used += vm.seat_class.vcpus
        host.memory_mb_used += vm.seat_class.memory_mb
        host.vms.add(vm.id)
        # Several placements in one second still take turns in `place`.
        host.last_placed_at = now + self.seq * 1e-6
        self._set_state(vm, "queued")
        if len(host.booting) < host.boot_cap:
            self._start_boot(vm, now)
        else:
            heapq.heappush(host.queue, (vm.key, vm.id))

    def _start_boot(self, vm: _VM, now: float) -> None:
        host = vm.host
        host.booting.add(vm.id)
        self._set_state(vm, "booting")
        sharing = len(host.booting) - 1
        seconds = self.config.boot_seconds * (1 + self.config.boot_slowdown * sharing)
        self.push(now + seconds, "boot-done", vm.id)

    def _dispatch_pending(self, now: float) -> None:
        """Place the waiting requests, most urgent first, while a host can take them."""
        while self.pending:
            _, vm_id = self.pending[0]
            vm = self.vms[vm_id]
            decision = self.policy(self.hosts, vm.seat_class, now)
            if decision.wait:
                return
            heapq.heappop(self.pending)
            if decision.host is None:
                self.refused[vm.kind] += 1
                self.in_progress[vm.seat_class.name] -= 1
                self.vms.pop(vm.id)
                continue
            self._place(vm, self.host_by_name[decision.host], now)

    def _on_boot_done(self, now: float, vm_id: int) -> None:
        vm = self.vms.get(vm_id)
        if vm is None or vm.state != "booting":
            return  # its host failed meanwhile
        host = vm.host
        host.booting.discard(vm.id)
        self.in_progress[vm.seat_class.name] -= 1
        wait = now - vm.requested_at
        self.boot_waits.append(wait)
        self.class_boot_waits[vm.seat_class.name].append(wait)
        self._set_state(vm, "ready")
        self._hand_out(vm, now)
        while host.queue and len(host.booting) < host.boot_cap:
            _, next_id = heapq.heappop(host.queue)
            queued = self.vms.get(next_id)
            if queued is not None and queued.state == "queued":
                self._start_boot(queued, now)
        self._dispatch_pending(now)

    # -- users ---------------------------------------------------------------------

    def _hand_out(self, vm: _VM, now: float) -> None:
        """A ready desktop goes to the first waiting user of its class, else to
        the pool."""
        name = vm.seat_class.name
        heap = self.waiting[name]
        while heap:
            _, _, user_id = heapq.heappop(heap)
            if user_id not in self.wait_since:
                continue  # left before being served
            self.waiting_count[name] -= 1
            self._serve(user_id, vm, now)
            return
        self.ready[name].append(vm)
        self.ready_count[name] += 1

    def _serve(self, user_id: int, vm: _VM, now: float) -> None:
        since, reason = self.wait_since.pop(user_id)
        wait = now - since
        self.user_waits[reason].append(wait)
        if reason == "login":
            user = self.users[user_id]
            self.class_login_waits[user.seat_class].append(wait)
            if wait > LATE_AFTER:
                self.late_logins[user.shift] += 1
        self.sessions[user_id] = vm
        self._set_state(vm, "in-use")

    def _claim(self, seat_class: SeatClass) -> _VM | None:
        ready = self.ready[seat_class.name]
        while ready:
            vm = ready.popleft()
            if vm.state == "ready":
                self.ready_count[seat_class.name] -= 1
                return vm
        return None

    def _wait(self, user_id: int, reason: str, now: float) -> None:
        user = self.users[user_id]
        seat_class = CLASS_BY_NAME[user.seat_class]
        vm = self._claim(seat_class)
        if vm is not None:
            self.wait_since[user_id] = (now, reason)
            self._serve(user_id, vm, now)
            return
        self.wait_since[user_id] = (now, reason)
        rank = 0 if reason == "evacuation" else 1
        heapq.heappush(self.waiting[seat_class.name], (rank, now, user_id))
        self.waiting_count[seat_class.name] += 1
        if reason != "evacuation":
            self._refill(seat_class, now)

    def _on_login(self, now: float, event: Event) -> None:
        user = self.users[event.user]
        self.logged_in[(user.shift, user.seat_class)] += 1
        self._wait(user.id, "login", now)

    def _on_swap(self, now: float, event: Event) -> None:
        vm = self.sessions.pop(event.user, None)
        if vm is None:
            return  # not at a desktop right now
        self._free(vm)
        self._wait(event.user, "swap", now)

    def _on_logout(self, now: float, event: Event) -> None:
        user = self.users[event.user]
        if event.user in self.wait_since:
            _, reason = self.wait_since.pop(event.user)
            self.waiting_count[user.seat_class] -= 1
            self.never_served[reason] += 1
            return
        vm = self.sessions.pop(event.user, None)
        if vm is None:
            return
        seat_class = vm.seat_class
        short = self.ready_count[seat_class.name] + self.in_progress[seat_class.name] < (
            self._target(seat_class, now) + self.waiting_count[seat_class.name]
        )
        if not short or not vm.host.up:
            self._free(vm)
            return
        # Rebuilt in place for the pool: no placement, a boot on the same host.
        vm.kind = "rebuild"
        vm.requested_at = now
        self.seq += 1
        vm.key = (KIND_RANK["rebuild"], -seat_class.urgency, now, self.seq)
        self.in_progress[seat_class.name] += 1
        self._set_state(vm, "queued")
        if len(vm.host.booting) < vm.host.boot_cap:
            self._start_boot(vm, now)
        else:
            heapq.heappush(vm.host.queue, (vm.key, vm.id))

    def _on_host_failure(self, now: float, event: Event) -> None:
        host = self.host_by_name[event.host]
        host.up = False
        owners = {vm.id: user_id for user_id, vm in self.sessions.items() if vm.host is host}
        evacuated = []
        for vm_id in sorted(host.vms):
            vm = self.vms[vm_id]
            if vm.state in ("queued", "booting"):
                self.failed_boots += 1
                self.in_progress[vm.seat_class.name] -= 1
            elif vm.state == "ready":
                self.lost_ready += 1
                self.ready_count[vm.seat_class.name] -= 1
            elif vm.state == "in-use":
                user_id = owners[vm.id]
                del self.sessions[user_id]
                evacuated.append((user_id, vm.seat_class))
            self._free(vm)
        host.queue.clear()
        self.displaced += len(evacuated)
        # Most urgent class first, then in seat order.
        evacuated.sort(key=lambda item: (-item[1].urgency, item[0]))
        for user_id, _ in evacuated:
            self._wait(user_id, "evacuation", now)
        for user_id, seat_class in evacuated:
            if user_id in self.wait_since:
                self.request_boot(seat_class, "evacuation", now)

    # -- the pools -----------------------------------------------------------------

    def _target(self, seat_class: SeatClass, now: float) -> int:
        """Ready desktops the class's pool keeps: a small buffer through the
        working day, plus, from the pre-warm start until shortly after a shift
        starts, the seats of that shift whose agents have not logged in yet."""
        if not self.first_prewarm <= now < self.last_end:
            return 0
        target = max(2, math.ceil(0.02 * self.class_seats[seat_class.name]))
        lead = self.config.prewarm_lead_minutes * MINUTE
        for shift in SHIFTS:
            if shift.starts - lead <= now < shift.starts + KEEP_PREWARM_AFTER_START:
                seats = self.day.seats[(shift.label, seat_class.name)]
                target += max(0, seats - self.logged_in[(shift.label, seat_class.name)])
        return target

    def _refill(self, seat_class: SeatClass, now: float) -> None:
        """Boot what the pool lacks; stop at the first refusal, as the portal's
        refill does (the next pass tries again)."""
        name = seat_class.name
        wanted = self._target(seat_class, now) + self.waiting_count[name]
        missing = wanted - self.ready_count[name] - self.in_progress[name]
        for _ in range(max(0, missing)):
            kind = "user" if self.waiting_count[name] > self.in_progress[name] else "pool"
            if kind == "pool" and sum(self.in_progress.values()) >= self.region_boot_cap:
                break
            if not self.request_boot(seat_class, kind, now):
                break

    def _on_tick(self, now: float, _) -> None:
        for seat_class in sorted(CLASSES, key=lambda c: -c.urgency):
            self._refill(seat_class, now)

    def _on_sample(self, now: float, _) -> None:
        up = [h for h in self.hosts if h.up]
        cpu = [h.cpu_util for h in up]
        ram = [h.ram_util for h in up]
        self.samples.append(
            (
                now,
                coefficient_of_variation(cpu),
                coefficient_of_variation(ram),
                statistics.fmean(cpu) if cpu else 0.0,
                max(cpu, default=0.0),
            )
        )
        for seat_class in CLASSES:
            users = sum(h.in_use[seat_class.name] for h in up)
            if users:
                load = sum(h.cpu_util * h.in_use[seat_class.name] for h in up) / users
                self.class_host_cpu[seat_class.name].append(load)

    # -- the report ------------------------------------------------------------------

    def results(self) -> dict:
        # Balance is averaged over the shifts' hours: before the first shift and
        # after the last, a few hosts hold a few desktops and the CV of near-idle
        # hosts says nothing about placement.
        first = min(shift.starts for shift in SHIFTS)
        loaded = [s for s in self.samples if first <= s[0] <= self.last_end and s[3] > 0]
        peak = max(loaded, key=lambda s: s[3]) if loaded else (0.0, 0.0, 0.0, 0.0, 0.0)
        curve = [
            [round(s[0] / MINUTE), round(s[1], 4), round(s[2], 4)]
            for s in self.samples
            if int(s[0]) % CURVE_EVERY == 0
        ]
        per_class = {
            c.name: {
                "label": c.label,
                "weight": c.weight,
                "host_cpu": round(statistics.fmean(self.class_host_cpu[c.name]), 3)
                if self.class_host_cpu[c.name]
                else 0.0,
                "boot_wait": summary(self.class_boot_waits[c.name]),
                "login_wait": summary(self.class_login_waits[c.name]),
            }
            for c in CLASSES
        }
        return {
            "cv_cpu_mean": round(statistics.fmean(s[1] for s in loaded), 4) if loaded else 0.0,
            "cv_ram_mean": round(statistics.fmean(s[2] for s in loaded), 4) if loaded else 0.0,
            "cv_cpu_peak": round(peak[1], 4),
            "cv_ram_peak": round(peak[2], 4),
            "peak_minute": round(peak[0] / MINUTE),
            "peak_mean_cpu": round(peak[3], 3),
            "peak_max_cpu": round(peak[4], 3),
            "boot_wait": summary(self.boot_waits),
            "login_wait": summary(self.user_waits["login"]),
            "swap_wait": summary(self.user_waits["swap"]),
            "evacuation_wait": summary(self.user_waits["evacuation"]),
            "late_logins": dict(sorted(self.late_logins.items())),
            "late_logins_total": sum(self.late_logins.values()),
            "failures": {
                "refused": sum(self.refused.values()),
                "refused_evacuations": self.refused["evacuation"],
                "boots_failed_on_failed_host": self.failed_boots,
                "ready_lost_on_failed_host": self.lost_ready,
                "users_displaced": self.displaced,
                "never_served": sum(self.never_served.values()),
                "never_served_evacuated": self.never_served["evacuation"],
            },
            "per_class": per_class,
            "curve": curve,
        }


def replay(day: Day, config: ReplayConfig, policy: Policy) -> dict:
    """Replay the day under one policy and measure it."""
    return _Replay(day, config, policy).run()


def compare(
    config: ReplayConfig,
    policies: Sequence[str] | None = None,
    on_policy: Callable[[str], None] | None = None,
) -> dict:
    """Replay the same day under each policy; the whole report, ready to store
    as JSON."""
    started = time.perf_counter()
    day = build_day(config)
    results = []
    for key in policies or list(POLICIES):
        label, factory = POLICIES[key]
        if on_policy:
            on_policy(key)
        began = time.perf_counter()
        measured = replay(day, config, factory(mu=config.mu, max_failures=config.max_failures))
        measured.update(key=key, label=label, seconds=round(time.perf_counter() - began, 2))
        results.append(measured)
    failure = next((e for e in day.events if e.kind == "host-failure"), None)
    return {
        "config": asdict(config),
        "region": {
            "hosts": len(day.hosts),
            "groups": dict(Counter(h.group for h in day.hosts)),
            "vcpus": sum(h.vcpus for h in day.hosts),
            "memory_gb": sum(h.memory_mb for h in day.hosts) // 1024,
            "users": len(day.users),
            "swaps": sum(1 for e in day.events if e.kind == "swap"),
            "failed_host": failure.host if failure else None,
            "failed_minute": round(failure.at / MINUTE) if failure else None,
        },
        "policies": results,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _waits(figures: dict) -> str:
    return f"{figures['mean']:.0f} / {figures['p95']:.0f} / {figures['max']:.0f}"


def table_rows(report: dict) -> list[tuple[str, list[str]]]:
    """The comparison as rows of text, one value per policy: what the command
    prints, the page shows and the README quotes."""
    policies = report["policies"]

    def row(label: str, value: Callable[[dict], str]) -> tuple[str, list[str]]:
        return label, [value(p) for p in policies]

    rows = [
        row("host CPU CV, day average", lambda p: f"{p['cv_cpu_mean']:.3f}"),
        row("host CPU CV at the peak", lambda p: f"{p['cv_cpu_peak']:.3f}"),
        row("host RAM CV, day average", lambda p: f"{p['cv_ram_mean']:.3f}"),
        row("host RAM CV at the peak", lambda p: f"{p['cv_ram_peak']:.3f}"),
        row("busiest host CPU at the peak", lambda p: f"{p['peak_max_cpu']:.0%}"),
        row("boots", lambda p: str(p["boot_wait"]["count"])),
        row("boot wait mean / p95 / max (s)", lambda p: _waits(p["boot_wait"])),
        row("login wait mean / p95 / max (s)", lambda p: _waits(p["login_wait"])),
        row("logins served after 5 min", lambda p: str(p["late_logins_total"])),
        row("swap wait mean / p95 / max (s)", lambda p: _waits(p["swap_wait"])),
        row("users on the failed host", lambda p: str(p["failures"]["users_displaced"])),
        row("evacuation wait mean / p95 / max (s)", lambda p: _waits(p["evacuation_wait"])),
        row(
            "boots lost on the failed host",
            lambda p: str(p["failures"]["boots_failed_on_failed_host"]),
        ),
        row("placements refused (no host fits)", lambda p: str(p["failures"]["refused"])),
        row("users never served", lambda p: str(p["failures"]["never_served"])),
    ]
    for seat_class in CLASSES:
        rows.append(
            row(
                f"{seat_class.label} (F={seat_class.weight:g}): host CPU in use",
                lambda p, name=seat_class.name: f"{p['per_class'][name]['host_cpu']:.0%}",
            )
        )
        rows.append(
            row(
                f"{seat_class.label}: boot wait p95 (s)",
                lambda p, name=seat_class.name: f"{p['per_class'][name]['boot_wait']['p95']:.0f}",
            )
        )
    return rows


def format_table(report: dict) -> str:
    """The comparison as a Markdown table."""
    labels = [p["label"] for p in report["policies"]]
    lines = [
        "| measure | " + " | ".join(labels) + " |",
        "| --- |" + " ---: |" * len(labels),
    ]
    for label, values in table_rows(report):
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    return "\n".join(lines)
