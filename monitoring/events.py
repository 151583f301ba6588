"""Live-page events: tell the dashboards that something they show has changed.

Services call `dashboard_changed()` after they change pools, VMs, hosts, incidents
or alerts, in web processes and Celery workers alike. Each connected dashboard then
reads a fresh snapshot from the database at once instead of at its next periodic
push. The event carries no data, only a reason for the logs: the database stays the
one source of truth, and an event that is lost (a channel layer that is down, the
in-memory layer of another process) costs only the wait until the periodic push."""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

DASHBOARD_GROUP = "dashboard"
DASHBOARD_CHANGED = "dashboard.changed"
# A channel layer that does not answer within this many seconds is given up on:
# a service must never wait on the dashboards.
SEND_TIMEOUT = 1.0


class _PendingEvent:
    """The one event a transaction sends when it commits, however many changes it
    made: a service that changes fifty VMs in one transaction sends one event."""

    def __init__(self, reason: str):
        self.reasons = [reason] if reason else []

    def add(self, reason: str) -> None:
        if reason and reason not in self.reasons and len(self.reasons) < 5:
            self.reasons.append(reason)

    def __call__(self) -> None:
        _send("; ".join(self.reasons))


def _pending_event(using=None) -> _PendingEvent | None:
    """This transaction's event, if one is already waiting for the commit."""
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        return None
    for entry in getattr(connection, "run_on_commit", []):
        callback = entry[1] if isinstance(entry, tuple) and len(entry) > 1 else None
        if isinstance(callback, _PendingEvent):
            return callback
    return None


def dashboard_changed(reason: str = "") -> None:
    """Tell every connected dashboard to push a fresh snapshot, once the current
    transaction commits (at once outside a transaction; never if it rolls back).
    Calls within one transaction send one event. Never raises: a channel layer that
    fails is logged at warning level."""
    try:
        pending = _pending_event()
        if pending is not None:
            pending.add(reason)
            return
        transaction.on_commit(_PendingEvent(reason))
    except Exception as exc:  # e.g. no database connection to attach the hook to
        logger.warning("dashboard event %r not sent: %s", reason, exc)


def _send(reason: str) -> None:
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        message = {"type": DASHBOARD_CHANGED, "reason": reason[:200]}
        async_to_sync(_group_send)(layer, message)
    except Exception as exc:  # any layer error: the periodic push still comes
        logger.warning("dashboard event %r not sent: %s %s", reason, type(exc).__name__, exc)


async def _group_send(layer, message: dict) -> None:
    await asyncio.wait_for(layer.group_send(DASHBOARD_GROUP, message), timeout=SEND_TIMEOUT)
