"""The DeskOps project package: settings, URLs, the ASGI and Celery entry points,
authentication and the audit trail."""

from .celery import app as celery_app

__all__ = ["celery_app"]
