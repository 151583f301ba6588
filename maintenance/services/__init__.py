"""Writes of the maintenance app: credentials, tasks, and the runs with their
rolling batches."""

from .credentials import credential_save
from .runs import (
    RunConflict,
    item_execute,
    item_notify,
    run_advance,
    run_cancel,
    run_retry_failed,
    run_rollback,
    run_start,
    runs_advance,
    task_fire,
)
from .tasks import task_delete, task_save, task_validate

__all__ = [
    "RunConflict",
    "credential_save",
    "item_execute",
    "item_notify",
    "run_advance",
    "run_cancel",
    "run_retry_failed",
    "run_rollback",
    "run_start",
    "runs_advance",
    "task_delete",
    "task_fire",
    "task_save",
    "task_validate",
]
