"""Celery tasks of the simulations: thin wrappers that take ids and call one
service each."""

from celery import shared_task

from . import replay_services


@shared_task
def placement_run_execute(run_id: int) -> str:
    return replay_services.placement_run_execute(run_id=run_id)
