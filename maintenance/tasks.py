"""Celery tasks of the maintenance app: thin wrappers that take ids and call one
service each. `runs_advance` is the periodic job (celery beat); `task_fire` is
what a task's own schedule calls; the others are queued by the services."""

from celery import shared_task

from . import services


@shared_task
def runs_advance() -> dict:
    return services.runs_advance()


@shared_task
def run_advance(run_id: int) -> str:
    return services.run_advance(run_id=run_id)


@shared_task
def task_fire(task_id: int) -> int | None:
    return services.task_fire(task_id=task_id)


@shared_task
def item_execute(item_id: int) -> str:
    return services.item_execute(item_id=item_id)


@shared_task
def item_notify(item_id: int) -> None:
    services.item_notify(item_id=item_id)
