"""Celery tasks of the allocation app: thin wrappers that call one service each."""

from celery import shared_task

from . import services


@shared_task
def sessions_expire_idle() -> int:
    return services.sessions_expire_idle()


@shared_task
def swaps_complete_pending() -> int:
    from .services.helpdesk import swaps_complete_pending as complete

    return complete()
