"""Host-failure recovery: when a compute node dies, its desktops die with it. A
host whose compute service has been down longer than `HOST_FAILURE_THRESHOLD`
is declared failed: it leaves placement, its VMs are marked lost (or evacuated,
where the region's disks are on shared storage), and every user bound to one of
them gets a desktop on another host through the help desk's swap path — at once
from the pool's ready VMs, or as soon as a VM has booted. Thin clients learn it
at their next heartbeat (`reconnect`). An incident keeps the timeline.

Everything here is safe to run twice at once: the host is claimed by a
conditional update, VMs change state by conditional updates, and one pending
swap per binding is a database constraint."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from allocation.models import Binding, DesktopSession, VMSwap
from allocation.services.helpdesk import ActionRefused, vm_swap
from cloud.choices import HostState
from cloud.drivers import driver_for
from cloud.errors import CloudError
from cloud.models import Host
from pools.choices import VMState
from pools.models import VM
from pools.services import pools_refill_soon
from portal.services import audit_record

from .choices import IncidentKind, IncidentStatus
from .events import dashboard_changed
from .models import Incident, IncidentEvent

logger = logging.getLogger(__name__)

ACTOR = "deskops"
# VMs that occupy a failed host: whatever they were doing, they are gone with it.
ON_HOST_STATES = (
    VMState.REQUESTED,
    VMState.BUILDING,
    VMState.READY,
    VMState.IN_USE,
    VMState.RECYCLING,
)


def incident_log(incident: Incident, message: str, **data) -> IncidentEvent:
    """Add a line to the incident's timeline."""
    logger.info("incident %s: %s", incident.pk, message)
    return IncidentEvent.objects.create(incident=incident, message=message[:500], data=data)


def hosts_recover_failed(*, region_id: int | None = None) -> dict[str, int]:
    """Declare failed every host down longer than the threshold (of one region,
    with `region_id`) and recover it; returns the number of users moved per host."""
    cutoff = timezone.now() - timedelta(seconds=settings.HOST_FAILURE_THRESHOLD)
    due = Host.objects.filter(
        state=HostState.DOWN, failed_at__isnull=True, down_since__lte=cutoff
    ).select_related("region")
    if region_id is not None:
        due = due.filter(region_id=region_id)
    moved = {}
    for host in due:
        if _region_mostly_down(host.region_id):
            continue
        moved[host.name] = host_recover(host=host)
    return moved


def _region_mostly_down(region_id: int) -> bool:
    """When most of a region's hosts look down at once, the likelier cause is the
    cloud's control plane (a message queue or database outage makes every compute
    service look down), not dead hypervisors: moving every user would do more
    harm than good. Recovery waits for an operator; the host-down alerts fire."""
    hosts = Host.objects.filter(region_id=region_id)
    total = hosts.count()
    down = hosts.filter(state=HostState.DOWN).count()
    if total and down / total > settings.HOST_FAILURE_MAX_SHARE:
        logger.warning(
            "%s of %s hosts of region %s are down: not recovering them automatically",
            down,
            total,
            region_id,
        )
        return True
    return False


