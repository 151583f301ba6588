"""Celery tasks of monitoring: thin wrappers that call one service each."""

from celery import shared_task

from portal.celery_routing import region_queues_enabled, regions_fan_out

from . import alert_notifications, alerts, recovery, retention
from . import probe as login_probe

# A region's recovery task may wait behind that region's refills: it stays valid
# for a minute rather than one beat interval, so a busy queue delays moving users
# off a dead host instead of dropping every pass (a pass is safe to run twice).
RECOVER_EXPIRES = 60


@shared_task
def hosts_recover_failed() -> dict:
    if region_queues_enabled():
        # With region queues on, each region's worker recovers its own hosts.
        return regions_fan_out(
            region_recover_failed_hosts, enabled_only=False, expires=RECOVER_EXPIRES
        )
    return recovery.hosts_recover_failed()


@shared_task
def region_recover_failed_hosts(region_id: int) -> dict:
    return recovery.hosts_recover_failed(region_id=region_id)


@shared_task
def incidents_follow() -> int:
    return recovery.incidents_follow()


@shared_task
def probe_login() -> bool | None:
    result = login_probe.probe_login()
    return None if result is None else result.ok


@shared_task
def probe_results_prune() -> int:
    return login_probe.probe_results_prune()


@shared_task
def connect_records_prune() -> int:
    return retention.connect_records_prune()


@shared_task
def alerts_evaluate() -> dict:
    return alerts.alerts_evaluate()


# Waits before each retry of a notification that failed for a passing reason.
ALERT_NOTIFY_RETRY_COUNTDOWNS = (30, 120, 600)


@shared_task(bind=True, max_retries=len(ALERT_NOTIFY_RETRY_COUNTDOWNS))
def alert_notify(self, alert_id: int, channels: list[str] | None = None) -> dict:
    """Send an alert; the channels that failed for a passing reason are tried again
    (only those: a mail already sent is not sent twice)."""
    result = alert_notifications.alert_notify(alert_id=alert_id, channels=channels)
    if result.retry and self.request.retries < self.max_retries:
        raise self.retry(
            args=[alert_id],
            kwargs={"channels": result.retry},
            countdown=ALERT_NOTIFY_RETRY_COUNTDOWNS[self.request.retries],
        )
    return {"delivered": result.delivered, "errors": result.errors, "skipped": result.skipped}
