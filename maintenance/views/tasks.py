"""The maintenance task pages: the list, the form, the task's page with its latest
runs, and the Start now button."""

from datetime import UTC, datetime, timedelta

from django.contrib import messages
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_celery_beat.models import CrontabSchedule

from pools.models import VMPool
from portal.errors import ServiceError
from portal.listing import Column, Filter, Header, Listing, listing_response, yes_no_filter
from portal.roles import Role, role_required

from ..choices import ACTIVE_RUN_STATUSES, MaintenanceAction, RunStatus, ScheduleKind
from ..forms import TaskForm
from ..models import MaintenanceRun, MaintenanceTask
from ..selectors import task_active_run, task_target_vms
from ..services import run_start, task_save
from . import who

# Stand-ins for "never" when sorting by a time that may be missing, so tasks
# without one sort together at the same end on every database.
NEVER_AFTER = datetime(3000, 1, 1, tzinfo=UTC)
NEVER_BEFORE = datetime(1970, 1, 1, tzinfo=UTC)

RECENT_RUNS = 10

CRON_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year", "timezone")


def next_cron_starts(*, task_id: int | None = None) -> dict[int, datetime]:
    """When each enabled repeating task (or only `task_id`) starts next, by task
    id, read from the beat schedule it runs on (one query for all of them). A
    schedule Celery cannot read has no next start rather than breaking the page."""
    now = timezone.now()
    tasks = (
        MaintenanceTask.objects.all()
        if task_id is None
        else MaintenanceTask.objects.filter(pk=task_id)
    )
    rows = tasks.filter(
        schedule_kind=ScheduleKind.CRON,
        enabled=True,
        periodic_task__enabled=True,
        periodic_task__crontab__isnull=False,
    ).values_list("pk", *(f"periodic_task__crontab__{name}" for name in CRON_FIELDS))
    starts = {}
    for pk, *values in rows:
        try:
            schedule = CrontabSchedule(**dict(zip(CRON_FIELDS, values, strict=True))).schedule
            at = now + schedule.remaining_estimate(now)
        except (ValueError, TypeError, KeyError):
            continue
        # Beat fires on the minute; the estimate lands a hair before it.
        starts[pk] = (at + timedelta(seconds=30)).replace(second=0, microsecond=0)
    return starts


def task_next_run(task: MaintenanceTask) -> datetime | None:
    """When beat starts the task next, or None (started by hand, disabled, or a
    one-off that has fired)."""
    if not task.enabled or task.periodic_task is None or not task.periodic_task.enabled:
        return None
    if task.schedule_kind == ScheduleKind.ONCE:
        return task.run_at
    return next_cron_starts(task_id=task.pk).get(task.pk)


def _through_count(relation) -> Subquery:
    """How many rows of a task's many-to-many relation there are, as a subquery
    (no join that would multiply the rows, no query per row)."""
    through = relation.through
    return Coalesce(
        Subquery(
            through.objects.filter(maintenancetask_id=OuterRef("pk"))
            .order_by()
            .values("maintenancetask_id")
            .annotate(n=Count("pk"))
            .values("n"),
            output_field=IntegerField(),
        ),
        0,
    )


def _target_pool(queryset, value):
    """Tasks working on the pool: rolling an image out to it or targeting it."""
    through = MaintenanceTask.target_pools.through
    targeting = through.objects.filter(vmpool_id=value).values("maintenancetask_id")
    return queryset.filter(Q(pool_id=value) | Q(pk__in=targeting))


def _pool_choices():
    return VMPool.objects.order_by("name").values_list("pk", "name")


def task_targets(task: MaintenanceTask) -> str:
    """The task's targets in a few words, from the counts the list annotates."""
    if task.is_rollout:
        return f"pool {task.pool.name}" if task.pool_id else ""
    parts = []
    for count, noun in (
        (task.pool_count, "pool"),
        (len(task.target_hosts or []), "host"),
        (task.vm_count, "VM"),
        (task.allocator_count, "allocator"),
        (len(task.target_tags or []), "terminal tag"),
    ):
        if count:
            parts.append(f"{count} {noun}{'' if count == 1 else 's'}")
    return ", ".join(parts) or "nothing"


def task_schedule(task: MaintenanceTask) -> str:
    if task.schedule_kind == ScheduleKind.ONCE:
        when = timezone.localtime(task.run_at).strftime("%Y-%m-%d %H:%M") if task.run_at else ""
        return f"once, {when}"
    if task.schedule_kind == ScheduleKind.CRON:
        return f"cron {task.cron}"
    return "by hand"


def task_window(task: MaintenanceTask) -> str:
    if not task.window_start or not task.window_end:
        return "any time"
    text = f"{task.window_start:%H:%M}–{task.window_end:%H:%M}"
    return f"{text} (+1 day)" if task.window_ends_next_day else text


def _status_label(value: str) -> str:
    return RunStatus(value).label if value in RunStatus.values else value or ""


