"""The world of the list-page benchmark and of the scale tests: an operation the
size of a large call-center cloud (ten thousand VMs, twenty thousand terminals,
tens of thousands of audit events), written straight into the database with
bulk inserts. Going through the services would take hours at this size; the
pages only read, so rows that are consistent with each other are all they need.

The world is deterministic (a seeded random generator), so two runs measure the
same data, and its names follow patterns a benchmark can aim a search at: users
`<prefix>-user<n>`, VMs `<pool>-<n>`, terminals `TC-<prefix>-<n>`. Two worlds
with different prefixes fit in one database."""

import random
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, time, timedelta
from html.parser import HTMLParser

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.utils import timezone

from allocation.choices import BindingPolicy, TerminalStatus
from allocation.models import (
    Allocator,
    AllocatorPool,
    Binding,
    DesktopSession,
    Site,
    Terminal,
    VMSwap,
)
from cloud.choices import HostState
from cloud.models import Host, Region, SimHost, SimulatedRegion
from maintenance.choices import (
    ItemStatus,
    MaintenanceAction,
    RunStatus,
    ScheduleKind,
)
from maintenance.models import GuestCredential, MaintenanceRun, MaintenanceTask, RunItem, RunLog
from maintenance.policy import RunSpec
from monitoring.choices import (
    AlertKind,
    AlertSeverity,
    AlertStatus,
    IncidentKind,
    IncidentStatus,
)
from monitoring.models import Alert, ConnectRecord, Incident, IncidentEvent, ProbeResult
from pools.choices import VMState
from pools.models import VM, FeatureClass, PoolSchedule, SchedulingPolicy, VMPool
from portal.models import AuditEvent

BATCH = 1000
HISTORY_DAYS = 30


@dataclass(frozen=True)
class WorldSize:
    """How many of each object the world holds. `bindings` are the active ones
    (each holds a VM in use); the `unclosed_*` counts are the alerts and incidents
    still shown by default, the rest being closed history."""

    regions: int = 8
    hosts: int = 200
    pools: int = 40
    vms: int = 10_000
    sites: int = 20
    terminals: int = 20_000
    users: int = 6_000
    allocators: int = 30
    bindings: int = 5_000
    released_bindings: int = 2_000
    audit_events: int = 50_000
    alerts: int = 2_000
    unclosed_alerts: int = 40
    incidents: int = 300
    unclosed_incidents: int = 6
    tasks: int = 200
    runs: int = 2_000
    items_per_run: int = 10
    swaps: int = 500
    connects: int = 3_000
    probes: int = 1_440

    def problems(self) -> list[str]:
        """Why this world cannot be built (an empty list when it can)."""
        found = [
            f"{f.name} must not be negative" for f in fields(self) if getattr(self, f.name) < 0
        ]
        for name in ("regions", "hosts", "pools", "sites", "allocators"):
            if getattr(self, name) < 1:
                found.append(f"{name} must be at least 1")
        if self.bindings > self.vms:
            found.append("bindings cannot outnumber VMs (each holds a VM of its own)")
        if self.bindings > self.users:
            found.append("bindings cannot outnumber users (each serves a user of its own)")
        if self.bindings > self.terminals:
            found.append("bindings cannot outnumber terminals (a terminal binding needs its own)")
        if self.items_per_run > self.vms:
            found.append("items_per_run cannot exceed the VMs")
        if self.unclosed_alerts > self.alerts:
            found.append("unclosed_alerts cannot exceed alerts")
        if self.unclosed_incidents > self.incidents:
            found.append("unclosed_incidents cannot exceed incidents")
        if (self.users or self.released_bindings or self.swaps) and not self.terminals:
            found.append("sessions need at least one terminal")
        if self.runs and not self.tasks:
            found.append("runs need at least one task")
        if (self.released_bindings or self.swaps or self.runs) and not self.vms:
            found.append("bindings, swaps and runs need VMs")
        if self.released_bindings and not self.users:
            found.append("released bindings need users")
        if self.swaps and not self.bindings:
            found.append("swaps need active bindings")
        return found


# More than 200 of every listed object (the largest page) and of the rows each
# list shows by default, yet built in well under a second on SQLite.
SMALL_WORLD = WorldSize(
    regions=205,
    hosts=230,
    pools=205,
    vms=700,
    sites=4,
    terminals=260,
    users=300,
    allocators=205,
    bindings=250,
    released_bindings=30,
    audit_events=260,
    alerts=240,
    unclosed_alerts=220,
    incidents=230,
    unclosed_incidents=215,
    tasks=205,
    runs=215,
    items_per_run=2,
    swaps=20,
    connects=40,
    probes=20,
)

