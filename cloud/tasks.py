from celery import shared_task

from .services import regions_sync_hosts


@shared_task
def hosts_sync_all() -> dict:
    return regions_sync_hosts()
