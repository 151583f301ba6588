"""Building a whole world in one transaction, builder after builder."""

import time
from collections.abc import Callable

from django.db import transaction

from allocation.models import Binding, DesktopSession, VMSwap
from cloud.models import Host, Region, SimServer
from maintenance.models import GuestCredential, MaintenanceRun, MaintenanceTask, RunLog
from monitoring.models import Alert, ConnectRecord, Incident, IncidentEvent, ProbeResult
from pools.models import VM
from portal.models import AuditEvent

from .audit import build_audit
from .bindings import build_bindings, plan_bindings
from .cloud import build_regions_and_hosts, build_sim_servers
from .context import Context, timestamps_as_given
from .maintenance import build_maintenance
from .monitoring import build_connects_and_probes, build_incidents_and_alerts
from .people import build_allocators, build_sites_and_terminals, build_users
from .pools import build_pools, build_vms
from .sizes import WorldSize

# Models whose automatic times the world sets itself.
STAMPED_MODELS = (
    Host,
    SimServer,
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

# In the order they run: each reads what the earlier ones built.
BUILDERS = (
    build_regions_and_hosts,
    build_pools,
    build_sites_and_terminals,
    build_users,
    build_allocators,
    plan_bindings,
    build_vms,
    build_sim_servers,
    build_bindings,
    build_incidents_and_alerts,
    build_connects_and_probes,
    build_maintenance,
    build_audit,
)


def build_world(
    size: WorldSize | None = None,
    *,
    prefix: str = "bench",
    seed: int = 1,
    password: str | None = None,
    on_step: Callable[[str, float], None] | None = None,
) -> dict[str, int]:
    """Write a world of `size` into the database in one transaction and say how
    many of each object it holds. The prefix must not have been used in this
    database before (names are unique). `password` is the encoded password every
    user of the world gets (see `make_password`); None leaves it unusable.

    The rows are written straight with bulk inserts: going through the services
    would take hours at a hundred thousand terminals, and the rows are made
    consistent with each other (every binding is one a connect would find, every
    running VM has its server in the simulated cloud). `on_step` hears the name
    and seconds of each step as it ends."""
    size = size or WorldSize()
    problems = size.problems()
    if problems:
        raise ValueError("; ".join(problems))
    if Region.objects.filter(name=f"{prefix}-r000").exists():
        raise ValueError(f"The database already holds a world named “{prefix}”.")
    ctx = Context(size, prefix=prefix, seed=seed, password=password)
    with transaction.atomic(), timestamps_as_given(*STAMPED_MODELS):
        for builder in BUILDERS:
            started = time.monotonic()
            builder(ctx)
            if on_step is not None:
                on_step(builder.__name__.removeprefix("build_"), time.monotonic() - started)
    return ctx.counts
