"""Quarantine: a VM swapped out of a user's hands is kept, untouched, so someone
can find out what broke it; after `VM_QUARANTINE_HOURS` it is deleted."""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from cloud.drivers import driver_for
from cloud.errors import CloudError
from portal.services import audit_record

from ..choices import VMState
from ..models import VM

logger = logging.getLogger(__name__)


def vm_quarantine(*, vm: VM, reason: str, actor: str, request_id: str = "") -> None:
    """Take a VM out of service but keep its server for investigation. A VM lost
    with its host has no server to keep: it stays lost."""
    until = timezone.now() + timedelta(hours=settings.VM_QUARANTINE_HOURS)
    before = vm.state
    quarantined = (
        VM.objects.filter(pk=vm.pk)
        .exclude(state=VMState.LOST)
        .update(state=VMState.QUARANTINED, quarantined_until=until, assigned_at=None)
    )
    if not quarantined:
        return
    audit_record(
        action="vm.quarantine",
        obj=vm,
        actor=actor,
        before={"state": before},
        after={"state": VMState.QUARANTINED, "until": until.isoformat(), "reason": reason},
        request_id=request_id,
    )


def vms_delete_expired_quarantine(*, region_id: int | None = None) -> int:
    """Delete the servers of VMs whose quarantine is over (of one region, with
    `region_id`). Safe to run twice: the state changes only once, and deleting a
    gone server is not an error."""
    deleted = 0
    expired = VM.objects.filter(
        state=VMState.QUARANTINED, quarantined_until__lte=timezone.now()
    ).select_related("pool__region")
    if region_id is not None:
        expired = expired.filter(pool__region_id=region_id)
    for vm in expired:
        try:
            if vm.server_id:
                driver_for(vm.pool.region).delete_server(vm.server_id)
        except CloudError as exc:
            logger.warning("quarantined %s not deleted yet: %s", vm.name, exc)
            continue
        if VM.objects.filter(pk=vm.pk, state=VMState.QUARANTINED).update(state=VMState.DELETED):
            audit_record(action="vm.delete", obj=vm, after={"reason": "quarantine over"})
            deleted += 1
    return deleted
