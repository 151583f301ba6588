"""Handing out ready VMs, race-free, and taking them back."""

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from cloud.choices import HostState
from cloud.models import Host
from pools.choices import VMState
from pools.models import VM, VMPool


def vm_claim_ready(*, pool: VMPool) -> VM | None:
    """Take the longest-idle ready VM of the pool and mark it in use; `None` when the
    pool has none. Must run inside the caller's transaction.

    Two concurrent callers never get the same VM: on PostgreSQL each skips rows the
    other has locked (and the lock and the update are one statement), and the
    conditional update (`state=ready`) makes the claim itself atomic on any
    database.

    A VM on a host that is down (or declared failed) is never handed out, even before host-failure
    recovery has marked it lost: its user would get a desktop that does not answer."""
    unhealthy_hosts = Host.objects.filter(region_id=pool.region_id).filter(
        Q(failed_at__isnull=False) | Q(state=HostState.DOWN)
    )
    candidates = (
        VM.objects.select_for_update(skip_locked=True)
        .filter(pool=pool, state=VMState.READY)
        .exclude(host_name__in=unhealthy_hosts.values("name"))
        .order_by("ready_at", "pk")
    )
    postgresql = connection.vendor == "postgresql"
    claim = _claim_in_one_statement if postgresql else _claim_read_then_update
    for _ in range(5):
        found, vm = claim(candidates)
        if not found:
            return None
        if vm is not None:
            # The pool (with its region) is the caller's, read once per connect.
            vm.pool = pool
            return vm
    return None


def _claim_read_then_update(candidates) -> tuple[bool, VM | None]:
    """Lock the first candidate, then mark it in use if it is still ready. Returns
    whether there was a candidate, and the VM when the update took it."""
    candidate = candidates.first()
    if candidate is None:
        return False, None
    now = timezone.now()
    claimed = VM.objects.filter(pk=candidate.pk, state=VMState.READY).update(
        state=VMState.IN_USE, assigned_at=now
    )
    if not claimed:
        return True, None
    # The row was locked and just changed by this update, so these two fields are
    # all that differ from what was read: no reload needed.
    candidate.state, candidate.assigned_at = VMState.IN_USE, now
    return True, candidate


def _claim_in_one_statement(candidates) -> tuple[bool, VM | None]:
    """PostgreSQL: lock the first candidate and mark it in use in one statement
    (`UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING …`),
    one round trip instead of two. An empty answer means no candidate was free:
    the candidates skipped are locked by claims in flight, and a row the subquery
    locked is still ready when the update sees it (it holds the lock)."""
    inner = candidates.values("pk")[:1]
    inner_sql, inner_params = inner.query.get_compiler(connection=connection).as_sql()
    table, quote = VM._meta.db_table, connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in VM._meta.concrete_fields)
    # Only names from the model and SQL compiled by Django go into the text; every
    # value is a parameter.
    state, assigned_at, pk = (
        quote(VM._meta.get_field(name).column) for name in ("state", "assigned_at", "id")
    )
    sql = " ".join(
        [
            f"UPDATE {quote(table)} SET {state} = %s, {assigned_at} = %s",  # noqa: S608
            f"WHERE {pk} = ({inner_sql}) AND {state} = %s",
            f"RETURNING {columns}",
        ]
    )
    params = (VMState.IN_USE.value, timezone.now(), *inner_params, VMState.READY.value)
    vms = list(VM.objects.raw(sql, params))
    return bool(vms), (vms[0] if vms else None)


def vm_return_to_pool(*, vm: VM) -> None:
    """Put a VM that was claimed but never reached its user back among the ready
    ones (used when handing it out failed half-way)."""
    VM.objects.filter(pk=vm.pk, state=VMState.IN_USE).update(state=VMState.READY, assigned_at=None)


def vm_recycle(*, vm: VM) -> bool:
    """Send a VM that its user released back through a rebuild to its pool's image,
    so nobody ever gets a desktop someone else used. Returns whether it was in use
    (a second release of the same VM does nothing)."""
    return bool(
        VM.objects.filter(pk=vm.pk, state=VMState.IN_USE).update(
            state=VMState.RECYCLING, assigned_at=None, boot_started_at=None
        )
    )
