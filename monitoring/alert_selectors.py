"""Reads of alerts, for the Alerts page and the API."""

from collections.abc import Iterable

from django.db.models import QuerySet

from .choices import AlertStatus
from .models import Alert

# What "not closed" means to the page's default filter.
UNCLOSED_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)


def alert_list(
    *,
    statuses: Iterable[str] = (),
    kinds: Iterable[str] = (),
    severities: Iterable[str] = (),
) -> QuerySet[Alert]:
    """Alerts, newest first, narrowed to any of the given statuses, kinds and
    severities (an empty filter lets everything through)."""
    alerts = Alert.objects.select_related("incident").order_by("-opened_at", "-pk")
    if statuses := list(statuses):
        alerts = alerts.filter(status__in=statuses)
    if kinds := list(kinds):
        alerts = alerts.filter(kind__in=kinds)
    if severities := list(severities):
        alerts = alerts.filter(severity__in=severities)
    return alerts