def host_recover(*, host: Host) -> int:
    """Take a failed host out of placement and move its users; returns how many
    users were moved (or are waiting for a VM). Does nothing if another worker has
    already claimed the host."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Host.objects.filter(pk=host.pk, failed_at__isnull=True).update(failed_at=now)
        if not claimed:
            return 0
        try:
            with transaction.atomic():
                incident = Incident.objects.create(
                    kind=IncidentKind.HOST_FAILURE,
                    title=f"Host {host.name} failed",
                    region=host.region,
                    host=host,
                )
        except IntegrityError:  # an earlier incident of this host is still open
            incident = Incident.objects.get(
                kind=IncidentKind.HOST_FAILURE, host=host, status=IncidentStatus.OPEN
            )
        down_for = (now - host.down_since).total_seconds() if host.down_since else None
        incident_log(
            incident,
            f"{host.name} has been down for {down_for:.0f} s; declared failed and taken "
            "out of placement."
            if down_for is not None
            else f"{host.name} declared failed and taken out of placement.",
            down_since=host.down_since.isoformat() if host.down_since else None,
        )
        audit_record(action="host.fail", obj=host, after={"incident": incident.pk})

    vms = list(
        VM.objects.filter(
            pool__region=host.region, host_name=host.name, state__in=ON_HOST_STATES
        ).select_related("pool__region")
    )
    bindings = list(
        Binding.objects.filter(vm__in=vms, released_at__isnull=True).select_related("vm__pool")
    )
    bound_vm_ids = {binding.vm_id for binding in bindings}

    evacuated: set[int] = set()
    if host.region.shared_storage:
        evacuated = _evacuate(incident, [vm for vm in vms if vm.pk in bound_vm_ids])
    lost = _mark_lost(incident, [vm for vm in vms if vm.pk not in evacuated])
    served_now, waiting = _reserve(
        incident, [binding for binding in bindings if binding.vm_id not in evacuated]
    )

    Incident.objects.filter(pk=incident.pk).update(
        vms_affected=len(vms), users_affected=len(bindings)
    )
    incident_log(
        incident,
        f"{len(vms)} VMs on the host: {len(lost)} marked lost, {len(evacuated)} evacuated. "
        f"{len(bindings)} users affected: {served_now} re-served at once, {waiting} waiting "
        "for a VM to boot.",
        lost=len(lost),
        evacuated=len(evacuated),
        served_now=served_now,
        waiting=waiting,
    )
    pools = {vm.pool_id for vm in vms}
    if pools:
        transaction.on_commit(lambda: pools_refill_soon(sorted(pools)))
    incident_check_recovered(incident=incident)
    dashboard_changed("host_failure")
    return len(bindings)


def _evacuate(incident: Incident, vms: list[VM]) -> set[int]:
    """Ask the cloud to rebuild each bound VM elsewhere with its disks. The user
    keeps the same desktop; their open sessions are ended so the thin client
    reconnects, and the connect starts the VM (it ends SHUTOFF after an
    evacuation). A VM the cloud will not evacuate is replaced instead."""
    done = set()
    for vm in vms:
        try:
            driver_for(vm.pool.region).evacuate(vm.server_id)
        except CloudError as exc:
            incident_log(incident, f"{vm.name} could not be evacuated ({exc}); replacing it.")
            continue
        VM.objects.filter(pk=vm.pk).update(host_name="")
        DesktopSession.objects.filter(vm=vm, ended_at__isnull=True).update(
            ended_at=timezone.now(), ended_reason="host_failure"
        )
        audit_record(action="vm.evacuate", obj=vm, after={"incident": incident.pk})
        done.add(vm.pk)
    if done:
        incident_log(incident, f"{len(done)} bound VMs evacuated to other hosts.")
    return done


def _mark_lost(incident: Incident, vms: list[VM]) -> list[VM]:
    """Mark the VMs lost and ask the cloud to delete their servers (Nova deletes a
    server of a down compute service locally); a delete that fails is left to
    reconciliation."""
    lost = []
    for vm in vms:
        marked = VM.objects.filter(pk=vm.pk, state=vm.state).update(
            state=VMState.LOST, error=f"Host {vm.host_name} failed."[:255]
        )
        if not marked:
            continue
        lost.append(vm)
        audit_record(
            action="vm.lost",
            obj=vm,
            before={"state": vm.state},
            after={"state": VMState.LOST, "incident": incident.pk},
        )
        if vm.server_id and vm.state != VMState.IN_USE:
            # A bound VM's server is kept until its swap is done: its data volume
            # is detached from it then.
            try:
                driver_for(vm.pool.region).delete_server(vm.server_id)
            except CloudError as exc:
                logger.warning("server %s of lost %s not deleted: %s", vm.server_id, vm.name, exc)
    return lost


def _reserve(incident: Incident, bindings: list[Binding]) -> tuple[int, int]:
    """Swap every affected binding to a fresh VM of its pool; returns how many were
    served at once and how many wait for a boot."""
    served_now = waiting = 0
    for binding in bindings:
        try:
            swap = vm_swap(
                binding=binding,
                reason=f"host {incident.host.name} failed",
                actor=ACTOR,
                incident=incident,
            )
        except ActionRefused:
            # A help-desk swap of this desktop is already under way: it will finish.
            VMSwap.objects.filter(binding=binding, status=VMSwap.Status.PENDING).update(
                incident=incident
            )
            waiting += 1
            continue
        if swap.status == VMSwap.Status.DONE:
            served_now += 1
        else:
            waiting += 1
    return served_now, waiting


def incident_check_recovered(*, incident: Incident) -> bool:
    """Mark a host-failure incident recovered once none of its swaps is pending;
    the timeline records how long the last user waited."""
    if incident.status != IncidentStatus.OPEN:
        return False
    swaps = VMSwap.objects.filter(incident=incident)
    if swaps.filter(status=VMSwap.Status.PENDING).exists():
        return False
    last = swaps.exclude(completed_at=None).order_by("-completed_at").first()
    now = timezone.now()
    recovered_at = last.completed_at if last else now
    if not Incident.objects.filter(pk=incident.pk, status=IncidentStatus.OPEN).update(
        status=IncidentStatus.RECOVERED, recovered_at=recovered_at
    ):
        return False
    done = swaps.filter(status=VMSwap.Status.DONE).count()
    failed = swaps.filter(status=VMSwap.Status.FAILED).count()
    incident.refresh_from_db()
    evacuated = max(0, incident.users_affected - done - failed)
    seconds = (recovered_at - incident.opened_at).total_seconds()
    if not incident.users_affected:
        incident_log(incident, "Recovered: nobody had a desktop on the host.", done=0)
        return True
    message = f"Recovered: {done} users re-served on fresh desktops"
    if evacuated:
        message += f", {evacuated} kept their evacuated desktops"
    if failed:
        message += f", {failed} swaps dropped (their users connected again first)"
    incident_log(
        incident,
        f"{message}; the last user was served {seconds:.0f} s after detection.",
        done=done,
        evacuated=evacuated,
        failed=failed,
        seconds=round(seconds, 1),
    )
    return True


def incidents_follow() -> int:
    """Mark recovered every open incident whose users all have a desktop again;
    run after pending swaps are completed. Returns how many recovered."""
    recovered = 0
    for incident in Incident.objects.filter(status=IncidentStatus.OPEN):
        recovered += incident_check_recovered(incident=incident)
    if recovered:
        dashboard_changed("incident")
    return recovered


def host_return_to_service(*, host: Host, actor: str, request_id: str = "") -> None:
    """An operator has repaired (or fenced and rebuilt) the host: it takes
    placements again once its compute service is up. Open incidents of the host are
    closed with a note."""
    before = {"failed_at": host.failed_at.isoformat() if host.failed_at else None}
    Host.objects.filter(pk=host.pk).update(failed_at=None, boot_failures_in_row=0)
    audit_record(
        action="host.return_to_service",
        obj=host,
        actor=actor,
        before=before,
        request_id=request_id,
    )
    for incident in Incident.objects.filter(host=host).exclude(status=IncidentStatus.CLOSED):
        incident_close(
            incident=incident,
            actor=actor,
            note=f"{host.name} returned to service by {actor}.",
            request_id=request_id,
        )
    dashboard_changed("host")


def incident_close(*, incident: Incident, actor: str, note: str = "", request_id: str = "") -> bool:
    """An operator has dealt with the cause. Returns False when it was closed already."""
    closed = Incident.objects.filter(pk=incident.pk).exclude(status=IncidentStatus.CLOSED)
    if not closed.update(status=IncidentStatus.CLOSED, closed_at=timezone.now(), closed_by=actor):
        return False
    incident_log(incident, note or f"Closed by {actor}.", actor=actor)
    audit_record(
        action="incident.close",
        obj=incident,
        actor=actor,
        before={"status": incident.status},
        after={"status": IncidentStatus.CLOSED, "note": note},
        request_id=request_id,
    )
    dashboard_changed("incident")
    return True
