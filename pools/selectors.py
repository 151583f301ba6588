"""Reads of the pools app."""

from django.db.models import Count, Q, QuerySet

from .choices import BOOTING_STATES, VMState
from .models import VMPool


def pool_summaries() -> QuerySet[VMPool]:
    """Every pool with its VM counts by state, in one query."""
    return VMPool.objects.select_related("region", "feature_class").annotate(
        ready_count=Count("vms", filter=Q(vms__state=VMState.READY)),
        booting_count=Count("vms", filter=Q(vms__state__in=BOOTING_STATES)),
        in_use_count=Count("vms", filter=Q(vms__state=VMState.IN_USE)),
        error_count=Count("vms", filter=Q(vms__state=VMState.ERROR)),
    )
