"""A Celery queue per region, so the work that talks to one region's cloud runs
on workers close to that cloud.

With `CELERY_REGION_QUEUES` on, a task that works on one pool, region or
maintenance item goes to the queue `region.<region name>`; everything else (and
any task whose object cannot be found) goes to the default queue. Each region then
runs a worker consuming `-Q region.<name>`, and one or more general workers consume
the default queue. With the setting off (the embedded default) the router routes
nothing, so a single worker keeps doing everything.

The periodic jobs that loop over every region in one task (refill, boot polling,
reconciliation, host sync, host agents, host-failure recovery, deleting
quarantined VMs) stay on the beat schedule under their own names. With routing on,
they only fan out: they queue one task per region (or per pool), which lands on
that region's queue. Each per-region task runs the same service, narrowed to its
region, so it stays safe to run twice.
"""

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings

logger = logging.getLogger(__name__)

QUEUE_PREFIX = "region."
# How long a looked-up region is remembered in this process. A pool never changes
# region in practice, and a renamed region needs its worker's queue renamed anyway;
# the short lifetime only bounds how long a stale answer can last.
LOOKUP_SECONDS = 60.0
# Entries kept at most; beyond that the memory is simply started afresh.
LOOKUP_MAX_ENTRIES = 10_000


def region_queues_enabled() -> bool:
    return bool(getattr(settings, "CELERY_REGION_QUEUES", False))


def region_queue(region_name: str) -> str:
    """The queue of a region's worker: `celery -A portal worker -Q region.<name>`."""
    return f"{QUEUE_PREFIX}{region_name}"


def region_queue_names() -> list[str]:
    """The queues of every region when region queues are on (for the queue-depth
    metric: a region whose worker is missing shows as a growing queue)."""
    if not region_queues_enabled():
        return []
    from cloud.models import Region

    return [
        region_queue(name)
        for name in Region.objects.order_by("name").values_list("name", flat=True)
    ]


# -- from a task's argument to its region ----------------------------------------


def _region_of_region(region_id: int) -> str | None:
    from cloud.models import Region

    return Region.objects.filter(pk=region_id).values_list("name", flat=True).first()


def _region_of_pool(pool_id: int) -> str | None:
    from pools.models import VMPool

    return VMPool.objects.filter(pk=pool_id).values_list("region__name", flat=True).first()


def _region_of_run_item(item_id: int) -> str | None:
    from maintenance.models import RunItem

    return (
        RunItem.objects.filter(pk=item_id).values_list("vm__pool__region__name", flat=True).first()
    )


# Task name -> (the argument that names the object, its position, how to find its
# region). Tasks not listed here always go to the default queue.
REGION_BOUND_TASKS: dict[str, tuple[str, int, Callable[[int], str | None]]] = {
    "pools.tasks.pool_refill": ("pool_id", 0, _region_of_pool),
    "pools.tasks.region_poll_boots": ("region_id", 0, _region_of_region),
    "pools.tasks.region_reconcile": ("region_id", 0, _region_of_region),
    "pools.tasks.region_delete_expired_quarantine": ("region_id", 0, _region_of_region),
    "cloud.tasks.region_sync_hosts": ("region_id", 0, _region_of_region),
    "cloud.tasks.region_poll_agents": ("region_id", 0, _region_of_region),
    "monitoring.tasks.region_recover_failed_hosts": ("region_id", 0, _region_of_region),
    # Guest commands and cloud actions on one VM, and the notice to its user.
    "maintenance.tasks.item_execute": ("item_id", 0, _region_of_run_item),
    "maintenance.tasks.item_notify": ("item_id", 0, _region_of_run_item),
}

_lookups: dict[tuple[str, int], tuple[float, str | None]] = {}
_lookups_lock = threading.Lock()


def lookups_forget() -> None:
    """Forget every remembered region (tests; a region renamed in a hurry)."""
    with _lookups_lock:
        _lookups.clear()


def _object_id(args, kwargs, name: str, position: int) -> int | None:
    value = (kwargs or {}).get(name)
    if value is None and args and len(args) > position:
        value = args[position]
    # bool is an int, but never an id.
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def region_for_task(task_name: str, args=(), kwargs=None) -> str | None:
    """The region a task's work belongs to, or None: a task that is not region
    bound, an argument that is not an id, an object that does not exist (any more),
    or a database that does not answer. Remembered for `LOOKUP_SECONDS`."""
    bound = REGION_BOUND_TASKS.get(task_name)
    if bound is None:
        return None
    name, position, lookup = bound
    object_id = _object_id(args, kwargs, name, position)
    if object_id is None:
        return None
    key = (lookup.__name__, object_id)
    now = time.monotonic()
    with _lookups_lock:
        remembered = _lookups.get(key)
    if remembered is not None and remembered[0] > now:
        return remembered[1]
    try:
        region_name = lookup(object_id)
    except Exception:  # a database hiccup must not stop the task being queued
        logger.warning(
            "no region found for %s(%s): routed to the default queue",
            task_name,
            object_id,
            exc_info=True,
        )
        return None
    with _lookups_lock:
        if len(_lookups) >= LOOKUP_MAX_ENTRIES:
            _lookups.clear()
        _lookups[key] = (now + LOOKUP_SECONDS, region_name)
    return region_name


def route_task(name, args, kwargs, options, task=None, **kw):
    """Celery router (`CELERY_TASK_ROUTES`): a region-bound task goes to its
    region's queue when region queues are on; None leaves the default."""
    if not region_queues_enabled():
        return None
    region_name = region_for_task(name, args, kwargs)
    if region_name is None:
        return None
    return {"queue": region_queue(region_name)}


# -- fanning the all-regions periodic jobs out -----------------------------------


def regions_fan_out(task, *, enabled_only: bool = True, expires: float | None = None) -> dict:
    """Queue `task(region_id)` once per region (enabled ones only, unless told
    otherwise); the router sends each to its region's queue. A region whose task
    cannot be queued is logged and skipped: the next beat tick tries again.
    Returns {region name: queued?}."""
    from cloud.models import Region

    regions = Region.objects.all()
    if enabled_only:
        regions = regions.filter(enabled=True)
    queued = {}
    for region_id, region_name in regions.order_by("name").values_list("pk", "name"):
        queued[region_name] = _send(task, region_id, expires=expires)
    return queued


def ids_fan_out(task, ids, *, expires: float | None = None) -> int:
    """Queue `task(object_id)` for each id, in order; returns how many were queued."""
    return sum(_send(task, object_id, expires=expires) for object_id in ids)


def _send(task, object_id: int, *, expires: float | None) -> bool:
    options = {} if expires is None else {"expires": expires}
    try:
        task.apply_async(args=[object_id], **options)
    except Exception as exc:  # any broker error: the next periodic pass catches up
        logger.warning("could not queue %s(%s): %s", task.name, object_id, exc)
        return False
    return True
