"""Celery tasks of monitoring: thin wrappers that call one service each."""

from celery import shared_task  # noqa: F401 - tasks are added below
