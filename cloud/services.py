"""Writes of the cloud layer: refreshing the host inventory from each region."""

import logging

from django.db import transaction
from django.utils import timezone

from portal.services import audit_record

from .choices import HostState
from .drivers import driver_for
from .errors import CloudUnavailable
from .models import Host, Region, SimHost, SimServer

logger = logging.getLogger(__name__)


def region_sync_hosts(*, region: Region) -> int:
    """Refresh the region's `Host` rows from its driver; hosts the cloud no longer
    reports are marked down rather than deleted, so their history stays. Returns
    how many hosts the cloud reported."""
    reported = driver_for(region).list_hosts()
    with transaction.atomic():
        seen = []
        # A host with an agent has its response time measured by the agent's poll
        # (cloud.agents); the cloud's figure does not overwrite it.
        with_agent = set(
            Host.objects.filter(region=region).exclude(agent_url="").values_list("name", flat=True)
        )
        for info in reported:
            keep_response = info.response_ms is None or info.name in with_agent
            Host.objects.update_or_create(
                region=region,
                name=info.name,
                defaults={
                    "state": info.state,
                    "vcpus": info.vcpus,
                    "vcpus_used": info.vcpus_used,
                    "memory_mb": info.memory_mb,
                    "memory_mb_used": info.memory_mb_used,
                    "cpu_allocation_ratio": info.cpu_allocation_ratio,
                    "ram_allocation_ratio": info.ram_allocation_ratio,
                    "running_vms": info.running_vms,
                    # A cloud that does not measure response time leaves the last
                    # value (e.g. from a host agent) alone.
                    **({} if keep_response else {"response_ms": info.response_ms}),
                },
            )
            seen.append(info.name)
        Host.objects.filter(region=region).exclude(name__in=seen).update(state=HostState.DOWN)
        _hosts_track_down_since(region)
        Region.objects.filter(pk=region.pk).update(hosts_synced_at=timezone.now(), reachable=True)
    return len(reported)


def _hosts_track_down_since(region: Region) -> None:
    """Remember when each host was first seen down, and forget it once the host is
    up again: host-failure recovery acts on hosts down longer than a threshold."""
    hosts = Host.objects.filter(region=region)
    hosts.filter(state=HostState.DOWN, down_since__isnull=True).update(down_since=timezone.now())
    hosts.exclude(state=HostState.DOWN).exclude(down_since=None).update(down_since=None)


def regions_sync_hosts(*, region_id: int | None = None) -> dict[str, int | None]:
    """Sync every enabled region (or only the one of `region_id`); a region whose
    cloud is unreachable is skipped (and logged) so one bad region does not stop
    the others."""
    result: dict[str, int | None] = {}
    regions = Region.objects.filter(enabled=True)
    if region_id is not None:
        regions = regions.filter(pk=region_id)
    for region in regions:
        try:
            result[region.name] = region_sync_hosts(region=region)
        except CloudUnavailable as exc:
            logger.warning("host sync of region %s failed: %s", region.name, exc)
            Region.objects.filter(pk=region.pk).update(reachable=False)
            result[region.name] = None
    return result


def sim_host_set_state(*, sim_host: SimHost, state: str, actor: str, request_id: str = "") -> None:
    """Fault injection: a host of the simulated cloud goes down (or comes back). The
    region's hosts are synced at once, so the portal sees it without waiting for the
    next periodic sync."""
    before = sim_host.state
    SimHost.objects.filter(pk=sim_host.pk).update(state=state)
    audit_record(
        action="fault.host_state",
        obj=sim_host,
        actor=actor,
        before={"state": before},
        after={"state": state},
        request_id=request_id,
    )
    try:
        region_sync_hosts(region=sim_host.region)
    except CloudUnavailable as exc:  # the simulation may be failing API calls on purpose
        logger.warning("host sync after fault injection failed: %s", exc)


def sim_server_drop_address(
    *, region: Region, actor: str, request_id: str = ""
) -> SimServer | None:
    """Fault injection: one running server of a simulated region loses its IP
    address, as a desktop does when its DHCP lease is not renewed. Returns the
    server, or None when no running server has an address."""
    server = (
        SimServer.objects.filter(region=region, status="ACTIVE", ip_address__isnull=False)
        .order_by("?")
        .first()
    )
    if server is None:
        return None
    before = server.ip_address
    SimServer.objects.filter(pk=server.pk).update(ip_address=None)
    audit_record(
        action="fault.drop_address",
        obj=server,
        actor=actor,
        before={"ip_address": before},
        after={"ip_address": None},
        request_id=request_id,
    )
    return server