# A few of everything: every page has something to show.
TINY_WORLD = WorldSize(
    regions=2,
    hosts=4,
    pools=3,
    vms=30,
    sites=2,
    terminals=20,
    users=15,
    allocators=3,
    bindings=10,
    released_bindings=3,
    audit_events=20,
    alerts=6,
    unclosed_alerts=3,
    incidents=4,
    unclosed_incidents=2,
    tasks=3,
    runs=4,
    items_per_run=2,
    swaps=2,
    connects=10,
    probes=5,
)

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
RUNNING_VM_STATES = (VMState.READY, VMState.IN_USE, VMState.RECYCLING, VMState.QUARANTINED)

FIRST_NAMES = ["Li", "Wang", "Zhang", "Liu", "Chen", "Yang", "Anna", "Marc", "Sara", "Tom"]
LAST_NAMES = ["Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun", "Meyer", "Rossi", "Silva", "Kim"]
STAFF = ["admin", "ops-anna", "ops-marc", "hd-sara", "hd-tom", "system"]

# (action, object type) pairs of the audit trail, with their weights.
AUDIT_ACTIONS = [
    ("binding.create", "allocation.binding", 30),
    ("binding.release", "allocation.binding", 20),
    ("vm.swap", "pools.vm", 8),
    ("vm.reboot", "pools.vm", 8),
    ("vm.state", "pools.vm", 15),
    ("terminal.enroll", "allocation.terminal", 6),
    ("pool.update", "pools.vmpool", 3),
    ("host.update", "cloud.host", 3),
    ("alert.acknowledge", "monitoring.alert", 2),
    ("maintenancetask.update", "maintenance.maintenancetask", 2),
    ("staff.login", "auth.user", 3),
]


@contextmanager
def _timestamps_as_given(*model_classes: type[models.Model]) -> Iterator[None]:
    """Let bulk inserts keep the times the world sets (history over weeks) instead
    of `auto_now` / `auto_now_add` stamping every row with this instant."""
    stamped = [
        field
        for model in model_classes
        for field in model._meta.concrete_fields
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    ]
    saved = [(field, field.auto_now, field.auto_now_add) for field in stamped]
    for field in stamped:
        field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


STAMPED_MODELS = (
    Host,
    VM,
    Binding,
    DesktopSession,
    VMSwap,
    AuditEvent,
    Alert,
    Incident,
    IncidentEvent,
    MaintenanceTask,
    MaintenanceRun,
    RunLog,
    GuestCredential,
    ConnectRecord,
    ProbeResult,
)


def _insert(model: type[models.Model], objects: Sequence[models.Model]) -> list:
    """Bulk insert, stamping the required times still empty (the automatic ones
    the world does not set) with now."""
    now = timezone.now()
    required_times = [
        field.attname
        for field in model._meta.concrete_fields
        if isinstance(field, models.DateTimeField) and not field.null
    ]
    for obj in objects:
        for name in required_times:
            if getattr(obj, name) is None:
                setattr(obj, name, now)
    return model.objects.bulk_create(objects, batch_size=BATCH)


