"""Writes of the pools app: refill, boot tracking and the race-free claim of a
ready VM."""

import logging
import uuid
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from cloud.drivers import ServerSpec, driver_for
from cloud.errors import CloudError, CloudUnavailable, ServerNotFound
from portal.services import audit_record

from .choices import ALIVE_STATES, BOOTING_STATES, VMState
from .models import VM, VMPool

logger = logging.getLogger(__name__)

# A VM row that never got a server id this long after it was planned belongs to a
# refill that died between planning and the cloud call.
REQUEST_TIMEOUT = timedelta(minutes=5)


def _pool_plan_boots(*, pool_id: int) -> tuple[VMPool, list[VM]]:
    """Decide how many VMs to boot and write them as `requested`, under a lock on
    the pool row, so a second refill running at the same moment counts them as
    booting and plans nothing twice."""
    with transaction.atomic():
        pool = VMPool.objects.select_for_update().get(pk=pool_id)
        if not pool.enabled:
            return pool, []
        counts = VM.objects.filter(pool=pool).aggregate(
            ready=Count("id", filter=Q(state=VMState.READY)),
            booting=Count("id", filter=Q(state__in=BOOTING_STATES)),
            alive=Count("id", filter=Q(state__in=ALIVE_STATES)),
        )
        wanted = pool.target_ready - counts["ready"] - counts["booting"]
        boot_slots = pool.max_concurrent_boots - counts["booting"]
        size_room = pool.max_size - counts["alive"]
        count = max(0, min(wanted, boot_slots, size_room))
        planned = [
            VM.objects.create(pool=pool, name=f"{pool.name}-{uuid.uuid4().hex[:8]}")
            for _ in range(count)
        ]
    return pool, planned


def _pool_note_error(pool: VMPool, message: str) -> None:
    VMPool.objects.filter(pk=pool.pk).update(last_error=message[:255], last_error_at=timezone.now())


def pool_refill(*, pool_id: int) -> int:
    """Boot VMs until the pool's ready plus booting VMs reach its target, within its
    cap of concurrent boots and its maximum size. Safe to run twice at once.
    Returns the number of boots started."""
    pool, planned = _pool_plan_boots(pool_id=pool_id)
    if not planned:
        return 0
    driver = driver_for(pool.region)
    started = 0
    for index, vm in enumerate(planned):
        spec = ServerSpec(
            name=vm.name,
            flavor=pool.flavor,
            vcpus=pool.vcpus,
            memory_mb=pool.memory_mb,
            image=pool.image,
            network=pool.network,
        )
        try:
            server_id = driver.create_server(spec)
        except CloudError as exc:
            # The cloud said no (no room, quota, down): stop this pass; the rows not
            # yet sent to the cloud are dropped so they do not count as booting.
            logger.warning("pool %s: boot of %s failed: %s", pool.name, vm.name, exc)
            VM.objects.filter(pk=vm.pk).update(state=VMState.ERROR, error=str(exc)[:255])
            VM.objects.filter(pk__in=[v.pk for v in planned[index + 1 :]]).delete()
            _pool_note_error(pool, str(exc))
            break
        VM.objects.filter(pk=vm.pk).update(
            server_id=server_id, state=VMState.BUILDING, boot_started_at=timezone.now()
        )
        started += 1
    if started:
        audit_record(action="pool.refill", obj=pool, after={"boots_started": started})
    return started


def pools_refill_all() -> dict[str, int]:
    """Refill every enabled pool; a failure in one pool does not stop the others."""
    result = {}
    for pool in VMPool.objects.filter(enabled=True, region__enabled=True):
        try:
            result[pool.name] = pool_refill(pool_id=pool.pk)
        except Exception:
            logger.exception("refill of pool %s failed", pool.name)
            result[pool.name] = 0
    return result


def _vm_fail(vm: VM, driver, message: str) -> None:
    """Mark a VM failed and delete its server so it stops using host capacity."""
    updated = VM.objects.filter(pk=vm.pk, state__in=BOOTING_STATES).update(
        state=VMState.ERROR, error=message[:255]
    )
    if updated and vm.server_id:
        try:
            driver.delete_server(vm.server_id)
        except CloudError as exc:
            logger.warning("could not delete failed server %s: %s", vm.server_id, exc)


