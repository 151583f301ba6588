"""Celery tasks of the allocation app: thin wrappers that call one service each."""

from celery import shared_task

from . import services


@shared_task
def sessions_expire_idle() -> int:
    return services.sessions_expire_idle()