class _Builder:
    """Builds one world; each step keeps the rows the next ones point at."""

    def __init__(self, size: WorldSize, prefix: str, seed: int):
        self.size = size
        self.prefix = prefix
        self.rng = random.Random(f"{prefix}:{seed}")
        self.now = timezone.now()
        # Addresses differ between two worlds of one database.
        self.base = zlib.crc32(prefix.encode()) & 0xFF

    def ago(self, *, days: float = HISTORY_DAYS) -> datetime:
        return self.now - timedelta(seconds=self.rng.uniform(0, days * 86400))

    def uid(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4).hex

    def mac(self, index: int) -> str:
        octets = [0x02, self.base, (index >> 24) & 0xFF, (index >> 16) & 0xFF]
        octets += [(index >> 8) & 0xFF, index & 0xFF]
        return ":".join(f"{octet:02x}" for octet in octets)

    def address(self, network: int, index: int) -> str:
        return f"{network}.{self.base}.{(index >> 8) & 0xFF}.{index & 0xFF or 1}"

    # -- the cloud ------------------------------------------------------------------

    def cloud(self) -> None:
        size, p = self.size, self.prefix
        SchedulingPolicy.objects.get_or_create(pk=1)
        self.regions = _insert(
            Region,
            [
                Region(
                    name=f"{p}-r{i:03d}",
                    label=f"Region {i} ({p})",
                    max_concurrent_boots=40 if i % 2 else None,
                    hosts_synced_at=self.now,
                )
                for i in range(size.regions)
            ],
        )
        _insert(SimulatedRegion, [SimulatedRegion(region=r) for r in self.regions])
        self.hosts = []
        for i in range(size.hosts):
            state = self.rng.choices(
                [HostState.UP, HostState.DOWN, HostState.DISABLED], weights=[96, 3, 1]
            )[0]
            down_since = self.ago(days=1) if state == HostState.DOWN else None
            self.hosts.append(
                Host(
                    region=self.regions[i % size.regions],
                    name=f"{p}-cmp-{i:04d}",
                    state=state,
                    vcpus=64,
                    memory_mb=524_288,
                    response_ms=self.rng.uniform(5, 60),
                    placement_group=f"rack-{i % 10}",
                    down_since=down_since,
                    failed_at=down_since if down_since and i % 2 else None,
                    load_1m=self.rng.uniform(0.5, 30),
                    memory_free_mb=self.rng.randint(10_000, 300_000),
                    disk_latency_ms=self.rng.uniform(0.2, 8),
                    agent_reported_at=self.now,
                    last_placed_at=self.ago(days=1),
                )
            )
        _insert(Host, self.hosts)
        _insert(
            SimHost,
            [
                SimHost(
                    region=h.region,
                    name=h.name,
                    address=self.address(198, i),
                    vcpus=h.vcpus,
                    memory_mb=h.memory_mb,
                    state=h.state,
                )
                for i, h in enumerate(self.hosts)
            ],
        )
        self.hosts_by_region: dict[int, list[Host]] = {}
        for host in self.hosts:
            self.hosts_by_region.setdefault(host.region_id, []).append(host)

    def pools(self) -> None:
        size, p = self.size, self.prefix
        features = [
            FeatureClass.objects.get_or_create(name=name, defaults={"label": label})[0]
            for name, label in [
                ("agent", "Agent"),
                ("vip", "VIP agent"),
                ("supervisor", "Supervisor"),
            ]
        ]
        per_pool = max(1, size.vms // size.pools)
        self.pool_list = _insert(
            VMPool,
            [
                VMPool(
                    name=f"{p}-pool-{i:03d}",
                    label=f"Pool {i} ({p})",
                    region=self.regions[i % size.regions],
                    feature_class=features[i % len(features)],
                    flavor="desk.medium",
                    vcpus=2,
                    memory_mb=4096,
                    image="win10-2024.06",
                    target_ready=max(1, per_pool // 5),
                    min_ready=max(1, per_pool // 20),
                    max_size=per_pool * 2,
                    max_concurrent_boots=10,
                    paused_at=self.ago(days=1) if i % 17 == 5 else None,
                    pause_reason="5 boot failures in 10 minutes" if i % 17 == 5 else "",
                )
                for i in range(size.pools)
            ],
        )
        _insert(
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
                for pool in self.pool_list
            ],
        )

    def vms(self) -> None:
        size = self.size
        order = list(range(size.vms))
        self.rng.shuffle(order)
        in_use = set(order[: size.bindings])
        idle_states, weights = zip(*IDLE_VM_STATES, strict=True)
        self.vm_list = []
        running_on: Counter[str] = Counter()
        for i in range(size.vms):
            pool = self.pool_list[i % size.pools]
            state = VMState.IN_USE if i in in_use else self.rng.choices(idle_states, weights)[0]
            hosts = self.hosts_by_region.get(pool.region_id, [])
            host_name = self.rng.choice(hosts).name if hosts and state != VMState.REQUESTED else ""
            requested = self.ago()
            booted = state not in (VMState.REQUESTED, VMState.BUILDING)
            running = state in RUNNING_VM_STATES
            if running and host_name:
                running_on[host_name] += 1
            self.vm_list.append(
                VM(
                    pool=pool,
                    name=f"{pool.name}-{i:05d}",
                    server_id=self.uid() if state != VMState.REQUESTED else "",
                    state=state,
                    host_name=host_name,
                    ip_address=self.address(10, i) if running else None,
                    error="No valid host was found." if state == VMState.ERROR else "",
                    requested_at=requested,
                    boot_started_at=requested + timedelta(seconds=3) if host_name else None,
                    ready_at=requested + timedelta(seconds=self.rng.uniform(25, 90))
                    if booted
                    else None,
                    assigned_at=requested + timedelta(minutes=5)
                    if state == VMState.IN_USE
                    else None,
                    placement={"host": host_name, "score": round(self.rng.uniform(0, 1), 3)}
                    if host_name
                    else None,
                    quarantined_until=self.now + timedelta(hours=24)
                    if state == VMState.QUARANTINED
                    else None,
                    cloud_status="ACTIVE"
                    if running
                    else ("ERROR" if state == VMState.ERROR else ""),
                    updated_at=requested + timedelta(minutes=10),
                )
            )
        _insert(VM, self.vm_list)
        self.vms_in_use = [vm for vm in self.vm_list if vm.state == VMState.IN_USE]
        for host in self.hosts:
            count = running_on[host.name]
            host.running_vms = count
            host.vcpus_used = min(count * 2, 65_535)
            host.memory_mb_used = count * 4096
        Host.objects.bulk_update(
            self.hosts, ["running_vms", "vcpus_used", "memory_mb_used"], batch_size=BATCH
        )

    # -- people, terminals and rules -------------------------------------------------

    def people(self) -> None:
        size, p = self.size, self.prefix
        self.sites = _insert(
            Site,
            [Site(name=f"{p}-site-{i:02d}", label=f"Site {i} ({p})") for i in range(size.sites)],
        )
        self.terminals = []
        for i in range(size.terminals):
            site = self.sites[i % size.sites]
            enrolled = i % 25 != 7
            self.terminals.append(
                Terminal(
                    serial=f"TC-{p}-{i:05d}",
                    mac_address=self.mac(i),
                    site=site if enrolled else None,
                    seat=f"{site.name}-seat-{i:05d}" if enrolled else "",
                    tags=["probe"] if i % 500 == 3 else (["floor-2"] if i % 2 else []),
                    status=TerminalStatus.ENROLLED if enrolled else TerminalStatus.PENDING,
                    enabled=i % 200 != 11,
                    last_seen_at=self.ago(days=3),
                    last_ip=self.address(172, i),
                )
            )
        _insert(Terminal, self.terminals)
        User = get_user_model()
        # These users log in through the thin clients only, never with a password here.
        no_password = make_password(None)
        self.users = _insert(
            User,
            [
                User(
                    username=f"{p}-user{i}",
                    first_name=FIRST_NAMES[i % len(FIRST_NAMES)],
                    last_name=LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)],
                    password=no_password,
                    last_login=self.ago(days=7),
                )
                for i in range(size.users)
            ],
        )

    def allocators(self) -> None:
        size, p = self.size, self.prefix
        groups = [Group.objects.get_or_create(name=f"{p}-group-{i}")[0] for i in range(8)]
        has_default = Allocator.objects.filter(is_default=True).exists()
        policies = [
            BindingPolicy.USER,
            BindingPolicy.USER,
            BindingPolicy.SEAT,
            BindingPolicy.TERMINAL,
            BindingPolicy.FLOATING,
        ]
        self.allocator_list = []
        for i in range(size.allocators):
            is_default = not has_default and i == size.allocators - 1
            self.allocator_list.append(
                Allocator(
                    name=f"{p}-rule-{i:03d}",
                    priority=10 * (i + 1),
                    enabled=i % 13 != 12,
                    is_default=is_default,
                    terminal_tags=["floor-2"] if i % 7 == 3 else [],
                    ou_subtrees=[f"ou=site{i % 5},dc=example,dc=com"] if i % 11 == 4 else [],
                    binding_policy=policies[i % len(policies)],
                )
            )
        _insert(Allocator, self.allocator_list)
        # Each pool serves the allocator of its number; an allocator also draws from
        # the next pool as its fallback.
        links = [
            AllocatorPool(allocator=self.allocator_list[i % size.allocators], pool=pool)
            for i, pool in enumerate(self.pool_list)
        ]
        for i, allocator in enumerate(self.allocator_list):
            links.append(AllocatorPool(allocator=allocator, pool=self.pool_list[i % size.pools]))
            fallback = self.pool_list[(i + 1) % size.pools]
            links.append(AllocatorPool(allocator=allocator, pool=fallback, order=1))
        _insert(AllocatorPool, self._unique_links(links))
        _insert(
            Allocator.groups.through,
            [
                Allocator.groups.through(allocator=a, group=groups[i % len(groups)])
                for i, a in enumerate(self.allocator_list)
                if not a.is_default
            ],
        )
        _insert(
            Allocator.sites.through,
            [
                Allocator.sites.through(allocator=a, site=self.sites[i % len(self.sites)])
                for i, a in enumerate(self.allocator_list)
                if not a.is_default and i % 3 == 0
            ],
        )

    @staticmethod
    def _unique_links(links: list[AllocatorPool]) -> list[AllocatorPool]:
        seen: set[tuple[int, int]] = set()
        kept = []
        for link in links:
            key = (link.allocator.pk, link.pool.pk)
            if key not in seen:
                seen.add(key)
                kept.append(link)
        return kept

    # -- desktops in use ------------------------------------------------------------

    def bindings(self) -> None:
        size = self.size
        pool_index = {pool.pk: i for i, pool in enumerate(self.pool_list)}
        self.active = []
        for i, vm in enumerate(self.vms_in_use):
            allocator = self.allocator_list[pool_index[vm.pool_id] % size.allocators]
            terminal = self.terminals[i]
            kind = allocator.binding_policy
            self.active.append(
                Binding(
                    allocator=allocator,
                    kind=kind,
                    user=self.users[i],
                    seat=terminal.seat or terminal.serial if kind == BindingPolicy.SEAT else "",
                    terminal=terminal if kind == BindingPolicy.TERMINAL else None,
                    vm=vm,
                    data_volume_id=self.uid() if kind == BindingPolicy.USER else "",
                    created_at=vm.assigned_at,
                )
            )
        _insert(Binding, self.active)
        released = []
        for _ in range(size.released_bindings):
            allocator = self.rng.choice(self.allocator_list)
            created = self.ago()
            released.append(
                Binding(
                    allocator=allocator,
                    kind=allocator.binding_policy,
                    user=self.rng.choice(self.users),
                    vm=self.rng.choice(self.vm_list),
                    created_at=created,
                    released_at=created + timedelta(hours=self.rng.uniform(0.5, 9)),
                )
            )
        _insert(Binding, released)
        sessions = []
        for i, binding in enumerate(self.active):
            started = max(binding.created_at, self.now - timedelta(hours=self.rng.uniform(0, 9)))
            ended = i % 2 == 1
            sessions.append(
                DesktopSession(
                    user=binding.user,
                    terminal=self.terminals[i],
                    vm=binding.vm,
                    binding=binding,
                    started_at=started,
                    last_heartbeat_at=self.now - timedelta(seconds=20),
                    ended_at=started + timedelta(hours=1) if ended else None,
                    ended_reason="disconnect" if ended else "",
                    client_ip=self.terminals[i].last_ip,
                )
            )
        for binding in released:
            sessions.append(
                DesktopSession(
                    user=binding.user,
                    terminal=self.rng.choice(self.terminals),
                    vm=binding.vm,
                    binding=binding,
                    started_at=binding.created_at,
                    ended_at=binding.released_at,
                    ended_reason="disconnect",
                )
            )
        _insert(DesktopSession, sessions)
        swaps = []
        for i in range(size.swaps):
            binding = self.active[i % len(self.active)]
            requested = self.ago(days=7)
            pending = i % 50 == 49 and i < len(self.active)
            swaps.append(
                VMSwap(
                    binding=binding,
                    pool=binding.vm.pool,
                    old_vm=self.rng.choice(self.vm_list),
                    new_vm=None if pending else binding.vm,
                    status=VMSwap.Status.PENDING if pending else VMSwap.Status.DONE,
                    reason=f"ticket INC{100000 + i}",
                    actor=STAFF[i % 4 + 1],
                    request_id=self.uid(),
                    requested_at=requested,
                    completed_at=None if pending else requested + timedelta(seconds=40),
                )
            )
        _insert(VMSwap, swaps)

    # -- monitoring -----------------------------------------------------------------

    def monitoring(self) -> None:
        size = self.size
        self.incidents = []
        for i in range(size.incidents):
            host = self.hosts[i % size.hosts]
            opened = self.ago()
            if i < size.unclosed_incidents:
                # One open incident per host: past the hosts, the rest have recovered.
                status = (
                    IncidentStatus.OPEN
                    if i % 3 == 0 and i < size.hosts
                    else IncidentStatus.RECOVERED
                )
            else:
                status = IncidentStatus.CLOSED
            recovered = opened + timedelta(seconds=self.rng.uniform(60, 400))
            self.incidents.append(
                Incident(
                    kind=IncidentKind.HOST_FAILURE,
                    title=f"Host {host.name} failed",
                    status=status,
                    region=host.region,
                    host=host,
                    opened_at=opened,
                    recovered_at=None if status == IncidentStatus.OPEN else recovered,
                    closed_at=recovered + timedelta(hours=2)
                    if status == IncidentStatus.CLOSED
                    else None,
                    closed_by="ops-anna" if status == IncidentStatus.CLOSED else "",
                    vms_affected=self.rng.randint(5, 60),
                    users_affected=self.rng.randint(0, 40),
                )
            )
        _insert(Incident, self.incidents)
        timeline = [
            "Host stopped answering",
            "Host taken out of placement",
            "VMs marked lost",
            "Users moved to new desktops",
        ]
        _insert(
            IncidentEvent,
            [
                IncidentEvent(
                    incident=incident,
                    at=incident.opened_at + timedelta(seconds=20 * step),
                    message=message,
                    data={"step": step},
                )
                for incident in self.incidents
                for step, message in enumerate(timeline)
            ],
        )
        kinds = list(AlertKind)
        self.alerts = []
        for i in range(size.alerts):
            kind = kinds[i % len(kinds)]
            opened = self.ago()
            if i < size.unclosed_alerts:
                status = AlertStatus.ACKNOWLEDGED if i % 4 == 3 else AlertStatus.OPEN
            else:
                status = AlertStatus.CLOSED
            closed = status == AlertStatus.CLOSED
            acknowledged = status == AlertStatus.ACKNOWLEDGED or (closed and i % 2 == 0)
            incident = self.incidents[i % len(self.incidents)] if self.incidents else None
            self.alerts.append(
                Alert(
                    kind=kind,
                    key=f"{kind.value}:{self.prefix}-{i:05d}",
                    severity=AlertSeverity.CRITICAL if i % 5 == 0 else AlertSeverity.WARNING,
                    status=status,
                    message=f"{kind.label}: {self.prefix} object {i}",
                    opened_at=opened,
                    last_seen_at=opened + timedelta(minutes=15),
                    cleared_at=opened + timedelta(minutes=20) if closed else None,
                    acknowledged_at=opened + timedelta(minutes=5) if acknowledged else None,
                    acknowledged_by="ops-marc" if acknowledged else "",
                    closed_at=opened + timedelta(minutes=30) if closed else None,
                    closed_by="ops-marc" if closed else "",
                    notified_at=opened + timedelta(seconds=10),
                    incident=incident if kind == AlertKind.HOST_DOWN else None,
                )
            )
        _insert(Alert, self.alerts)
        records = []
        for i in range(size.connects):
            outcome = self.rng.choices(["ready", "preparing", "cloud_unavailable"], [95, 4, 1])[0]
            terminal = self.terminals[i % len(self.terminals)]
            records.append(
                ConnectRecord(
                    at=self.now - timedelta(seconds=self.rng.uniform(0, 3600)),
                    outcome=outcome,
                    source=ConnectRecord.Source.BINDING if outcome == "ready" else "",
                    latency_ms=self.rng.lognormvariate(3.5, 0.6),
                    username=self.users[i % len(self.users)].username,
                    terminal_serial=terminal.serial,
                    site=terminal.site,
                    pool=self.pool_list[i % len(self.pool_list)],
                )
            )
        _insert(ConnectRecord, records)
        _insert(
            ProbeResult,
            [
                ProbeResult(
                    at=self.now - timedelta(minutes=i),
                    ok=i % 97 != 5,
                    status_code=200 if i % 97 != 5 else 503,
                    outcome="ready" if i % 97 != 5 else "cloud_unavailable",
                    latency_ms=self.rng.uniform(40, 400),
                    vm_name=self.vm_list[i % len(self.vm_list)].name if self.vm_list else "",
                )
                for i in range(size.probes)
            ],
        )

    # -- maintenance ----------------------------------------------------------------

    def maintenance(self) -> None:
        size, p = self.size, self.prefix
        credentials = _insert(
            GuestCredential,
            [GuestCredential(name=f"{p}-guest-{i}", username="Administrator") for i in range(3)],
        )
        actions = [
            MaintenanceAction.REBOOT,
            MaintenanceAction.SCRIPT,
            MaintenanceAction.PACKAGE,
            MaintenanceAction.REBUILD,
            MaintenanceAction.POWER_OFF,
        ]
        tasks = []
        for i in range(size.tasks):
            action = actions[i % len(actions)]
            kind = [ScheduleKind.MANUAL, ScheduleKind.ONCE, ScheduleKind.CRON][i % 3]
            guest = action in (MaintenanceAction.SCRIPT, MaintenanceAction.PACKAGE)
            tasks.append(
                MaintenanceTask(
                    name=f"{p}-task-{i:03d}",
                    description=f"Maintenance {i}",
                    action=action,
                    script="Restart-Service Spooler" if action == MaintenanceAction.SCRIPT else "",
                    package="7zip" if action == MaintenanceAction.PACKAGE else "",
                    image="win10-2024.07" if action == MaintenanceAction.REBUILD else "",
                    pool=self.pool_list[i % size.pools]
                    if action == MaintenanceAction.REBUILD
                    else None,
                    credential=credentials[i % len(credentials)] if guest else None,
                    schedule_kind=kind,
                    run_at=self.now + timedelta(days=1) if kind == ScheduleKind.ONCE else None,
                    cron="0 22 * * 1-5" if kind == ScheduleKind.CRON else "",
                    enabled=i % 9 != 4,
                    created_by="ops-anna",
                    created_at=self.ago(),
                    updated_at=self.ago(days=3),
                )
            )
        _insert(MaintenanceTask, tasks)
        _insert(
            MaintenanceTask.target_pools.through,
            [
                MaintenanceTask.target_pools.through(
                    maintenancetask=task, vmpool=self.pool_list[i % size.pools]
                )
                for i, task in enumerate(tasks)
                if task.action != MaintenanceAction.REBUILD
            ],
        )
        statuses = [
            (RunStatus.SUCCEEDED, 70),
            (RunStatus.FAILED, 10),
            (RunStatus.HALTED, 4),
            (RunStatus.CANCELLED, 6),
            (RunStatus.ROLLED_BACK, 2),
            (RunStatus.WAITING, 4),
            (RunStatus.RUNNING, 4),
        ]
        run_statuses, weights = zip(*statuses, strict=True)
        runs = []
        for i in range(size.runs):
            task = tasks[i % size.tasks]
            status = self.rng.choices(run_statuses, weights)[0]
            created = self.ago()
            started = None if status == RunStatus.WAITING else created + timedelta(seconds=5)
            active = status in (RunStatus.WAITING, RunStatus.RUNNING)
            runs.append(
                MaintenanceRun(
                    task=task,
                    status=status,
                    trigger="schedule" if i % 2 else "manual",
                    started_by="" if i % 2 else "ops-anna",
                    spec=RunSpec.from_task(task).as_json(),
                    pool=task.pool,
                    previous_image="win10-2024.06" if task.pool else "",
                    new_image=task.image,
                    current_batch=self.rng.randint(0, 3),
                    halt_reason="Over 10% of the VMs failed" if status == RunStatus.HALTED else "",
                    created_at=created,
                    started_at=started,
                    finished_at=None if active else created + timedelta(minutes=40),
                    advanced_at=created + timedelta(minutes=1),
                )
            )
        _insert(MaintenanceRun, runs)
        item_status = {
            RunStatus.SUCCEEDED: [ItemStatus.SUCCEEDED],
            RunStatus.FAILED: [ItemStatus.SUCCEEDED, ItemStatus.FAILED],
            RunStatus.HALTED: [ItemStatus.FAILED, ItemStatus.PENDING],
            RunStatus.CANCELLED: [ItemStatus.SUCCEEDED, ItemStatus.SKIPPED],
            RunStatus.ROLLED_BACK: [ItemStatus.SUCCEEDED],
            RunStatus.WAITING: [ItemStatus.PENDING],
            RunStatus.RUNNING: [ItemStatus.SUCCEEDED, ItemStatus.RUNNING, ItemStatus.PENDING],
        }
        items = []
        for i, run in enumerate(runs):
            first = (i * size.items_per_run) % len(self.vm_list)
            for position in range(size.items_per_run):
                vm = self.vm_list[(first + position) % len(self.vm_list)]
                status = self.rng.choice(item_status[run.status])
                done = status not in (ItemStatus.PENDING, ItemStatus.RUNNING)
                items.append(
                    RunItem(
                        run=run,
                        vm=vm,
                        vm_name=vm.name,
                        position=position,
                        status=status,
                        batch=position // 5,
                        attempts=1,
                        finished_at=run.created_at + timedelta(minutes=position) if done else None,
                        exit_code=(1 if status == ItemStatus.FAILED else 0) if done else None,
                        error="exit code 1" if status == ItemStatus.FAILED else "",
                    )
                )
        _insert(RunItem, items)
        _insert(
            RunLog,
            [
                RunLog(run=run, created_at=run.created_at + timedelta(seconds=step), message=text)
                for run in runs
                for step, text in enumerate(["Run started", "Batch 1 queued"])
            ],
        )
        self.tasks, self.runs = tasks, runs

    # -- the audit trail ------------------------------------------------------------

    def audit(self) -> None:
        targets = {
            "allocation.binding": self.active,
            "pools.vm": self.vm_list,
            "allocation.terminal": self.terminals,
            "pools.vmpool": self.pool_list,
            "cloud.host": self.hosts,
            "monitoring.alert": self.alerts,
            "maintenance.maintenancetask": self.tasks,
            "auth.user": self.users,
        }
        choices = [(a, t) for a, t, _ in AUDIT_ACTIONS if targets[t]]
        weights = [w for _, t, w in AUDIT_ACTIONS if targets[t]]
        events = []
        for _ in range(self.size.audit_events if choices else 0):
            action, object_type = self.rng.choices(choices, weights)[0]
            obj = self.rng.choice(targets[object_type])
            actor = self.rng.choice(STAFF)
            events.append(
                AuditEvent(
                    created_at=self.ago(),
                    actor=actor,
                    action=action,
                    object_type=object_type,
                    object_id=str(obj.pk),
                    object_repr=str(obj)[:200],
                    before={"state": "ready"},
                    after={"state": "in_use", "by": actor},
                    request_id=self.uid() if actor != "system" else "",
                    source_ip=self.address(192, self.rng.randint(1, 250))
                    if actor != "system"
                    else None,
                )
            )
        _insert(AuditEvent, events)

    def build(self) -> dict[str, int]:
        self.cloud()
        self.pools()
        self.vms()
        self.people()
        self.allocators()
        self.bindings()
        self.monitoring()
        self.maintenance()
        self.audit()
        return {
            "regions": len(self.regions),
            "hosts": len(self.hosts),
            "pools": len(self.pool_list),
            "VMs": len(self.vm_list),
            "terminals": len(self.terminals),
            "users": len(self.users),
            "allocators": len(self.allocator_list),
            "active bindings": len(self.active),
            "incidents": len(self.incidents),
            "alerts": len(self.alerts),
            "maintenance tasks": len(self.tasks),
            "maintenance runs": len(self.runs),
            "audit events": self.size.audit_events,
        }


