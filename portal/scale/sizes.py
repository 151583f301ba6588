"""How large a generated world is: the counts of every kind of object, the presets
the tests and benchmarks use, and the rule that derives the counts an operator
did not set from the few they did."""

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class WorldSize:
    """How many of each object the world holds. `bindings` are the active ones
    (each holds a VM in use, with a session of its user at a terminal); the
    `unclosed_*` counts are the alerts and incidents still shown by default, the
    rest being closed history. `connect_minutes` is the span, up to now, over which
    the recorded thin-client connects are spread."""

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
    connect_minutes: int = 60
    probes: int = 1_440

    def problems(self) -> list[str]:
        """Why this world cannot be built (an empty list when it can)."""
        found = [
            f"{f.name} must not be negative" for f in fields(self) if getattr(self, f.name) < 0
        ]
        for name in ("regions", "hosts", "pools", "sites", "allocators", "connect_minutes"):
            if getattr(self, name) < 1:
                found.append(f"{name} must be at least 1")
        if self.hosts < self.regions:
            found.append("hosts cannot be fewer than regions (every region needs a host)")
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

    def fitted(self) -> "WorldSize":
        """The same world with the counts that depend on others brought in line, so
        that `--vms 2000` alone still gives a world that holds together (no more
        bindings than VMs, …)."""
        bindings = min(self.bindings, self.vms, self.terminals)
        return replace(
            self,
            bindings=bindings,
            users=max(self.users, bindings),
            items_per_run=min(self.items_per_run, self.vms),
            unclosed_alerts=min(self.unclosed_alerts, self.alerts),
            unclosed_incidents=min(self.unclosed_incidents, self.incidents),
            released_bindings=min(self.released_bindings, bindings * 2),
            swaps=min(self.swaps, bindings),
        )


# The installation the second source paper plans for: 100,000 terminals and, with
# part of the agents on shift at a time, 50,000 desktops, 30,000 of them in use,
# over six provincial regions and 500 compute nodes (100 desktops each).
SCALE_WORLD = WorldSize(
    regions=6,
    hosts=500,
    pools=60,
    vms=50_000,
    sites=60,
    terminals=100_000,
    users=80_000,
    allocators=30,
    bindings=30_000,
    released_bindings=20_000,
    audit_events=200_000,
    alerts=3_000,
    unclosed_alerts=60,
    incidents=400,
    unclosed_incidents=8,
    tasks=200,
    runs=2_000,
    items_per_run=10,
    swaps=2_000,
    # A shift start: 10,000 logins in the dashboard's half hour.
    connects=40_000,
    connect_minutes=120,
    probes=1_440,
)

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
