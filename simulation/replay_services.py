"""Services of the placement comparison: start a replay (audited) and run it.

A replay of the largest allowed day takes several seconds on a small machine, so
the page never runs one inside its request: it stores a queued run and a worker
executes it; the page shows the run's status until its report is there."""

import logging
from dataclasses import asdict, fields

from django.db import transaction
from django.utils import timezone

from pools.models import SchedulingPolicy
from portal.services import audit_record

from .models import PlacementRun
from .replay import ReplayConfig, compare

logger = logging.getLogger(__name__)

_CONFIG_FIELDS = {f.name for f in fields(ReplayConfig)}


def replay_config(**chosen) -> ReplayConfig:
    """A configuration with the chosen values, and the placement factors (mu, K)
    and host boot cap of the cloud's own scheduling policy unless chosen."""
    policy = SchedulingPolicy.current()
    values = {
        "mu": policy.response_time_factor,
        "max_failures": policy.max_boot_failures_in_row,
        "host_boot_cap": policy.host_max_concurrent_boots,
    }
    values.update({k: v for k, v in chosen.items() if k in _CONFIG_FIELDS and v is not None})
    return ReplayConfig(**values)


def _queue_execute(run_id: int) -> None:
    from .tasks import placement_run_execute as execute_task

    def send():
        try:
            execute_task.delay(run_id)
        except Exception as exc:  # a broker that is down: the run stays queued, visibly
            logger.warning("could not queue placement run %s: %s", run_id, exc)

    transaction.on_commit(send)


@transaction.atomic
def placement_run_create(*, config: ReplayConfig, actor: str, request_id: str = "") -> PlacementRun:
    """Store a queued replay and hand it to a worker after the commit."""
    run = PlacementRun.objects.create(parameters=asdict(config), created_by=actor)
    audit_record(
        action="simulation.placement_run",
        obj=run,
        actor=actor,
        after=run.parameters,
        request_id=request_id,
    )
    _queue_execute(run.pk)
    return run


def placement_run_execute(*, run_id: int) -> str:
    """Run a queued replay and store its report. Only one worker gets to run it:
    the run is claimed by a conditional update, so a task delivered twice does
    the work once."""
    claimed = PlacementRun.objects.filter(pk=run_id, status=PlacementRun.Status.QUEUED).update(
        status=PlacementRun.Status.RUNNING
    )
    if not claimed:
        return "not queued"
    run = PlacementRun.objects.get(pk=run_id)
    try:
        params = {k: v for k, v in run.parameters.items() if k in _CONFIG_FIELDS}
        report = compare(ReplayConfig(**params))
    except Exception as exc:  # a report that cannot be made must say so on the page
        logger.exception("placement run %s failed", run_id)
        PlacementRun.objects.filter(pk=run_id).update(
            status=PlacementRun.Status.FAILED, error=str(exc)[:255], finished_at=timezone.now()
        )
        return "failed"
    PlacementRun.objects.filter(pk=run_id).update(
        status=PlacementRun.Status.DONE, results=report, finished_at=timezone.now()
    )
    logger.info("placement run %s done in %s s", run_id, report["seconds"])
    return "done"


@transaction.atomic
def placement_run_record(*, report: dict, actor: str) -> PlacementRun:
    """Store a replay already run (by the command), audited like one started
    from the page."""
    run = PlacementRun.objects.create(
        parameters=report["config"],
        created_by=actor,
        status=PlacementRun.Status.DONE,
        results=report,
        finished_at=timezone.now(),
    )
    audit_record(action="simulation.placement_run", obj=run, actor=actor, after=run.parameters)
    return run