def build_world(
    size: WorldSize = WorldSize(), *, prefix: str = "bench", seed: int = 1
) -> dict[str, int]:
    """Write a world of `size` into the database in one transaction and say how
    many of each object it holds. The prefix must not have been used in this
    database before (names are unique)."""
    problems = size.problems()
    if problems:
        raise ValueError("; ".join(problems))
    with transaction.atomic(), _timestamps_as_given(*STAMPED_MODELS):
        return _Builder(size, prefix, seed).build()


class _TableRows(HTMLParser):
    """Counts the rows in the bodies of a page's tables, leaving out a row that is
    one cell spanning the table (the "nothing matches" line)."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.rows = 0
        self._cells = 0
        self._spanning = False

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self.depth += 1
        elif tag == "tr" and self.depth:
            self._end_row()
            self._cells, self._spanning = 0, False
        elif tag in ("td", "th") and self.depth:
            self._cells += 1
            self._spanning = self._spanning or any(name == "colspan" for name, _ in attrs)

    def handle_endtag(self, tag):
        if tag == "tr" and self.depth:
            self._end_row()
        elif tag == "tbody" and self.depth:
            self._end_row()
            self.depth -= 1

    def _end_row(self):
        if self._cells and not (self._cells == 1 and self._spanning):
            self.rows += 1
        self._cells, self._spanning = 0, False


def table_rows(html: str) -> int:
    """How many rows of data (outside table headers) a page's tables show."""
    parser = _TableRows()
    parser.feed(html)
    parser.close()
    return parser.rows
