"""Celery tasks of the cloud layer. With region queues on, the all-regions jobs
queue one task per region for that region's worker (portal/celery_routing.py)."""

from celery import shared_task
from django.conf import settings

from portal.celery_routing import region_queues_enabled, regions_fan_out

from . import agents
from .services import regions_sync_hosts


@shared_task
def hosts_sync_all() -> dict:
    if region_queues_enabled():
        return regions_fan_out(region_sync_hosts, expires=settings.HOST_SYNC_INTERVAL)
    return regions_sync_hosts()


@shared_task
def region_sync_hosts(region_id: int) -> dict:
    return regions_sync_hosts(region_id=region_id)


@shared_task
def hosts_poll_agents() -> dict:
    if region_queues_enabled() and settings.HOST_AGENT_TOKEN:
        # Hosts of a disabled region keep reporting, as without region queues.
        return regions_fan_out(
            region_poll_agents, enabled_only=False, expires=settings.HOST_AGENT_INTERVAL
        )
    return agents.hosts_poll_agents()


@shared_task
def region_poll_agents(region_id: int) -> dict:
    return agents.hosts_poll_agents(region_id=region_id)
