"""Schedules through django-celery-beat: a task's periodic task follows its
schedule, beat's database scheduler keeps the static periodic jobs, and what a
schedule fires starts a run. Plus the demo's sample task."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from maintenance.demo import DEMO_TASK, seed_maintenance_demo
from maintenance.models import MaintenanceTask
from maintenance.services import task_fire, task_save
from portal.celery import app

from .conftest import make_task

pytestmark = pytest.mark.django_db


def test_a_cron_task_gets_a_periodic_task_in_the_portals_time_zone(
    warm_pool, sim_credential, settings
):
    task = make_task(
        pools=[warm_pool], credential=sim_credential, schedule_kind="cron", cron="30 1 * * 1-5"
    )
    periodic = PeriodicTask.objects.get(name=f"maintenance-task-{task.pk}")
    assert periodic.task == "maintenance.tasks.task_fire" and periodic.args == f"[{task.pk}]"
    assert (periodic.crontab.minute, periodic.crontab.hour, periodic.crontab.day_of_week) == (
        "30",
        "1",
        "1-5",
    )
    assert str(periodic.crontab.timezone) == settings.TIME_ZONE
    assert periodic.enabled

    task_save(task=task, fields={"enabled": False}, actor="operator")
    periodic.refresh_from_db()
    assert not periodic.enabled

    task_save(task=task, fields={"schedule_kind": "manual"}, actor="operator")
    assert not PeriodicTask.objects.filter(name=f"maintenance-task-{task.pk}").exists()
    assert MaintenanceTask.objects.get(pk=task.pk).periodic_task is None


def test_a_one_off_task_is_a_clocked_one_off_periodic_task(warm_pool, sim_credential):
    at = timezone.now() + timedelta(hours=3)
    task = make_task(pools=[warm_pool], credential=sim_credential, schedule_kind="once", run_at=at)
    periodic = task.periodic_task
    assert periodic.one_off and periodic.clocked.clocked_time == at and periodic.crontab is None

    # Once it fired, editing something else does not arm it again.
    PeriodicTask.objects.filter(pk=periodic.pk).update(total_run_count=1, enabled=False)
    task_save(task=task, fields={"description": "moved"}, actor="operator")
    periodic.refresh_from_db()
    assert not periodic.enabled
    # A new time does.
    task_save(task=task, fields={"run_at": at + timedelta(days=1)}, actor="operator")
    periodic.refresh_from_db()
    assert periodic.enabled and periodic.total_run_count == 0


def test_what_the_schedule_fires_starts_a_run_unless_disabled(warm_pool, sim_credential):
    task = make_task(pools=[warm_pool], credential=sim_credential)
    run_id = task_fire(task_id=task.pk)
    assert task.runs.get().pk == run_id and task.runs.get().trigger == "schedule"

    other = make_task(name="off", pools=[warm_pool], credential=sim_credential, enabled=False)
    assert task_fire(task_id=other.pk) is None
    assert task_fire(task_id=999_999) is None


# The scheduler closes database connections it finds outside autocommit (as a
# test's transaction is), so this test runs with real commits.
@pytest.mark.django_db(transaction=True)
def test_beats_database_scheduler_keeps_the_static_jobs_and_sees_the_tasks(
    warm_pool, sim_credential
):
    task = make_task(
        pools=[warm_pool], credential=sim_credential, schedule_kind="cron", cron="*/5 * * * *"
    )
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"

    scheduler = DatabaseScheduler(app=app, lazy=False)
    schedule = scheduler.schedule

    for name in ("pools-refill", "pools-poll-boots", "maintenance-advance-runs"):
        assert name in schedule, name
    refill = PeriodicTask.objects.get(name="pools-refill")
    assert refill.task == "pools.tasks.pools_refill_all"
    assert refill.interval.every == 5 and refill.expire_seconds == 5
    assert schedule[f"maintenance-task-{task.pk}"].task == "maintenance.tasks.task_fire"


def test_the_demo_sample_task_is_seeded_once(warm_pool):
    call_command("seed_demo")
    first = seed_maintenance_demo()
    again = seed_maintenance_demo()
    assert first is not None and first.pk == again.pk
    assert MaintenanceTask.objects.filter(name=DEMO_TASK).count() == 1
    assert first.periodic_task.crontab.hour == "1" and first.canary_size == 1
    assert list(first.target_pools.values_list("name", flat=True)) == ["agents-east"]
    call_command("seed_maintenance_demo")
    assert MaintenanceTask.objects.count() == 1
