"""Maintenance tasks: validated, saved with their schedule, audited."""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.services import audit_record

from ..choices import MaintenanceAction, ScheduleKind
from ..models import MaintenanceTask
from ..schedules import schedule_sync

logger = logging.getLogger(__name__)

# A task's plain fields, in three groups the form and the API serializer reuse (they
# add the many-to-many targets, which are saved apart).
TASK_DESCRIPTION_FIELDS = (
    "name",
    "description",
    "action",
    "script",
    "package",
    "image",
    "pool",
)
TASK_PLAIN_TARGET_FIELDS = ("target_hosts", "target_tags")
TASK_POLICY_FIELDS = (
    "credential",
    "schedule_kind",
    "run_at",
    "cron",
    "window_start",
    "window_end",
    "window_ends_next_day",
    "batch_size",
    "max_parallel",
    "pause_seconds",
    "canary_size",
    "max_failure_percent",
    "in_use_policy",
    "notice_minutes",
    "notice_message",
    "timeout_seconds",
    "enabled",
)
TASK_FIELDS = TASK_DESCRIPTION_FIELDS + TASK_PLAIN_TARGET_FIELDS + TASK_POLICY_FIELDS


def _plain(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "_meta"):
        return str(value)
    return value


# The longest terminal tag a task may target.
TAG_MAX_LENGTH = 64


def task_snapshot(
    task: MaintenanceTask, *, target_pools=None, target_vms=None, target_allocators=None
) -> dict:
    """The task as its audit records show it (the script in full: what ran in the
    guests is exactly what an auditor wants to see)."""
    data = {name: _plain(getattr(task, name)) for name in TASK_FIELDS}
    if task.pk:
        pools = target_pools if target_pools is not None else task.target_pools.all()
        vms = target_vms if target_vms is not None else task.target_vms.all()
        allocators = (
            target_allocators if target_allocators is not None else task.target_allocators.all()
        )
        data["target_pools"] = sorted(pool.name for pool in pools)
        data["target_vms"] = sorted(vm.name for vm in vms)
        data["target_allocators"] = sorted(allocator.name for allocator in allocators)
    return data


def _clean_names(values):
    """A list of names stripped, without blanks or repeats (order kept); anything
    but a list is left for `task_validate` to refuse."""
    if not isinstance(values, list):
        return values
    names = [value.strip() if isinstance(value, str) else value for value in values]
    return list(dict.fromkeys(name for name in names if name != ""))


def task_validate(
    *,
    task: MaintenanceTask,
    target_pools: list,
    target_vms: list,
    target_allocators: list | None = None,
    previous_run_at=None,
) -> None:
    """Every rule of a task, its targets included; raises `ValidationError` with
    the messages by field. Shared by the pages, the API and `task_save`."""
    errors: dict[str, list[str]] = {}
    try:
        task.full_clean(exclude=["target_pools", "target_vms", "target_allocators"])
    except ValidationError as exc:
        errors = dict(exc.message_dict)
    has_targets = bool(
        target_pools or target_vms or target_allocators or task.target_hosts or task.target_tags
    )
    if task.action == MaintenanceAction.REBUILD:
        if has_targets:
            errors.setdefault("target_pools", []).append(
                "An image roll-out targets its pool only: leave the target lists empty."
            )
    elif task.action and not has_targets:
        errors.setdefault("target_pools", []).append(
            "Choose what the task works on: pools, hosts, VMs, allocators or terminal tags."
        )
    if not isinstance(task.target_hosts, list) or not all(
        isinstance(name, str) and name.strip() for name in task.target_hosts
    ):
        errors.setdefault("target_hosts", []).append("Host names, as a list of text.")
    if not isinstance(task.target_tags, list) or not all(
        isinstance(tag, str) and tag.strip() for tag in task.target_tags
    ):
        errors.setdefault("target_tags", []).append("Terminal tags, as a list of text.")
    else:
        too_long = [tag for tag in task.target_tags if len(tag) > TAG_MAX_LENGTH]
        if too_long:
            errors.setdefault("target_tags", []).append(
                f"A terminal tag has at most {TAG_MAX_LENGTH} characters."
            )
    if (
        task.schedule_kind == ScheduleKind.ONCE
        and task.run_at
        and task.run_at != previous_run_at
        and task.run_at <= timezone.now()
    ):
        errors.setdefault("run_at", []).append("The start time has passed.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def task_save(
    *,
    task: MaintenanceTask | None,
    fields: dict,
    target_pools: list | None = None,
    target_vms: list | None = None,
    target_allocators: list | None = None,
    actor: str,
    request_id: str = "",
) -> MaintenanceTask:
    """Create or change a task, keep its periodic task (django-celery-beat) in step
    with its schedule, and audit the change (before and after of what changed).
    Target lists given as `None` stay as they are."""
    created = task is None
    if created:
        task = MaintenanceTask(created_by=actor)
        before = None
        previous_run_at = None
    else:
        task = MaintenanceTask.objects.select_for_update().get(pk=task.pk)
        before = task_snapshot(task)
        previous_run_at = task.run_at
    for name, value in fields.items():
        if name in TASK_FIELDS:
            setattr(task, name, value)
    if isinstance(task.target_hosts, list):
        task.target_hosts = [str(name).strip() for name in task.target_hosts if str(name).strip()]
    task.target_tags = _clean_names(task.target_tags)
    pools = list(target_pools) if target_pools is not None else None
    vms = list(target_vms) if target_vms is not None else None
    allocators = list(target_allocators) if target_allocators is not None else None
    if pools is None:
        pools_now = list(task.target_pools.all()) if task.pk else []
    if vms is None:
        vms_now = list(task.target_vms.all()) if task.pk else []
    if allocators is None:
        allocators_now = list(task.target_allocators.all()) if task.pk else []
    task_validate(
        task=task,
        target_pools=pools if pools is not None else pools_now,
        target_vms=vms if vms is not None else vms_now,
        target_allocators=allocators if allocators is not None else allocators_now,
        previous_run_at=previous_run_at,
    )
    task.save()
    if pools is not None:
        task.target_pools.set(pools)
    if vms is not None:
        task.target_vms.set(vms)
    if allocators is not None:
        task.target_allocators.set(allocators)
    schedule_sync(task)
    after = task_snapshot(task)
    if created:
        audit_record(
            action="maintenancetask.create",
            obj=task,
            actor=actor,
            after=after,
            request_id=request_id,
        )
    else:
        changed = [key for key in after if before.get(key) != after[key]]
        if changed:
            audit_record(
                action="maintenancetask.update",
                obj=task,
                actor=actor,
                before={key: before.get(key) for key in changed},
                after={key: after[key] for key in changed},
                request_id=request_id,
            )
    logger.info("maintenance task %s saved by %s", task.name, actor)
    return task


@transaction.atomic
def task_delete(*, task: MaintenanceTask, actor: str, request_id: str = "") -> None:
    """Delete a task that never ran (one with runs is disabled instead, so the
    history of what was done to the desktops stays)."""
    audit_record(
        action="maintenancetask.delete",
        obj=task,
        actor=actor,
        before=task_snapshot(task),
        request_id=request_id,
    )
    periodic = task.periodic_task
    task.delete()
    if periodic is not None:
        periodic.delete()
