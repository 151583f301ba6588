"""Writes of the pools app, one module per capability."""

from .boots import host_clear_failures, pool_check_pause, pool_resume, vms_poll_boots
from .claims import vm_claim_ready, vm_recycle, vm_return_to_pool
from .feature_classes import feature_class_apply, feature_class_create
from .prewarm import prewarm_apply, shift_create, shift_delete, shift_update
from .quarantine import vm_quarantine, vms_delete_expired_quarantine
from .reconcile import region_reconcile, regions_reconcile
from .refill import pool_refill, pools_refill_all, pools_refill_soon

__all__ = [
    "feature_class_apply",
    "feature_class_create",
    "host_clear_failures",
    "pool_check_pause",
    "pool_refill",
    "pool_resume",
    "prewarm_apply",
    "pools_refill_all",
    "pools_refill_soon",
    "region_reconcile",
    "regions_reconcile",
    "shift_create",
    "shift_delete",
    "shift_update",
    "vm_claim_ready",
    "vm_recycle",
    "vm_return_to_pool",
    "vm_quarantine",
    "vms_delete_expired_quarantine",
    "vms_poll_boots",
]
