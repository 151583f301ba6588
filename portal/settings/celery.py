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
# A queue per region (portal/celery_routing.py): on, the work on one region's cloud
# goes to `region.<name>`, consumed by that region's worker, and the all-regions
# periodic jobs fan out per region; off, one worker consumes everything from the
# default queue.
CELERY_REGION_QUEUES = env.bool("CELERY_REGION_QUEUES", default=False)
CELERY_TASK_ROUTES = ("portal.celery_routing.route_task",)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Beat keeps its schedule in the database (django-celery-beat), so maintenance
# tasks scheduled from the portal's pages reach it without a restart. At start it
# copies the static entries below into the database.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

POOL_REFILL_INTERVAL = env.int("POOL_REFILL_INTERVAL", default=5)
# A connect that hands out a VM asks for a refill of its pool at once; at most one
# such request per pool is queued in this many seconds (0: one per connect).
POOL_REFILL_SOON_DEBOUNCE = env.int("POOL_REFILL_SOON_DEBOUNCE", default=1)
HOST_SYNC_INTERVAL = env.int("HOST_SYNC_INTERVAL", default=30)

# Periodic jobs are short and idempotent; expiring a queued copy after one interval
# (or after `expires` seconds) keeps a stalled worker from working through a backlog
# of stale ticks. The database scheduler reads the expiry as `expire_seconds`.


def _every(seconds: float, task: str, *, expires: float | None = None) -> dict:
    expires = seconds if expires is None else expires
    return {
        "task": task,
        "schedule": timedelta(seconds=seconds),
        "options": {"expires": expires, "expire_seconds": expires},
    }


DAY = 24 * 3600
CELERY_BEAT_SCHEDULE = {
    "pools-poll-boots": _every(POOL_REFILL_INTERVAL, "pools.tasks.vms_poll_boots"),
    "pools-refill": _every(POOL_REFILL_INTERVAL, "pools.tasks.pools_refill_all"),
    "allocation-complete-swaps": _every(
        POOL_REFILL_INTERVAL, "allocation.tasks.swaps_complete_pending"
    ),
    "pools-delete-expired-quarantine": _every(600, "pools.tasks.vms_delete_expired_quarantine"),
    "allocation-expire-idle-sessions": _every(60, "allocation.tasks.sessions_expire_idle"),
    "pools-reconcile": _every(RECONCILE_INTERVAL, "pools.tasks.regions_reconcile"),
    "cloud-sync-hosts": _every(HOST_SYNC_INTERVAL, "cloud.tasks.hosts_sync_all"),
    "cloud-poll-host-agents": _every(HOST_AGENT_INTERVAL, "cloud.tasks.hosts_poll_agents"),
    "monitoring-recover-failed-hosts": _every(10, "monitoring.tasks.hosts_recover_failed"),
    "monitoring-follow-incidents": _every(
        POOL_REFILL_INTERVAL, "monitoring.tasks.incidents_follow"
    ),
    "monitoring-evaluate-alerts": _every(
        ALERT_EVALUATE_INTERVAL, "monitoring.tasks.alerts_evaluate"
    ),
    "maintenance-advance-runs": _every(
        MAINTENANCE_ADVANCE_INTERVAL, "maintenance.tasks.runs_advance"
    ),
    "monitoring-probe-login": _every(PROBE_INTERVAL, "monitoring.tasks.probe_login"),
    "monitoring-prune-probe-results": _every(
        DAY, "monitoring.tasks.probe_results_prune", expires=3600
    ),
    "monitoring-prune-connect-records": _every(
        DAY, "monitoring.tasks.connect_records_prune", expires=3600
    ),
    # Boot times and caps drift: the shifts' pre-warm windows are planned again daily.
    "pools-prewarm-replan": _every(DAY, "pools.tasks.prewarm_replan", expires=3600),
}
