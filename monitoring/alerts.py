"""Alerts: the evaluator that opens, refreshes, clears and re-fires them from the
state of pools, hosts, VMs and the login probe, and the operators' acknowledge and
close.

Every rule below looks at the database as it is now and returns the conditions
that hold, each with a `key` naming what it is about. The evaluator then brings the
alerts in line with them, one alert row at a time:

- a condition with no alert that is not closed opens one;
- a condition whose alert is firing refreshes `last_seen_at` (and its message and
  severity, which may have changed: "4 boots failed" becomes "6 boots failed");
- a condition whose alert had cleared sets `cleared_at` back to empty: a re-fire;
- an alert whose condition no longer holds gets `cleared_at`.

Operators are told (`alert_notify`, on commit) when an alert opens and when it
re-fires, not at every evaluation; acknowledged alerts are not told again. Closing
an alert whose condition still holds is allowed: the next evaluation opens a new
alert for it.

Safe to run twice at once. Each alert is changed under its row lock (on SQLite the
transaction holds the database's write lock), the unique constraint on unclosed
keys refuses a second open alert, and each evaluation carries the moment it
started: a change is only applied by an evaluation that looked later than the one
that last changed the alert, so an evaluation that read the world before another
one cannot undo what the newer one saw.

**The pool grace (POOL_BELOW_MIN).** A pool is briefly short after a burst of
logins, until refill's boots come in. Nothing in a pool's rows says since when it
has been short, so the alert row itself is the memory: the alert opens as soon as
the pool is short (the Alerts page shows it at once, as "not notified yet"), but
operators are only notified once it has held for `ALERT_POOL_GRACE_SECONDS` after
opening. An alert that clears within the grace, never notified and never
acknowledged, was a passing shortfall: the evaluator closes it itself (audited as
closed by "system") so it does not wait for an operator.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from cloud.choices import HostState
from cloud.models import Host
from pools.choices import VMState
from pools.models import VM, VMPool
from pools.selectors import pool_summaries, pool_target
from portal.errors import ServiceError
from portal.services import SYSTEM_ACTOR, audit_record

from .choices import AlertKind, AlertSeverity, AlertStatus, IncidentStatus
from .events import dashboard_changed
from .models import Alert, Incident, ProbeResult

logger = logging.getLogger(__name__)

KEY_MAX_LENGTH = Alert._meta.get_field("key").max_length
MESSAGE_MAX_LENGTH = Alert._meta.get_field("message").max_length


@dataclass(frozen=True)
class Condition:
    """One condition that holds now, as the alert about it should read."""

    kind: str
    key: str
    severity: str
    message: str
    incident_id: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "key", self.key[:KEY_MAX_LENGTH])
        object.__setattr__(self, "message", self.message[:MESSAGE_MAX_LENGTH])


# -- the rules ------------------------------------------------------------------


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def rule_pool_below_min(now: datetime) -> list[Condition]:
    """POOL_BELOW_MIN: an enabled pool of an enabled region holds fewer ready VMs
    than its `min_ready`. Critical when it holds none (every login waits for a
    boot), else a warning. Notified only after `ALERT_POOL_GRACE_SECONDS` (see the
    module's docstring)."""
    pools = pool_summaries().filter(enabled=True, region__enabled=True, min_ready__gt=0)
    return [
        Condition(
            kind=AlertKind.POOL_BELOW_MIN,
            key=f"pool_below_min:{pool.name}",
            severity=AlertSeverity.CRITICAL if pool.ready_count == 0 else AlertSeverity.WARNING,
            message=(
                f"Pool {pool.name} has {pool.ready_count} ready VMs, below its minimum of "
                f"{pool.min_ready} ({pool.booting_count} booting)."
            ),
        )
        for pool in pools
        if pool.ready_count < pool.min_ready
    ]


def rule_boot_failures(now: datetime) -> list[Condition]:
    """BOOT_FAILURES, two conditions per pool with keys of their own:

    - critical: the pool's refills are paused by its boot-failure rule
      (`paused_at` set), until an operator resumes it;
    - warning: more than `ALERT_BOOT_FAILURES` of its VMs are in state error and
      were updated within the last `ALERT_BOOT_FAILURES_MINUTES` (the window the
      pause rule counts in the same way), while the pool still refills."""
    conditions = [
        Condition(
            kind=AlertKind.BOOT_FAILURES,
            key=f"boot_failures:paused:{pool.name}",
            severity=AlertSeverity.CRITICAL,
            message=f"Refills of pool {pool.name} are paused: {pool.pause_reason or 'no reason'}",
        )
        for pool in VMPool.objects.filter(paused_at__isnull=False)
    ]
    minutes = settings.ALERT_BOOT_FAILURES_MINUTES
    failing = (
        VM.objects.filter(
            state=VMState.ERROR,
            updated_at__gte=now - timedelta(minutes=minutes),
            pool__paused_at__isnull=True,
        )
        .values("pool__name")
        .annotate(failed=Count("id"))
        .filter(failed__gt=settings.ALERT_BOOT_FAILURES)
    )
    conditions += [
        Condition(
            kind=AlertKind.BOOT_FAILURES,
            key=f"boot_failures:errors:{row['pool__name']}",
            severity=AlertSeverity.WARNING,
            message=(
                f"{row['failed']} VMs of pool {row['pool__name']} failed in the last "
                f"{minutes} minutes."
            ),
        )
        for row in failing
    ]
    return conditions


def rule_host_down(now: datetime) -> list[Condition]:
    """HOST_DOWN (critical): a host whose compute service is not up (down or
    disabled) or that DeskOps declared failed (`failed_at`). The alert links the
    host's incident that is not closed, when there is one."""
    hosts = list(
        Host.objects.filter(~Q(state=HostState.UP) | Q(failed_at__isnull=False)).select_related(
            "region"
        )
    )
    incidents = dict(
        Incident.objects.filter(host__in=hosts)
        .exclude(status=IncidentStatus.CLOSED)
        .order_by("opened_at")  # the newest wins below
        .values_list("host_id", "pk")
    )
    conditions = []
    for host in hosts:
        if host.failed_at:
            what = f"was declared failed {_ago(host.failed_at, now)} ago; its users were moved"
        elif host.down_since:
            what = f"has been {host.state} for {_ago(host.down_since, now)}"
        else:
            what = f"is {host.state}"
        conditions.append(
            Condition(
                kind=AlertKind.HOST_DOWN,
                key=f"host_down:{host.region.name}/{host.name}",
                severity=AlertSeverity.CRITICAL,
                message=f"Host {host.name} of region {host.region.name} {what}.",
                incident_id=incidents.get(host.pk),
            )
        )
    return conditions


def rule_probe_failing(now: datetime) -> list[Condition]:
    """PROBE_FAILING (critical): the last `ALERT_PROBE_FAILURES` runs of the login
    probe all failed. Fewer runs than that (or none): no alert."""
    needed = settings.ALERT_PROBE_FAILURES
    last = list(ProbeResult.objects.order_by("-at", "-pk")[:needed])
    if len(last) < needed or any(result.ok for result in last):
        return []
    latest = last[0]
    detail = f": {latest.detail}" if latest.detail else ""
    return [
        Condition(
            kind=AlertKind.PROBE_FAILING,
            key="probe_failing",
            severity=AlertSeverity.CRITICAL,
            message=(
                f"The last {needed} login probes failed; the latest answered "
                f"{latest.outcome or 'nothing'}{detail}"
            ),
        )
    ]


def rule_refill_behind(now: datetime) -> list[Condition]:
    """REFILL_BEHIND (warning): an enabled, unpaused pool holds fewer ready VMs than
    its current (calendar) target while some of its boots have been running for
    more than half of `VM_BOOT_TIMEOUT`: a new VM requested that long ago, or a
    recycled one whose rebuild started that long ago. Boots that slow mean the cloud
    or its storage is struggling, well before the boot timeout fails them.

    A pool that boots nothing at all while short is not this rule's business: a
    paused pool has its BOOT_FAILURES alert, and a pool below its minimum its
    POOL_BELOW_MIN one."""
    limit = now - timedelta(seconds=settings.VM_BOOT_TIMEOUT / 2)
    slow = dict(
        VM.objects.filter(pool__enabled=True, pool__paused_at__isnull=True)
        .filter(
            Q(state__in=[VMState.REQUESTED, VMState.BUILDING], requested_at__lt=limit)
            | Q(state=VMState.RECYCLING, boot_started_at__lt=limit)
        )
        .values("pool_id")
        .annotate(slow=Count("id"))
        .values_list("pool_id", "slow")
    )
    if not slow:
        return []
    minutes = round(settings.VM_BOOT_TIMEOUT / 120)
    conditions = []
    for pool in pool_summaries().filter(pk__in=slow).prefetch_related("schedules"):
        target = pool_target(pool, at=now)
        if pool.ready_count >= target:
            continue
        conditions.append(
            Condition(
                kind=AlertKind.REFILL_BEHIND,
                key=f"refill_behind:{pool.name}",
                severity=AlertSeverity.WARNING,
                message=(
                    f"Refill of pool {pool.name} is falling behind: {slow[pool.pk]} boots "
                    f"running for more than {minutes} min, {pool.ready_count} of "
                    f"{target} VMs ready."
                ),
            )
        )
    return conditions


CRITICAL_IF_IN_USE = {VMState.IN_USE: AlertSeverity.CRITICAL, VMState.READY: AlertSeverity.WARNING}


def rule_vm_no_ip(now: datetime) -> list[Condition]:
    """VM_NO_IP, one alert per VM: a ready or in-use VM for which the cloud has
    reported no IP address for more than `ALERT_VM_NO_IP_SECONDS` (a lost DHCP
    lease: nobody can reach the desktop). Critical when a user has it, else a
    warning."""
    since = now - timedelta(seconds=settings.ALERT_VM_NO_IP_SECONDS)
    vms = VM.objects.filter(
        state__in=[VMState.READY, VMState.IN_USE], ip_missing_since__lt=since
    ).select_related("pool")
    return [
        Condition(
            kind=AlertKind.VM_NO_IP,
            key=f"vm_no_ip:{vm.name}",
            severity=CRITICAL_IF_IN_USE[vm.state],
            message=(
                f"VM {vm.name} of pool {vm.pool.name} ({vm.get_state_display().lower()}) has "
                f"had no IP address for {_ago(vm.ip_missing_since, now)}."
            ),
        )
        for vm in vms
    ]


RULES = (
    rule_pool_below_min,
    rule_boot_failures,
    rule_host_down,
    rule_probe_failing,
    rule_refill_behind,
    rule_vm_no_ip,
)


def alert_conditions(now: datetime) -> dict[str, Condition]:
    """Every condition that holds now, by key. A rule that raises stops the whole
    evaluation: clearing alerts from a partial view would tell operators that
    problems went away when they were not even looked at."""
    return {condition.key: condition for rule in RULES for condition in rule(now)}


# -- the evaluator --------------------------------------------------------------


def _grace(kind: str) -> timedelta:
    """How long a new alert of this kind must hold before anyone is notified."""
    if kind == AlertKind.POOL_BELOW_MIN:
        return timedelta(seconds=settings.ALERT_POOL_GRACE_SECONDS)
    return timedelta(0)


def _notify_on_commit(alert: Alert) -> None:
    """Queue the notification once the alert's change is committed. Acknowledged
    and closed alerts are not notified. A broker that is down costs only this
    notification, so it is logged, not raised."""
    if alert.status != AlertStatus.OPEN:
        return
    from .tasks import alert_notify

    alert_id = alert.pk

    def send():
        try:
            alert_notify.delay(alert_id)
        except Exception as exc:  # any broker error: the alert page still shows it
            logger.warning("could not queue the notification of alert %s: %s", alert_id, exc)

    transaction.on_commit(send)


def _alert_open(condition: Condition, now: datetime) -> bool:
    """Open an alert for a condition; False when another evaluation opened one for
    the same key first (the unique constraint said so)."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                kind=condition.kind,
                key=condition.key,
                severity=condition.severity,
                message=condition.message,
                last_seen_at=now,
                incident_id=condition.incident_id,
            )
    except IntegrityError:
        return False
    logger.info("alert %s opened: %s", alert.key, alert.message)
    if not _grace(alert.kind):
        _notify_on_commit(alert)
    return True


def _alert_fire(condition: Condition, now: datetime) -> str | None:
    """Bring the alert of a condition that holds up to date: open it, refresh it,
    or re-fire it. Returns "opened", "refired" or None."""
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .exclude(status=AlertStatus.CLOSED)
            .filter(key=condition.key)
            .first()
        )
        if alert is None:
            return "opened" if _alert_open(condition, now) else None
        if alert.last_seen_at >= now or (alert.cleared_at and alert.cleared_at >= now):
            return None  # an evaluation that looked later has been here already
        seen_before = alert.last_seen_at
        refired = alert.cleared_at is not None
        alert.last_seen_at = now
        alert.message = condition.message
        alert.severity = condition.severity
        fields = ["last_seen_at", "message", "severity"]
        if condition.incident_id and condition.incident_id != alert.incident_id:
            alert.incident_id = condition.incident_id
            fields.append("incident")
        if refired:
            alert.cleared_at = None
            fields.append("cleared_at")
            if alert.status == AlertStatus.OPEN:
                # The notification fields describe the current firing.
                alert.notified_at, alert.notify_error = None, ""
                fields += ["notified_at", "notify_error"]
        alert.save(update_fields=fields)
        if refired:
            logger.info("alert %s fired again: %s", alert.key, alert.message)
            _notify_on_commit(alert)
            return "refired"
        grace = _grace(alert.kind)
        if grace and alert.notified_at is None and seen_before < alert.opened_at + grace <= now:
            # It has now held for the whole grace: this evaluation is the one that
            # saw the grace end, so it is the one that notifies.
            _notify_on_commit(alert)
        return None


def _alert_clear(alert_id: int, now: datetime) -> str | None:
    """The condition of this alert no longer holds: set `cleared_at`, or close an
    alert of a passing shortfall that cleared within its grace. Returns "cleared",
    "transient" or None."""
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .exclude(status=AlertStatus.CLOSED)
            .filter(pk=alert_id)
            .first()
        )
        if alert is None or alert.cleared_at is not None or alert.last_seen_at >= now:
            return None
        alert.cleared_at = now
        grace = _grace(alert.kind)
        if (
            grace
            and alert.status == AlertStatus.OPEN
            and alert.notified_at is None
            and now < alert.opened_at + grace
        ):
            alert.status, alert.closed_at, alert.closed_by = AlertStatus.CLOSED, now, SYSTEM_ACTOR
            alert.save(update_fields=["cleared_at", "status", "closed_at", "closed_by"])
            audit_record(
                action="alert.close",
                obj=alert,
                before={"status": AlertStatus.OPEN},
                after={"status": AlertStatus.CLOSED, "reason": "cleared within its grace"},
            )
            return "transient"
        alert.save(update_fields=["cleared_at"])
        logger.info("alert %s cleared", alert.key)
        return "cleared"


def alerts_apply(conditions: dict[str, Condition], now: datetime) -> dict[str, int]:
    """Bring the alerts in line with the conditions seen at `now` (see the module's
    docstring)."""
    counts = {"opened": 0, "refired": 0, "cleared": 0, "transient": 0}
    for condition in conditions.values():
        outcome = _alert_fire(condition, now)
        if outcome:
            counts[outcome] += 1
    stale = (
        Alert.objects.exclude(status=AlertStatus.CLOSED)
        .filter(cleared_at__isnull=True, last_seen_at__lt=now)
        .values_list("pk", "key")
    )
    for alert_id, key in list(stale):
        if key in conditions:
            continue
        outcome = _alert_clear(alert_id, now)
        if outcome:
            counts[outcome] += 1
    return counts


def alerts_evaluate() -> dict[str, int]:
    """Evaluate every rule and open, refresh, clear and re-fire alerts to match.
    Returns how many alerts were opened, refired and cleared (and, among the
    cleared, how many closed as passing shortfalls: "transient")."""
    now = timezone.now()
    counts = alerts_apply(alert_conditions(now), now)
    if any(counts.values()):
        logger.info("alerts evaluated: %s", counts)
        dashboard_changed("alerts")
    return counts


# -- the operators' actions -----------------------------------------------------


class AlertConflict(ServiceError):
    status_code = 409
    code = "alert_conflict"
    default_detail = "The alert cannot change that way."


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor: str, request_id: str = "") -> Alert:
    """An operator is on it: the alert stays listed until closed, and it is not
    notified again if it re-fires."""
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.status != AlertStatus.OPEN:
        raise AlertConflict(f"This alert is already {alert.get_status_display().lower()}.")
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = timezone.now()
    alert.acknowledged_by = actor
    alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
    audit_record(
        action="alert.acknowledge",
        obj=alert,
        actor=actor,
        before={"status": AlertStatus.OPEN},
        after={"status": alert.status},
        request_id=request_id,
    )
    return alert


@transaction.atomic
def alert_close(*, alert: Alert, actor: str, request_id: str = "") -> Alert:
    """The operator has dealt with it. An alert whose condition still holds may be
    closed too; the next evaluation then opens a new alert for the condition."""
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.status == AlertStatus.CLOSED:
        raise AlertConflict("This alert is already closed.")
    before = {"status": alert.status}
    alert.status = AlertStatus.CLOSED
    alert.closed_at = timezone.now()
    alert.closed_by = actor
    alert.save(update_fields=["status", "closed_at", "closed_by"])
    audit_record(
        action="alert.close",
        obj=alert,
        actor=actor,
        before=before,
        after={"status": alert.status, "firing": alert.cleared_at is None},
        request_id=request_id,
    )
    return alert
