"""Reconciliation: make the database and each cloud agree again after anything
that broke their agreement — a worker killed between asking the cloud for a server
and saving its id, a server deleted behind DeskOps's back, a lost hypervisor."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cloud.drivers import driver_for
from cloud.errors import CloudError, CloudUnavailable
from cloud.models import Region
from portal.services import audit_record

from ..choices import VMState
from ..models import VM

logger = logging.getLogger(__name__)

# States in which a VM row claims to have a server in the cloud.
WITH_SERVER = (
    VMState.BUILDING,
    VMState.READY,
    VMState.IN_USE,
    VMState.RECYCLING,
    VMState.QUARANTINED,
)


@dataclass
class ReconcileReport:
    adopted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    orphans_left: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    health_changed: list[str] = field(default_factory=list)


def region_reconcile(*, region: Region) -> ReconcileReport:
    """Compare the region's servers with DeskOps's VMs and repair the difference:

    - a server whose name is a VM still waiting for its server id (the worker died
      right after the create call) is adopted: the VM gets the id and is followed
      as booting, so it is neither booted twice nor counted twice;
    - any other server DeskOps does not know, older than `RECONCILE_GRACE_SECONDS`,
      is deleted (or only reported, with `RECONCILE_ORPHANS=report`);
    - a VM whose server the cloud no longer has is marked lost; its user gets a
      fresh desktop at the next connect and the thin client's heartbeat says
      reconnect."""
    report = ReconcileReport()
    driver = driver_for(region)
    servers = {server.id: server for server in driver.list_servers()}
    now = timezone.now()
    grace = timedelta(seconds=settings.RECONCILE_GRACE_SECONDS)

    # Servers of VMs that are alive; a failed VM's server left behind is an orphan.
    known_ids = set(
        VM.objects.filter(pool__region=region, state__in=WITH_SERVER).values_list(
            "server_id", flat=True
        )
    )
    waiting = {
        vm.name: vm
        for vm in VM.objects.filter(pool__region=region, state=VMState.REQUESTED, server_id="")
    }
    for server in servers.values():
        if server.id in known_ids:
            continue
        vm = waiting.get(server.name)
        if vm is not None and _adopt(vm=vm, server_id=server.id, host=server.host, now=now):
            report.adopted.append(vm.name)
            continue
        if server.created_at and now - server.created_at < grace:
            continue  # perhaps a create whose id is being saved right now
        if settings.RECONCILE_ORPHANS == "delete":
            try:
                driver.delete_server(server.id)
            except CloudError as exc:
                logger.warning("could not delete orphan server %s: %s", server.id, exc)
                report.orphans_left.append(server.name)
                continue
            logger.info("deleted orphan server %s (%s) in %s", server.name, server.id, region.name)
            report.deleted.append(server.name)
        else:
            report.orphans_left.append(server.name)

    report.health_changed = _vms_record_health(region=region, servers=servers, now=now)

    gone = VM.objects.filter(pool__region=region, state__in=WITH_SERVER).exclude(
        server_id__in=list(servers)
    )
    for vm in gone.select_related("pool"):
        with transaction.atomic():
            marked = VM.objects.filter(pk=vm.pk, state=vm.state).update(
                state=VMState.LOST, error="The cloud no longer has this server."
            )
            if marked:
                audit_record(
                    action="vm.lost",
                    obj=vm,
                    before={"state": vm.state, "server_id": vm.server_id},
                    after={"state": VMState.LOST},
                )
                report.lost.append(vm.name)
    return report


def _vms_record_health(*, region: Region, servers: dict, now) -> list[str]:
    """Keep each VM's view of its server fresh: the cloud's status, its address,
    and since when a running VM has had no address — a desktop whose DHCP lease was
    lost looks alive to the cloud but no thin client can reach it."""
    changed = []
    running = (VMState.READY, VMState.IN_USE)
    for vm in VM.objects.filter(pool__region=region, state__in=WITH_SERVER).exclude(server_id=""):
        server = servers.get(vm.server_id)
        if server is None:
            continue
        fields = {}
        if vm.cloud_status != server.status:
            fields["cloud_status"] = server.status
        if server.ip_address and vm.ip_address != server.ip_address:
            fields["ip_address"] = server.ip_address
        no_address = vm.state in running and server.status == "ACTIVE" and not server.ip_address
        if no_address and vm.ip_missing_since is None:
            fields["ip_missing_since"] = now
            logger.warning("%s is running without an IP address", vm.name)
        elif not no_address and vm.ip_missing_since is not None:
            fields["ip_missing_since"] = None
        if fields:
            VM.objects.filter(pk=vm.pk).update(**fields)
            changed.append(vm.name)
    return changed


def _adopt(*, vm: VM, server_id: str, host: str, now) -> bool:
    adopted = VM.objects.filter(pk=vm.pk, state=VMState.REQUESTED, server_id="").update(
        server_id=server_id, state=VMState.BUILDING, boot_started_at=now, host_name=host
    )
    if adopted:
        audit_record(action="vm.adopt", obj=vm, after={"server_id": server_id, "host": host})
    return bool(adopted)


def regions_reconcile(*, region_id: int | None = None) -> dict[str, dict]:
    """Reconcile every enabled region (or only the one of `region_id`); one
    unreachable region is skipped."""
    result = {}
    regions = Region.objects.filter(enabled=True)
    if region_id is not None:
        regions = regions.filter(pk=region_id)
    for region in regions:
        try:
            report = region_reconcile(region=region)
        except CloudUnavailable as exc:
            logger.warning("reconciliation of %s skipped: %s", region.name, exc)
            continue
        result[region.name] = {key: len(value) for key, value in vars(report).items()}
    return result
