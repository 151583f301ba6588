from celery import shared_task

from . import agents
from .services import regions_sync_hosts


@shared_task
def hosts_sync_all() -> dict:
    return regions_sync_hosts()


@shared_task
def hosts_poll_agents() -> dict:
    return agents.hosts_poll_agents()
