"""How long monitoring keeps what it records. Connect records feed the reports;
past `REPORTS_RETENTION_DAYS` they are deleted so the table does not grow without
end (one row per thin-client login adds up fast at a call center)."""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import ConnectRecord

logger = logging.getLogger(__name__)

# Rows deleted per statement: short transactions, no long lock on a big table.
PRUNE_BATCH = 5000


def connect_records_prune() -> int:
    """Delete the connect records older than `REPORTS_RETENTION_DAYS` and return
    how many were deleted. Deletes in batches; two runs at once are harmless (each
    deletes what the other has not)."""
    cutoff = timezone.now() - timedelta(days=settings.REPORTS_RETENTION_DAYS)
    old = ConnectRecord.objects.filter(at__lt=cutoff).order_by()
    deleted = 0
    while True:
        batch = list(old.values_list("pk", flat=True)[:PRUNE_BATCH])
        if not batch:
            break
        deleted += ConnectRecord.objects.filter(pk__in=batch).delete()[0]
    if deleted:
        logger.info("pruned %s connect records from before %s", deleted, cutoff)
    return deleted
