"""Following boots: moving booted VMs to ready, failing the ones that do not boot,
starting the rebuilds of recycled VMs, and the consequences of failures (a host
that keeps failing boots, a pool that keeps failing pauses)."""

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from cloud.drivers import driver_for
from cloud.errors import CloudError, CloudUnavailable, ServerNotFound
from cloud.models import Host
from monitoring.events import dashboard_changed
from portal.services import audit_record

from ..choices import BOOTING_STATES, VMState
from ..models import VM, VMPool

logger = logging.getLogger(__name__)

# A VM row that never got a server id this long after it was planned belongs to a
# refill that died between planning and the cloud call.
REQUEST_TIMEOUT = timedelta(minutes=5)


def _vm_fail(vm: VM, driver, message: str) -> None:
    """Mark a VM failed and delete its server so it stops using host capacity; count
    the failure against its host and its pool."""
    updated = VM.objects.filter(pk=vm.pk, state__in=BOOTING_STATES).update(
        state=VMState.ERROR, error=message[:255]
    )
    if not updated:
        return
    _host_boot_outcome(vm=vm, host_name=vm.host_name, succeeded=False)
    pool_check_pause(pool=vm.pool)
    if vm.server_id:
        try:
            driver.delete_server(vm.server_id)
        except CloudError as exc:
            logger.warning("could not delete failed server %s: %s", vm.server_id, exc)


def _vms_start_recycles(now, region_id: int | None = None) -> int:
    """Start the rebuild of every VM released for recycling whose rebuild has not
    started yet. Done here, by the periodic job, rather than in the request that
    released the VM: a cloud that is slow or down then never delays a thin client,
    and a rebuild that was never started is picked up at the next tick."""
    started = 0
    pending = VM.objects.filter(state=VMState.RECYCLING, boot_started_at__isnull=True)
    if region_id is not None:
        pending = pending.filter(pool__region_id=region_id)
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


def vms_poll_boots(*, region_id: int | None = None) -> dict[str, int]:
    """Ask the cloud how each booting VM is doing and move it to `ready` once the
    server is ACTIVE with no task running, or to `error` when the boot failed or
    took longer than `VM_BOOT_TIMEOUT`. Rebuilds of recycled VMs are started and
    followed the same way. Conditional updates make two pollers at once harmless.
    With `region_id`, only that region's VMs (its worker's share of the job)."""
    now = timezone.now()
    tally: dict[str, int] = defaultdict(int)
    vms = VM.objects.all() if region_id is None else VM.objects.filter(pool__region_id=region_id)

    stale = vms.filter(
        state=VMState.REQUESTED, server_id="", requested_at__lt=now - REQUEST_TIMEOUT
    ).update(state=VMState.ERROR, error="The boot request never reached the cloud.")
    tally["abandoned"] = stale
    tally["recycles_started"] = _vms_start_recycles(now, region_id)

    booting = vms.filter(
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
                if done:
                    _host_boot_outcome(vm=vm, host_name=info.host, succeeded=True)
                tally["ready"] += done
            elif info.status == "ERROR":
                _vm_fail(vm, driver, info.fault or "The cloud reported a boot error.")
                tally["failed"] += 1
            elif now - vm.boot_started_at > boot_timeout:
                _vm_fail(vm, driver, "The boot took longer than the boot timeout.")
                tally["failed"] += 1
    if any(tally.values()):
        dashboard_changed("boots polled")
    return dict(tally)


def _host_boot_outcome(*, vm: VM, host_name: str, succeeded: bool) -> None:
    """Keep each host's count of boots failed in a row: a success clears it, a
    failure adds one (placement skips a host at the policy's limit)."""
    if not host_name:
        return
    hosts = Host.objects.filter(region_id=vm.pool.region_id, name=host_name)
    if succeeded:
        hosts.exclude(boot_failures_in_row=0).update(boot_failures_in_row=0)
    else:
        hosts.update(boot_failures_in_row=F("boot_failures_in_row") + 1)


def pool_check_pause(*, pool: VMPool) -> bool:
    """Pause the pool's refills when `pause_after_errors` boots failed within its
    window: a broken image or a full cloud should not be hammered with boots that
    will fail too. Returns whether the pool is paused now."""
    if not pool.pause_after_errors:
        return False
    since = timezone.now() - timedelta(minutes=pool.pause_window_minutes)
    failures = VM.objects.filter(pool=pool, state=VMState.ERROR, updated_at__gte=since)
    count = failures.count()
    if count < pool.pause_after_errors:
        return False
    last = failures.order_by("-updated_at").values_list("error", flat=True).first() or ""
    reason = (
        f"{count} boots failed in the last {pool.pause_window_minutes} minutes; last error: {last}"
    )[:255]
    paused = VMPool.objects.filter(pk=pool.pk, paused_at__isnull=True).update(
        paused_at=timezone.now(), pause_reason=reason
    )
    if paused:
        logger.warning("pool %s paused: %s", pool.name, reason)
        audit_record(action="pool.pause", obj=pool, after={"reason": reason})
    return True


def pool_resume(*, pool: VMPool, actor: str, request_id: str = "") -> None:
    """An operator has dealt with the cause: refills go on."""
    before = {
        "paused_at": pool.paused_at.isoformat() if pool.paused_at else None,
        "reason": pool.pause_reason,
    }
    VMPool.objects.filter(pk=pool.pk).update(paused_at=None, pause_reason="")
    audit_record(action="pool.resume", obj=pool, actor=actor, before=before, request_id=request_id)


def host_clear_failures(*, host: Host, actor: str, request_id: str = "") -> None:
    """An operator has checked the host: it takes placements again."""
    before = {"boot_failures_in_row": host.boot_failures_in_row}
    Host.objects.filter(pk=host.pk).update(boot_failures_in_row=0)
    audit_record(
        action="host.clear_failures", obj=host, actor=actor, before=before, request_id=request_id
    )
