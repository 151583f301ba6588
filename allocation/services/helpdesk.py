"""The help desk's actions on a user's desktop: swap it for a fresh one, move the
user to another pool, unbind, and power actions on the VM. Each is audited with
the agent's reason."""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from allocation.models import Binding, VMSwap
from cloud.drivers import driver_for
from cloud.errors import CloudError
from monitoring.events import dashboard_changed
from pools.choices import VMState
from pools.models import VM, VMPool
from pools.services import pools_refill_soon, vm_claim_ready, vm_quarantine, vm_recycle
from portal.errors import ServiceError
from portal.services import audit_record

from .sessions import binding_release

logger = logging.getLogger(__name__)


class ActionRefused(ServiceError):
    status_code = 409
    code = "action_refused"
    default_detail = "That cannot be done to this desktop now."


def vm_swap(
    *,
    binding: Binding,
    reason: str,
    actor: str,
    pool: VMPool | None = None,
    request_id: str = "",
    incident=None,
) -> VMSwap:
    """Give the binding a fresh VM (from `pool`, by default the VM's own pool) and
    quarantine the old one. Done at once when a ready VM is there; otherwise the
    swap waits and `swaps_complete_pending` finishes it as soon as one has booted.
    The thin client learns of it at its next heartbeat (`reconnect`). Host-failure
    recovery uses the same path, with the `incident` it belongs to."""
    if binding.released_at is not None:
        raise ActionRefused("That binding has been released already.")
    pool = pool or binding.vm.pool
    try:
        with transaction.atomic():
            swap = VMSwap.objects.create(
                binding=binding,
                pool=pool,
                old_vm=binding.vm,
                reason=reason,
                actor=actor,
                request_id=request_id,
                incident=incident,
            )
    except IntegrityError as exc:
        raise ActionRefused("A swap of this desktop is already under way.") from exc
    audit_record(
        action="vm.swap_requested",
        obj=binding.vm,
        actor=actor,
        after={"binding": binding.pk, "pool": pool.name, "reason": reason},
        request_id=request_id,
    )
    if not swap_try_complete(swap=swap):
        transaction.on_commit(lambda: pools_refill_soon([pool.pk]))
    swap.refresh_from_db()
    return swap


def swap_try_complete(*, swap: VMSwap) -> bool:
    """Finish a pending swap if its pool has a ready VM: move the binding, move the
    data volume, quarantine the old VM (a VM lost with its host is left lost).
    Returns whether the swap is done. A swap whose binding was released meanwhile
    (the user connected and got a fresh desktop, or was unbound) is dropped."""
    with transaction.atomic():
        locked = VMSwap.objects.select_for_update().filter(pk=swap.pk, status="pending").first()
        if locked is None:
            return False
        if locked.binding.released_at is not None:
            VMSwap.objects.filter(pk=locked.pk).update(
                status=VMSwap.Status.FAILED,
                error="The binding was released before a VM was ready.",
                completed_at=timezone.now(),
            )
            return False
        new_vm = vm_claim_ready(pool=locked.pool)
        if new_vm is None:
            return False
        binding = locked.binding
        old_vm = locked.old_vm
        Binding.objects.filter(pk=binding.pk).update(vm=new_vm)
        VMSwap.objects.filter(pk=locked.pk).update(
            new_vm=new_vm, status=VMSwap.Status.DONE, completed_at=timezone.now()
        )
        vm_quarantine(
            vm=old_vm, reason=locked.reason, actor=locked.actor, request_id=locked.request_id
        )
        audit_record(
            action="binding.move",
            obj=binding,
            actor=locked.actor,
            before={"vm": old_vm.name},
            after={"vm": new_vm.name, "reason": locked.reason},
            request_id=locked.request_id,
        )
    if binding.data_volume_id:
        _move_volume(binding=binding, old_vm=old_vm, new_vm=new_vm)
    return True


def _move_volume(*, binding: Binding, old_vm: VM, new_vm: VM) -> None:
    """Detach the user's data volume from the old VM and attach it to the new one.
    A failure is recorded on the swap's audit trail and left for the help desk: the
    user has a working desktop, only without their data drive."""
    driver = driver_for(new_vm.pool.region)
    try:
        driver.detach_volume(old_vm.server_id, binding.data_volume_id)
        driver.attach_volume(new_vm.server_id, binding.data_volume_id)
    except CloudError as exc:
        logger.warning("data volume of binding %s not moved: %s", binding.pk, exc)
        audit_record(
            action="volume.move_failed",
            obj=binding,
            after={"volume": binding.data_volume_id, "error": str(exc)[:200]},
        )
        return
    audit_record(
        action="volume.move",
        obj=binding,
        before={"vm": old_vm.name},
        after={"vm": new_vm.name, "volume": binding.data_volume_id},
    )


def swaps_complete_pending() -> int:
    """Finish every pending swap whose pool has a ready VM now (oldest first)."""
    done = 0
    for swap in VMSwap.objects.filter(status=VMSwap.Status.PENDING).order_by("requested_at"):
        done += swap_try_complete(swap=swap)
    if done:
        dashboard_changed("swaps")
    return done


POWER_ACTIONS = {
    "reboot": "Reboot (the guest restarts)",
    "reset": "Reset (power off and on, for a hung guest)",
    "rebuild": "Rebuild to the pool's image (the disk is replaced; the data volume stays)",
    "stop": "Shut down",
    "start": "Start",
}


def vm_power_action(*, vm: VM, action: str, reason: str, actor: str, request_id: str = "") -> None:
    """Reboot, reset, rebuild, shut down or start a user's VM through its cloud."""
    if action not in POWER_ACTIONS:
        raise ActionRefused(f"Unknown action {action!r}.")
    if not vm.server_id or vm.state not in (VMState.IN_USE, VMState.READY):
        raise ActionRefused(f"{vm.name} is {vm.get_state_display().lower()}.")
    driver = driver_for(vm.pool.region)
    try:
        if action == "reboot":
            driver.reboot_server(vm.server_id)
        elif action == "reset":
            driver.stop_server(vm.server_id)
            driver.start_server(vm.server_id)
        elif action == "rebuild":
            driver.rebuild_server(vm.server_id, vm.pool.image)
        elif action == "stop":
            driver.stop_server(vm.server_id)
        else:
            driver.start_server(vm.server_id)
    except CloudError as exc:
        raise ActionRefused(f"The cloud refused to {action} {vm.name}: {exc}") from exc
    audit_record(
        action=f"vm.{action}",
        obj=vm,
        actor=actor,
        after={"reason": reason},
        request_id=request_id,
    )


def binding_unbind(*, binding: Binding, reason: str, actor: str, request_id: str = "") -> None:
    """End a user's binding; the VM is rebuilt before anyone else gets it."""
    if not binding_release(binding=binding, reason=f"unbound: {reason}", actor=actor,
                           request_id=request_id):  # fmt: skip
        raise ActionRefused("That binding has been released already.")
    vm_recycle(vm=binding.vm)
