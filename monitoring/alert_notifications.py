"""Telling operators about an alert: an e-mail to `ALERT_EMAIL_TO` and/or a JSON
POST to `ALERT_WEBHOOK_URL`. The evaluator queues `alert_notify` (the Celery task)
when an alert opens or fires again; the task calls `alert_notify` below and retries
the channels that failed for a passing reason (a mail server or webhook receiver
that is down, a timeout, a 5xx answer)."""

import json
import logging
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from .choices import AlertStatus
from .models import Alert

logger = logging.getLogger(__name__)

EMAIL = "email"
WEBHOOK = "webhook"
WEBHOOK_TIMEOUT_SECONDS = 5
# Answers after which the same POST may well succeed later.
TRANSIENT_HTTP_STATUSES = {408, 425, 429, 500, 502, 503, 504}
NOTIFY_ERROR_MAX_LENGTH = Alert._meta.get_field("notify_error").max_length


class DeliveryFailed(Exception):
    """A channel did not take the notification; `transient` says whether trying
    again later may help."""

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


@dataclass
class NotifyResult:
    """What became of one notification: the channels that took it, those worth
    trying again, and every error by channel."""

    delivered: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: str = ""


def alert_url(alert: Alert) -> str:
    """The alert's page, as operators reach the portal."""
    path = reverse("monitoring:alert-detail", args=[alert.pk])
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def alert_payload(alert: Alert) -> dict:
    """The JSON body of the webhook."""
    return {
        "kind": alert.kind,
        "key": alert.key,
        "severity": alert.severity,
        "status": alert.status,
        "message": alert.message,
        "opened_at": alert.opened_at.isoformat(),
        "url": alert_url(alert),
    }


def configured_channels() -> list[str]:
    channels = []
    if settings.ALERT_EMAIL_TO:
        channels.append(EMAIL)
    if settings.ALERT_WEBHOOK_URL:
        channels.append(WEBHOOK)
    return channels


def _send_email(alert: Alert) -> None:
    subject = f"[DeskOps {alert.get_severity_display().upper()}] {alert.message}"
    lines = [
        alert.message,
        "",
        f"Kind: {alert.get_kind_display()}",
        f"Severity: {alert.get_severity_display()}",
        f"Opened: {timezone.localtime(alert.opened_at):%Y-%m-%d %H:%M:%S %Z}",
        f"About: {alert.key}",
        "",
        f"Acknowledge or close it at {alert_url(alert)}",
    ]
    try:
        send_mail(
            subject[:200].replace("\n", " "),
            "\n".join(lines),
            None,
            list(settings.ALERT_EMAIL_TO),
            fail_silently=False,
        )
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryFailed(f"recipients refused: {exc}", transient=False) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(str(exc) or type(exc).__name__, transient=True) from exc


def _send_webhook(alert: Alert) -> None:
    url = settings.ALERT_WEBHOOK_URL
    request = urllib.request.Request(  # noqa: S310 - the setting is checked to be http(s)
        url,
        data=json.dumps(alert_payload(alert)).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "DeskOps-alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(
            f"HTTP {exc.code} {exc.reason}", transient=exc.code in TRANSIENT_HTTP_STATUSES
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DeliveryFailed(f"cannot reach the webhook: {reason}", transient=True) from exc


SENDERS = {EMAIL: _send_email, WEBHOOK: _send_webhook}


def alert_notify(*, alert_id: int, channels: list[str] | None = None) -> NotifyResult:
    """Send an alert through the configured channels (or only `channels` of them,
    when a retry sends again what failed) and record the outcome on the alert:
    `notified_at` once a channel took it, `notify_error` naming the channels that
    did not (emptied when all did). Acknowledged and closed alerts are not sent."""
    result = NotifyResult()
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None or alert.status != AlertStatus.OPEN:
        result.skipped = "gone" if alert is None else alert.status
        return result
    wanted = [c for c in configured_channels() if channels is None or c in channels]
    if not wanted:
        if channels is None:
            Alert.objects.filter(pk=alert.pk).update(
                notify_error="Not sent: neither ALERT_EMAIL_TO nor ALERT_WEBHOOK_URL is set."
            )
        result.skipped = "no channel"
        return result
    for channel in wanted:
        try:
            SENDERS[channel](alert)
        except DeliveryFailed as exc:
            logger.warning("alert %s: %s notification failed: %s", alert.pk, channel, exc)
            result.errors[channel] = str(exc)
            if exc.transient:
                result.retry.append(channel)
        else:
            result.delivered.append(channel)
    update = {
        "notify_error": "; ".join(f"{c}: {e}" for c, e in result.errors.items())[
            :NOTIFY_ERROR_MAX_LENGTH
        ]
    }
    if result.delivered:
        logger.info("alert %s notified by %s", alert.pk, ", ".join(result.delivered))
        Alert.objects.filter(pk=alert.pk, notified_at__isnull=True).update(
            notified_at=timezone.now()
        )
    Alert.objects.filter(pk=alert.pk).update(**update)
    return result
