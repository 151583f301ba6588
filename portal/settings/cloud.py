"""The cloud layer: defaults for the simulated cloud and the limits that protect
the portal from a slow or broken cloud."""

from .env import env

# Boot time range of a new simulated region, in seconds (a Windows VM on a real
# cloud takes minutes; the demo uses tens of seconds).
SIM_BOOT_SECONDS_MIN = env.float("SIM_BOOT_SECONDS_MIN", default=20.0)
SIM_BOOT_SECONDS_MAX = env.float("SIM_BOOT_SECONDS_MAX", default=45.0)

# How long a VM swapped out by the help desk is kept for investigation.
VM_QUARANTINE_HOURS = env.float("VM_QUARANTINE_HOURS", default=24.0)

# A VM that has not finished booting after this long is marked as failed and its
# server deleted, so a stuck build never holds a slot of the boot cap for ever.
VM_BOOT_TIMEOUT = env.int("VM_BOOT_TIMEOUT", default=900)

# Reconciliation: what to do with a server the portal does not know ("delete" or
# "report"), how young a server may be before it counts as unknown, and how often
# the job runs (seconds).
RECONCILE_ORPHANS = env.str("RECONCILE_ORPHANS", default="delete")
if RECONCILE_ORPHANS not in {"delete", "report"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("RECONCILE_ORPHANS must be 'delete' or 'report'.")
RECONCILE_GRACE_SECONDS = env.int("RECONCILE_GRACE_SECONDS", default=600)
RECONCILE_INTERVAL = env.int("RECONCILE_INTERVAL", default=300)

# OpenStack regions: seconds before an API call gives up, how many times a call that
# failed for a passing reason (no connection, timeout, 5xx) is retried and the first
# pause between tries (doubling), and how long a create waits for Nova's scheduler
# to accept or refuse the server (0: do not wait).
OPENSTACK_API_TIMEOUT = env.float("OPENSTACK_API_TIMEOUT", default=30.0)
OPENSTACK_RETRIES = env.int("OPENSTACK_RETRIES", default=3)
OPENSTACK_RETRY_BACKOFF = env.float("OPENSTACK_RETRY_BACKOFF", default=0.5)
OPENSTACK_SCHEDULE_TIMEOUT = env.float("OPENSTACK_SCHEDULE_TIMEOUT", default=30.0)

# Boot-storm planner (shift pre-warming): the boot time assumed for a pool with too
# few recent boots to measure, the least boot time a measurement may give (instant
# test boots must not plan a zero lead), the margin kept between the last boot and
# the shift's start, and how far ahead of a shift pre-warming may start at most.
PREWARM_BOOT_SECONDS = env.int("PREWARM_BOOT_SECONDS", default=300)
PREWARM_BOOT_SECONDS_FLOOR = env.int("PREWARM_BOOT_SECONDS_FLOOR", default=30)
PREWARM_SAFETY_MARGIN_MINUTES = env.int("PREWARM_SAFETY_MARGIN_MINUTES", default=10)
PREWARM_MAX_LEAD_HOURS = env.int("PREWARM_MAX_LEAD_HOURS", default=12)
if not 1 <= PREWARM_MAX_LEAD_HOURS <= 23:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("PREWARM_MAX_LEAD_HOURS must be between 1 and 23.")
