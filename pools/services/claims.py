"""Handing out ready VMs, race-free, and taking them back."""

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
    other has locked, and the conditional update (`state=ready`) makes the claim
    itself atomic on any database.

    A VM on a host that is down (or declared failed) is never handed out, even before host-failure
    recovery has marked it lost: its user would get a desktop that does not answer."""
    unhealthy_hosts = Host.objects.filter(region_id=pool.region_id).filter(
        Q(failed_at__isnull=False) | Q(state=HostState.DOWN)
    )
    for _ in range(5):
        candidate = (
            VM.objects.select_for_update(skip_locked=True)
            .filter(pool=pool, state=VMState.READY)
            .exclude(host_name__in=unhealthy_hosts.values("name"))
            .order_by("ready_at", "pk")
            .first()
        )
        if candidate is None:
            return None
        now = timezone.now()
        claimed = VM.objects.filter(pk=candidate.pk, state=VMState.READY).update(
            state=VMState.IN_USE, assigned_at=now
        )
        if claimed:
            # The row was locked and just changed by this update, so these two
            # fields are all that differ from what was read: no reload needed.
            # The pool (with its region) is the caller's, read once per connect.
            candidate.state, candidate.assigned_at = VMState.IN_USE, now
            candidate.pool = pool
            return candidate
    return None


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
