"""A task's schedule as django-celery-beat rows: a one-off task is a clocked
`PeriodicTask` (`one_off`, so beat disables it after it fires), a repeating task a
crontab one in the portal's time zone. Celery beat runs with
`DatabaseScheduler`, so it picks up every change without a restart. The periodic
task only calls `maintenance.tasks.task_fire(<task id>)`, which starts a run."""

from celery.schedules import crontab
from django.conf import settings
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

from .choices import ScheduleKind

FIRE_TASK = "maintenance.tasks.task_fire"


def cron_fields(expression: str) -> dict[str, str]:
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def cron_error(expression: str) -> str | None:
    """Why a cron expression is refused, or None when Celery can read it."""
    if len((expression or "").split()) != 5:
        return "A cron schedule has five fields: minute hour day-of-month month day-of-week."
    try:
        crontab(**cron_fields(expression))
    except (ValueError, IndexError) as exc:
        return f"Celery cannot read this cron schedule: {exc}"
    return None


def periodic_task_name(task) -> str:
    return f"maintenance-task-{task.pk}"


def schedule_sync(task) -> PeriodicTask | None:
    """Make the task's periodic task match its schedule: created or changed when
    it has one, removed when it is started by hand only. Returns the row."""
    periodic = task.periodic_task
    if task.schedule_kind == ScheduleKind.MANUAL:
        if periodic is not None:
            task.periodic_task = None
            type(task).objects.filter(pk=task.pk).update(periodic_task=None)
            periodic.delete()
        return None
    if periodic is None:
        periodic = PeriodicTask(name=periodic_task_name(task), task=FIRE_TASK)
    periodic.args = f"[{task.pk}]"
    periodic.description = f"Starts a run of maintenance task {task.name!r}."
    periodic.enabled = task.enabled
    periodic.interval = periodic.solar = None
    if task.schedule_kind == ScheduleKind.ONCE:
        spent = (
            periodic.pk is not None
            and periodic.total_run_count > 0
            and periodic.clocked_id is not None
            and periodic.clocked.clocked_time == task.run_at
        )
        periodic.crontab = None
        periodic.clocked, _ = ClockedSchedule.objects.get_or_create(clocked_time=task.run_at)
        periodic.one_off = True
        if spent:
            # It fired already: an edit of something else must not fire it again.
            periodic.enabled = False
        else:
            # A new time arms it again.
            periodic.last_run_at = None
            periodic.total_run_count = 0
    else:
        periodic.clocked = None
        periodic.one_off = False
        periodic.crontab, _ = CrontabSchedule.objects.get_or_create(
            **cron_fields(task.cron), timezone=settings.TIME_ZONE
        )
    periodic.save()
    if task.periodic_task_id != periodic.pk:
        task.periodic_task = periodic
        type(task).objects.filter(pk=task.pk).update(periodic_task=periodic)
    return periodic
