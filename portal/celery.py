"""The Celery application. Settings come from Django's (prefix `CELERY_`); tasks
are found in each app's `tasks.py`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("deskops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
