"""Idle VMs handed to scheduled maintenance: taken out of circulation while a
guest command or a reboot works on them, or sent through the recycling rebuild
for an image roll-out."""

from django.utils import timezone

from pools.choices import VMState
from pools.models import VM


def vm_hold_idle(*, vm: VM) -> bool:
    """Take a ready VM out of circulation (`in_use` with no binding) so no login
    gets a desktop that is being patched or rebooted; refill boots a replacement
    meanwhile, and `vm_return_to_pool` gives the VM back. Returns whether the VM
    was still ready (a login may have claimed it first)."""
    return bool(
        VM.objects.filter(pk=vm.pk, state=VMState.READY).update(
            state=VMState.IN_USE, assigned_at=timezone.now()
        )
    )


def vm_recycle_idle(*, vm: VM) -> bool:
    """Send a ready VM through the recycling rebuild, to its pool's current image:
    the boot poller starts the rebuild and follows it back to `ready`, as for a
    released desktop. Returns whether the VM was still ready."""
    return bool(
        VM.objects.filter(pk=vm.pk, state=VMState.READY).update(
            state=VMState.RECYCLING, assigned_at=None, boot_started_at=None
        )
    )
