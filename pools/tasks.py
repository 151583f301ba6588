"""Celery tasks of the pools app: thin wrappers that call one service each."""

from celery import shared_task

from . import services


@shared_task
def pools_refill_all() -> dict:
    return services.pools_refill_all()


@shared_task
def pool_refill(pool_id: int) -> int:
    return services.pool_refill(pool_id=pool_id)


@shared_task
def vms_poll_boots() -> dict:
    return services.vms_poll_boots()


@shared_task
def regions_reconcile() -> dict:
    return services.regions_reconcile()


@shared_task
def vms_delete_expired_quarantine() -> int:
    return services.vms_delete_expired_quarantine()
