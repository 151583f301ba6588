"""Celery: the broker, the beat schedule and the limits every task runs under.

Without `CELERY_BROKER_URL` the broker is kombu's SQLAlchemy transport over an
SQLite file in the var folder: no daemon to install, and web, worker and beat on
one machine share it. (Kombu's filesystem transport was tried first: its reader
can take a message file before the writer has filled it, and the worker then
stops on an empty message.) Production points it at Redis (or RabbitMQ)."""

from datetime import timedelta

from .cloud import RECONCILE_INTERVAL
from .env import VAR_DIR, env
from .maintenance import MAINTENANCE_ADVANCE_INTERVAL
from .monitoring import ALERT_EVALUATE_INTERVAL, HOST_AGENT_INTERVAL, PROBE_INTERVAL

CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=f"sqla+sqlite:///{VAR_DIR / 'broker.sqlite3'}"
)
if CELERY_BROKER_URL.startswith("sqla+sqlite"):
    # Web, worker and beat write to the file at once: wait for SQLite's lock rather
    # than fail. (The transport hands these options to SQLAlchemy's create_engine.)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"connect_args": {"timeout": 30}}

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that queues a task must not hang on a broker that is down: one quick
# retry, then the caller carries on (the periodic jobs catch up).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Beat keeps its schedule in the database (django-celery-beat), so maintenance
# tasks scheduled from the portal's pages reach it without a restart. At start it
# copies the static entries below into the database.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

POOL_REFILL_INTERVAL = env.int("POOL_REFILL_INTERVAL", default=5)
HOST_SYNC_INTERVAL = env.int("HOST_SYNC_INTERVAL", default=30)

# Periodic jobs are short and idempotent; expiring a queued copy after one interval
# keeps a stalled worker from working through a backlog of stale ticks.
CELERY_BEAT_SCHEDULE = {
    "pools-poll-boots": {
        "task": "pools.tasks.vms_poll_boots",
        "schedule": timedelta(seconds=POOL_REFILL_INTERVAL),
        "options": {"expires": POOL_REFILL_INTERVAL},
    },
    "pools-refill": {
        "task": "pools.tasks.pools_refill_all",
        "schedule": timedelta(seconds=POOL_REFILL_INTERVAL),
        "options": {"expires": POOL_REFILL_INTERVAL},
    },
    "allocation-complete-swaps": {
        "task": "allocation.tasks.swaps_complete_pending",
        "schedule": timedelta(seconds=POOL_REFILL_INTERVAL),
        "options": {"expires": POOL_REFILL_INTERVAL},
    },
    "pools-delete-expired-quarantine": {
        "task": "pools.tasks.vms_delete_expired_quarantine",
        "schedule": timedelta(minutes=10),
        "options": {"expires": 600},
    },
    "allocation-expire-idle-sessions": {
        "task": "allocation.tasks.sessions_expire_idle",
        "schedule": timedelta(seconds=60),
        "options": {"expires": 60},
    },
    "pools-reconcile": {
        "task": "pools.tasks.regions_reconcile",
        "schedule": timedelta(seconds=RECONCILE_INTERVAL),
        "options": {"expires": RECONCILE_INTERVAL},
    },
    "cloud-sync-hosts": {
        "task": "cloud.tasks.hosts_sync_all",
        "schedule": timedelta(seconds=HOST_SYNC_INTERVAL),
        "options": {"expires": HOST_SYNC_INTERVAL},
    },
    "cloud-poll-host-agents": {
        "task": "cloud.tasks.hosts_poll_agents",
        "schedule": timedelta(seconds=HOST_AGENT_INTERVAL),
        "options": {"expires": HOST_AGENT_INTERVAL},
    },
    "monitoring-recover-failed-hosts": {
        "task": "monitoring.tasks.hosts_recover_failed",
        "schedule": timedelta(seconds=10),
        "options": {"expires": 10},
    },
    "monitoring-follow-incidents": {
        "task": "monitoring.tasks.incidents_follow",
        "schedule": timedelta(seconds=POOL_REFILL_INTERVAL),
        "options": {"expires": POOL_REFILL_INTERVAL},
    },
    "monitoring-evaluate-alerts": {
        "task": "monitoring.tasks.alerts_evaluate",
        "schedule": timedelta(seconds=ALERT_EVALUATE_INTERVAL),
        "options": {"expires": ALERT_EVALUATE_INTERVAL},
    },
    "maintenance-advance-runs": {
        "task": "maintenance.tasks.runs_advance",
        "schedule": timedelta(seconds=MAINTENANCE_ADVANCE_INTERVAL),
        "options": {"expires": MAINTENANCE_ADVANCE_INTERVAL},
    },
    "monitoring-probe-login": {
        "task": "monitoring.tasks.probe_login",
        "schedule": timedelta(seconds=PROBE_INTERVAL),
        "options": {"expires": PROBE_INTERVAL},
    },
    "monitoring-prune-probe-results": {
        "task": "monitoring.tasks.probe_results_prune",
        "schedule": timedelta(days=1),
        "options": {"expires": 3600},
    },
    "monitoring-prune-connect-records": {
        "task": "monitoring.tasks.connect_records_prune",
        "schedule": timedelta(days=1),
        "options": {"expires": 3600},
    },
}
# The database scheduler knows a periodic task's expiry as `expire_seconds`; the
# `expires` of each entry is handed over under that name too.
for _entry in CELERY_BEAT_SCHEDULE.values():
    if "expires" in _entry.get("options", {}):
        _entry["options"]["expire_seconds"] = _entry["options"]["expires"]
