"""Celery tasks of the pools app: thin wrappers that call one service each."""

from celery import shared_task
from django.conf import settings

from portal.celery_routing import ids_fan_out, region_queues_enabled, regions_fan_out

from . import selectors, services

# With region queues on, the all-regions jobs below only queue one task per region
# (or pool) for that region's worker (portal/celery_routing.py); off, they do the
# work themselves, as on a single machine.


@shared_task
def pools_refill_all() -> dict:
    if region_queues_enabled():
        queued = ids_fan_out(
            pool_refill, selectors.pool_ids_to_refill(), expires=settings.POOL_REFILL_INTERVAL
        )
        return {"queued": queued}
    return services.pools_refill_all()


@shared_task
def pool_refill(pool_id: int) -> int:
    return services.pool_refill(pool_id=pool_id)


@shared_task
def vms_poll_boots() -> dict:
    if region_queues_enabled():
        # Every region, enabled or not: a VM booting in a region just disabled is
        # still followed to its end, as without region queues.
        return regions_fan_out(
            region_poll_boots, enabled_only=False, expires=settings.POOL_REFILL_INTERVAL
        )
    return services.vms_poll_boots()


@shared_task
def region_poll_boots(region_id: int) -> dict:
    return services.vms_poll_boots(region_id=region_id)


@shared_task
def regions_reconcile() -> dict:
    if region_queues_enabled():
        return regions_fan_out(region_reconcile, expires=settings.RECONCILE_INTERVAL)
    return services.regions_reconcile()


@shared_task
def region_reconcile(region_id: int) -> dict:
    return services.regions_reconcile(region_id=region_id)


@shared_task
def vms_delete_expired_quarantine() -> int | dict:
    if region_queues_enabled():
        return regions_fan_out(region_delete_expired_quarantine, enabled_only=False, expires=600)
    return services.vms_delete_expired_quarantine()


@shared_task
def region_delete_expired_quarantine(region_id: int) -> int:
    return services.vms_delete_expired_quarantine(region_id=region_id)


@shared_task
def prewarm_replan() -> str:
    return str(services.prewarm_apply())