def _vms_start_recycles(now) -> int:
    """Start the rebuild of every VM released for recycling whose rebuild has not
    started yet. Done here, by the periodic job, rather than in the request that
    released the VM: a cloud that is slow or down then never delays a thin client,
    and a rebuild that was never started is picked up at the next tick."""
    started = 0
    pending = VM.objects.filter(state=VMState.RECYCLING, boot_started_at__isnull=True)
    for vm in pending.select_related("pool__region"):
        driver = driver_for(vm.pool.region)
        try:
            driver.rebuild_server(vm.server_id, vm.pool.image)
        except CloudUnavailable as exc:
            logger.warning("rebuild of %s postponed: %s", vm.name, exc)
            continue
        except CloudError as exc:
            _vm_fail(vm, driver, f"The rebuild was refused: {exc}")
            continue
        started += VM.objects.filter(
            pk=vm.pk, state=VMState.RECYCLING, boot_started_at__isnull=True
        ).update(boot_started_at=now)
    return started


def vms_poll_boots() -> dict[str, int]:
    """Ask the cloud how each booting VM is doing and move it to `ready` once the
    server is ACTIVE with no task running, or to `error` when the boot failed or
    took longer than `VM_BOOT_TIMEOUT`. Rebuilds of recycled VMs are started and
    followed the same way. Conditional updates make two pollers at once harmless."""
    now = timezone.now()
    tally: dict[str, int] = defaultdict(int)

    stale = VM.objects.filter(
        state=VMState.REQUESTED, server_id="", requested_at__lt=now - REQUEST_TIMEOUT
    ).update(state=VMState.ERROR, error="The boot request never reached the cloud.")
    tally["abandoned"] = stale
    tally["recycles_started"] = _vms_start_recycles(now)

    booting = VM.objects.filter(
        state__in=[VMState.BUILDING, VMState.RECYCLING], boot_started_at__isnull=False
    ).select_related("pool__region")
    by_region = defaultdict(list)
    for vm in booting:
        by_region[vm.pool.region].append(vm)

    boot_timeout = timedelta(seconds=settings.VM_BOOT_TIMEOUT)
    for region, vms in by_region.items():
        driver = driver_for(region)
        for vm in vms:
            try:
                info = driver.get_server(vm.server_id)
            except ServerNotFound:
                _vm_fail(vm, driver, "The server disappeared while booting.")
                tally["failed"] += 1
                continue
            except CloudUnavailable as exc:
                logger.warning("region %s unreachable while polling boots: %s", region.name, exc)
                break
            if info.is_ready:
                done = VM.objects.filter(pk=vm.pk, state=vm.state).update(
                    state=VMState.READY,
                    ready_at=now,
                    host_name=info.host,
                    ip_address=info.ip_address,
                    error="",
                )
                tally["ready"] += done
            elif info.status == "ERROR":
                _vm_fail(vm, driver, info.fault or "The cloud reported a boot error.")
                tally["failed"] += 1
            elif now - vm.boot_started_at > boot_timeout:
                _vm_fail(vm, driver, "The boot took longer than the boot timeout.")
                tally["failed"] += 1
    return dict(tally)


def vm_recycle(*, vm: VM) -> bool:
    """Send a VM that its user released back through a rebuild to its pool's image,
    so nobody ever gets a desktop someone else used. Returns whether it was in use
    (a second release of the same VM does nothing)."""
    return bool(
        VM.objects.filter(pk=vm.pk, state=VMState.IN_USE).update(
            state=VMState.RECYCLING, assigned_at=None, boot_started_at=None
        )
    )


def vm_claim_ready(*, pool: VMPool) -> VM | None:
    """Take the longest-idle ready VM of the pool and mark it in use; `None` when the
    pool has none. Must run inside the caller's transaction.

    Two concurrent callers never get the same VM: on PostgreSQL each skips rows the
    other has locked, and the conditional update (`state=ready`) makes the claim
    itself atomic on any database."""
    for _ in range(5):
        candidate = (
            VM.objects.select_for_update(skip_locked=True)
            .filter(pool=pool, state=VMState.READY)
            .order_by("ready_at", "pk")
            .first()
        )
        if candidate is None:
            return None
        claimed = VM.objects.filter(pk=candidate.pk, state=VMState.READY).update(
            state=VMState.IN_USE, assigned_at=timezone.now()
        )
        if claimed:
            candidate.refresh_from_db()
            return candidate
    return None


def vm_return_to_pool(*, vm: VM) -> None:
    """Put a VM that was claimed but never reached its user back among the ready
    ones (used when handing it out failed half-way)."""
    VM.objects.filter(pk=vm.pk, state=VMState.IN_USE).update(state=VMState.READY, assigned_at=None)
