"""Celery beat as the Procfile starts it, with django-celery-beat's database
scheduler, on a fresh SQLite database: it starts, takes the static periodic jobs
and fires a maintenance task scheduled from the portal a moment later."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.stack

SCHEDULE_TASK = """
from datetime import timedelta
from django.utils import timezone
from maintenance.services import credential_save, task_save
from tests.factories import VMPoolFactory
pool = VMPoolFactory(name="beat-pool")
credential = credential_save(credential=None, fields={"name": "sim"}, actor="test")
task = task_save(task=None, fields={
    "name": "beat-task", "action": "script", "script": "echo hi", "credential": credential,
    "schedule_kind": "once", "run_at": timezone.now() + timedelta(seconds=4),
}, target_pools=[pool], actor="test")
print(task.pk)
"""


def test_beat_starts_with_the_database_scheduler_and_fires_a_scheduled_task(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DESKOPS_", "DATABASE_", "CELERY_", "CHANNELS_"))
    }
    env.update(DESKOPS_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="portal.settings")
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    made = subprocess.run(
        [python, "manage.py", "shell", "-c", SCHEDULE_TASK],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    task_id = made.stdout.strip().splitlines()[-1]

    log_path = tmp_path / "beat.log"
    with log_path.open("w") as log:
        beat = subprocess.Popen(
            [str(Path(python).parent / "celery"), "--app", "portal", "beat", "--loglevel", "INFO"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            wanted = f"Sending due task maintenance-task-{task_id} (maintenance.tasks.task_fire)"
            static = "Sending due task maintenance-advance-runs"
            while time.monotonic() < deadline and not (
                wanted in log_path.read_text() and static in log_path.read_text()
            ):
                assert beat.poll() is None, log_path.read_text()
                time.sleep(0.5)
        finally:
            beat.terminate()
            beat.wait(timeout=20)
    text = log_path.read_text()
    assert "DatabaseScheduler" in text, text
    assert wanted in text, text
    assert static in text, text
