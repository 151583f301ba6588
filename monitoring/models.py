"""What monitoring keeps: incidents with their timeline, alerts, the login probe's
results and one record per thin-client connect (for the dashboard's allocation
figures and the reports)."""

from django.db import models
from django.db.models import Q

from .choices import AlertKind, AlertSeverity, AlertStatus, IncidentKind, IncidentStatus


class Incident(models.Model):
    """Something that broke and what DeskOps did about it, step by step. A host
    failure opens one: the host is taken out of placement, its VMs are marked lost
    or evacuated, its users are re-served; the incident is `recovered` when the last
    user has a desktop again and `closed` when an operator has dealt with the cause."""

    kind = models.CharField(max_length=32, choices=IncidentKind.choices)
    title = models.CharField(max_length=255)
    status = models.CharField(
        max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.OPEN, db_index=True
    )
    region = models.ForeignKey(
        "cloud.Region", on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents"
    )
    host = models.ForeignKey(
        "cloud.Host", on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents"
    )
    opened_at = models.DateTimeField(auto_now_add=True, db_index=True)
    recovered_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=150, blank=True)
    vms_affected = models.PositiveIntegerField(default=0)
    users_affected = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "host"],
                condition=Q(status="open"),
                name="one_open_incident_per_host_and_kind",
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def recovery_seconds(self) -> float | None:
        if self.recovered_at is None:
            return None
        return (self.recovered_at - self.opened_at).total_seconds()


class IncidentEvent(models.Model):
    """One line of an incident's timeline."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return self.message


class Alert(models.Model):
    """A condition operators must see: a pool below its minimum, boots failing, a
    host down, the login probe failing, refills falling behind. The evaluator opens
    one per condition (`key`), keeps `last_seen_at` fresh while the condition holds
    and sets `cleared_at` when it no longer does; operators acknowledge and close
    it. At most one alert per key is not closed."""

    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    key = models.CharField(
        max_length=200, help_text="What the alert is about, e.g. 'pool_below_min:sh-agents'."
    )
    severity = models.CharField(
        max_length=16, choices=AlertSeverity.choices, default=AlertSeverity.WARNING
    )
    status = models.CharField(
        max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN, db_index=True
    )
    message = models.CharField(max_length=500)
    opened_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_seen_at = models.DateTimeField()
    cleared_at = models.DateTimeField(
        null=True, blank=True, help_text="When the condition stopped holding; empty while it holds."
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=150, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    notify_error = models.CharField(max_length=255, blank=True)
    incident = models.ForeignKey(
        Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=~Q(status="closed"), name="one_unclosed_alert_per_key"
            )
        ]

    def __str__(self) -> str:
        return self.message


class ProbeResult(models.Model):
    """One run of the synthetic login probe: a real connect through the thin-client
    API with the probe account and terminal."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    ok = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(
        max_length=64, help_text="'ready', 'preparing' or the error code of the answer."
    )
    latency_ms = models.FloatField(null=True, blank=True)
    vm_name = models.CharField(max_length=64, blank=True)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"probe {self.outcome} at {self.at:%Y-%m-%d %H:%M:%S}"


class ConnectRecord(models.Model):
    """One thin-client connect as answered: when, to whom, how (a VM claimed from
    the ready ones, the user's existing binding, or 'preparing'), how fast. The
    dashboard's allocations per minute and the reports are read from these."""

    class Source(models.TextChoices):
        CLAIMED = "claimed", "A ready VM from the pool"
        BINDING = "binding", "The user's bound VM"
        NONE = "", "No VM"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    outcome = models.CharField(
        max_length=64, help_text="'ready', 'preparing' or the error code of the answer."
    )
    source = models.CharField(max_length=16, choices=Source.choices, blank=True)
    latency_ms = models.FloatField()
    username = models.CharField(max_length=150, blank=True)
    terminal_serial = models.CharField(max_length=64, blank=True)
    site = models.ForeignKey(
        "allocation.Site", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    pool = models.ForeignKey(
        "pools.VMPool", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"connect {self.outcome} at {self.at:%Y-%m-%d %H:%M:%S}"