class TaskListing(Listing):
    title = "Maintenance"
    noun = "tasks"
    columns = [
        Column("name", "Task", url=lambda t: reverse("maintenance:task-detail", args=[t.pk])),
        Column(
            "action",
            "Action",
            value=lambda t: (
                f"{t.get_action_display()}: {t.image}" if t.is_rollout else t.get_action_display()
            ),
        ),
        Column("targets", "Targets", sort=None, value=task_targets),
        Column("schedule", "Schedule", sort="schedule_kind", value=task_schedule),
        Column("window", "Window", sort="window_start", value=task_window),
        Column("credential.name", "Credential"),
        Column("enabled", "Enabled", value=lambda t: "yes" if t.enabled else "no"),
        Column("next_run", "Next run", sort="next_run_sort", value=lambda t: t.next_run_at),
        Column(
            "last_run",
            "Last run",
            sort="last_run_sort",
            value=lambda t: t.last_run_at,
            url=lambda t: (
                reverse("maintenance:run-detail", args=[t.last_run_id]) if t.last_run_id else ""
            ),
        ),
        Column(
            "last_status",
            "Last result",
            sort="last_run_status",
            value=lambda t: _status_label(t.last_run_status),
        ),
    ]
    filters = [
        Filter("action", "Action", MaintenanceAction.choices),
        yes_no_filter("enabled", "Enabled", "enabled"),
        Filter("schedule", "Schedule", ScheduleKind.choices, lookup="schedule_kind"),
        Filter("pool", "Pool", _pool_choices, apply=_target_pool),
    ]
    search_fields = ["name", "description"]
    search_placeholder = "Task name or description"
    default_sort = "name"
    row_template = "maintenance/includes/task_row.html"
    csv_filename = "maintenance-tasks"

    def get_queryset(self):
        runs = MaintenanceRun.objects.filter(task=OuterRef("pk")).order_by("-created_at", "-pk")
        active = runs.filter(status__in=ACTIVE_RUN_STATUSES)
        once = When(
            schedule_kind=ScheduleKind.ONCE,
            enabled=True,
            periodic_task__enabled=True,
            then=F("run_at"),
        )
        repeating = [
            When(pk=pk, then=Value(at, output_field=DateTimeField()))
            for pk, at in next_cron_starts().items()
        ]
        next_run = Case(once, *repeating, default=None, output_field=DateTimeField())
        return (
            MaintenanceTask.objects.select_related("pool", "credential")
            .annotate(
                pool_count=_through_count(MaintenanceTask.target_pools),
                vm_count=_through_count(MaintenanceTask.target_vms),
                allocator_count=_through_count(MaintenanceTask.target_allocators),
                last_run_id=Subquery(runs.values("pk")[:1]),
                last_run_at=Subquery(runs.values("created_at")[:1]),
                last_run_status=Subquery(runs.values("status")[:1]),
                active_run_id=Subquery(active.values("pk")[:1]),
                next_run_at=next_run,
            )
            .annotate(
                next_run_sort=Coalesce("next_run_at", Value(NEVER_AFTER)),
                last_run_sort=Coalesce("last_run_at", Value(NEVER_BEFORE)),
            )
        )

    def headers(self) -> list[Header]:
        # The Start now button's column, on the page only (not in the CSV).
        return [*super().headers(), Header("")]


@role_required(Role.VIEWER, Role.OPERATOR)
def task_list(request):
    latest = MaintenanceRun.objects.select_related("task")[:RECENT_RUNS]
    return listing_response(
        request, TaskListing, template="maintenance/task_list.html", extra={"runs": latest}
    )


@role_required(Role.OPERATOR)
def task_edit(request, pk=None):
    task = get_object_or_404(MaintenanceTask, pk=pk) if pk else None
    form = TaskForm(request.POST or None, instance=task)
    if request.method == "POST" and form.is_valid():
        try:
            saved = task_save(task=task, **form.service_arguments(), **who(request))
        except ServiceError as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, f"Saved {saved.name}.")
            return redirect("maintenance:task-detail", pk=saved.pk)
    return render(request, "maintenance/task_form.html", {"form": form, "task": task})


@role_required(Role.VIEWER, Role.OPERATOR)
def task_detail(request, pk):
    task = get_object_or_404(
        MaintenanceTask.objects.select_related("pool", "credential", "periodic_task"), pk=pk
    )
    runs = task.runs.select_related("task")
    context = {
        "task": task,
        "runs": runs[:RECENT_RUNS],
        "run_count": runs.count(),
        "runs_url": f"{reverse('maintenance:run-list')}?task={task.pk}",
        "active": task_active_run(task),
        "targets": task_target_vms(task).count(),
        "next_run": task_next_run(task),
    }
    return render(request, "maintenance/task_detail.html", context)


@role_required(Role.OPERATOR)
@require_POST
def task_start(request, pk):
    task = get_object_or_404(MaintenanceTask, pk=pk)
    try:
        run = run_start(task=task, **who(request))
    except ServiceError as exc:
        messages.error(request, exc.detail)
        return redirect("maintenance:task-detail", pk=pk)
    messages.success(request, f"Started run #{run.pk} of {task.name}.")
    return redirect("maintenance:run-detail", pk=run.pk)
