from django.db import models


class IncidentKind(models.TextChoices):
    HOST_FAILURE = "host_failure", "Host failure"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Recovering"
    RECOVERED = "recovered", "Recovered"
    CLOSED = "closed", "Closed"


class AlertKind(models.TextChoices):
    POOL_BELOW_MIN = "pool_below_min", "Pool below minimum"
    BOOT_FAILURES = "boot_failures", "Boot failures"
    HOST_DOWN = "host_down", "Host down"
    PROBE_FAILING = "probe_failing", "Login probe failing"
    REFILL_BEHIND = "refill_behind", "Refill falling behind"
    VM_NO_IP = "vm_no_ip", "VM without an IP address"


class AlertSeverity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    CLOSED = "closed", "Closed"
