"""The Celery application. Settings come from Django's (prefix `CELERY_`); tasks
are found in each app's `tasks.py`."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("deskops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_log_lines(logger=None, **kwargs):
    """Worker and beat set up their own log handlers; with LOG_FORMAT=json their
    lines are JSON objects like the web process's."""
    from django.conf import settings

    from .logging import JsonFormatter

    if getattr(settings, "LOG_FORMAT", "text") != "json" or logger is None:
        return
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
