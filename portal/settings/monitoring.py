"""Monitoring: host-failure recovery, VM health, alerts, the login probe and
reports. Every variable is in the README's configuration table."""

from django.core.exceptions import ImproperlyConfigured

from .env import env

# A host whose compute service has been down this long is declared failed: it
# leaves placement and its users are moved (seconds).
HOST_FAILURE_THRESHOLD = env.int("HOST_FAILURE_THRESHOLD", default=60)
# More than this share of a region's hosts down at once looks like the cloud's
# control plane failing, not hosts: recovery then waits for an operator.
HOST_FAILURE_MAX_SHARE = env.float("HOST_FAILURE_MAX_SHARE", default=0.5)

# The synthetic login probe: a real connect through the thin-client API at
# PROBE_URL with a probe account and an enrolled probe terminal, every
# PROBE_INTERVAL seconds. It runs only when the account, its password and the
# terminal are all set.
PROBE_URL = env.str("PROBE_URL", default="http://127.0.0.1:8000")
PROBE_USERNAME = env.str("PROBE_USERNAME", default="")
PROBE_PASSWORD = env.str("PROBE_PASSWORD", default="")
PROBE_TERMINAL = env.str("PROBE_TERMINAL", default="")
PROBE_INTERVAL = env.int("PROBE_INTERVAL", default=60)
# Seconds to wait for the connection and for each read of the answer.
PROBE_TIMEOUT = env.float("PROBE_TIMEOUT", default=10.0)
PROBE_RETENTION_DAYS = env.int("PROBE_RETENTION_DAYS", default=30)

# Connect records (one per thin-client connect, read by the reports) older than
# this many days are deleted by a daily job.
REPORTS_RETENTION_DAYS = env.int("REPORTS_RETENTION_DAYS", default=90)
if REPORTS_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("REPORTS_RETENTION_DAYS must be at least 1.")

# Host agents (agent/deskops_host_agent.py): hosts with an agent URL are polled
# every HOST_AGENT_INTERVAL seconds with this bearer token; empty: no polling.
# HOST_AGENT_TIMEOUT (seconds) bounds each poll, HOST_AGENT_CONCURRENCY the hosts
# polled at once.
HOST_AGENT_TOKEN = env.str("HOST_AGENT_TOKEN", default="")
HOST_AGENT_INTERVAL = env.int("HOST_AGENT_INTERVAL", default=15)
HOST_AGENT_TIMEOUT = env.float("HOST_AGENT_TIMEOUT", default=3.0)
HOST_AGENT_CONCURRENCY = env.int("HOST_AGENT_CONCURRENCY", default=16)
if HOST_AGENT_INTERVAL < 1 or HOST_AGENT_TIMEOUT <= 0 or HOST_AGENT_CONCURRENCY < 1:
    raise ImproperlyConfigured(
        "HOST_AGENT_INTERVAL and HOST_AGENT_CONCURRENCY must be at least 1, "
        "HOST_AGENT_TIMEOUT above 0."
    )

# Alerts (monitoring/alerts.py), evaluated every ALERT_EVALUATE_INTERVAL seconds. A
# pool below its minimum is notified once it has stayed short for
# ALERT_POOL_GRACE_SECONDS (a login burst empties a pool for a moment); more than
# ALERT_BOOT_FAILURES failed boots of one pool within ALERT_BOOT_FAILURES_MINUTES
# warn; the last ALERT_PROBE_FAILURES login probes all failing is critical; a ready
# or in-use VM without an IP address for ALERT_VM_NO_IP_SECONDS gets an alert of
# its own.
ALERT_EVALUATE_INTERVAL = env.int("ALERT_EVALUATE_INTERVAL", default=15)
ALERT_POOL_GRACE_SECONDS = env.int("ALERT_POOL_GRACE_SECONDS", default=120)
ALERT_BOOT_FAILURES = env.int("ALERT_BOOT_FAILURES", default=3)
ALERT_BOOT_FAILURES_MINUTES = env.int("ALERT_BOOT_FAILURES_MINUTES", default=15)
ALERT_PROBE_FAILURES = env.int("ALERT_PROBE_FAILURES", default=2)
ALERT_VM_NO_IP_SECONDS = env.int("ALERT_VM_NO_IP_SECONDS", default=120)
if ALERT_EVALUATE_INTERVAL < 1 or ALERT_PROBE_FAILURES < 1 or ALERT_BOOT_FAILURES_MINUTES < 1:
    raise ImproperlyConfigured(
        "ALERT_EVALUATE_INTERVAL, ALERT_PROBE_FAILURES and ALERT_BOOT_FAILURES_MINUTES "
        "must be at least 1."
    )
# Who is told when an alert opens or fires again: e-mail addresses (comma-separated,
# sent with Django's mail settings, see EMAIL_URL) and/or a URL that receives a JSON
# POST. Neither set: alerts are only shown on the Alerts page.
ALERT_EMAIL_TO = env.list("ALERT_EMAIL_TO", default=[])
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
if ALERT_WEBHOOK_URL and not ALERT_WEBHOOK_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("ALERT_WEBHOOK_URL must be an http:// or https:// URL.")
