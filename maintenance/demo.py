"""The demo's sample of scheduled maintenance: a simulated guest credential and a
nightly task that patches the agents' pool in rolling batches. Safe to call
again: what exists is left alone."""

from datetime import time

from pools.models import VMPool

from .choices import GuestTransport, InUsePolicy, MaintenanceAction, ScheduleKind
from .models import GuestCredential, MaintenanceTask
from .services import credential_save, task_save

DEMO_CREDENTIAL = "demo-guests"
DEMO_TASK = "Nightly agent patch"
DEMO_SCRIPT = """# Runs in each desktop of the pool (PowerShell on a real Windows guest).
Write-Output "Installing the nightly updates"
"""


def seed_maintenance_demo(*, pool_name: str = "agents-east") -> MaintenanceTask | None:
    """Create the sample task (and its credential) if missing; None when the demo
    pool does not exist yet."""
    existing = MaintenanceTask.objects.filter(name=DEMO_TASK).first()
    if existing is not None:
        return existing
    pool = VMPool.objects.filter(name=pool_name).first()
    if pool is None:
        return None
    credential = GuestCredential.objects.filter(name=DEMO_CREDENTIAL).first()
    if credential is None:
        credential = credential_save(
            credential=None,
            fields={
                "name": DEMO_CREDENTIAL,
                "transport": GuestTransport.SIMULATED,
                "username": "deskops-maint",
            },
            actor="seed_demo",
        )
    return task_save(
        task=None,
        fields={
            "name": DEMO_TASK,
            "description": "Patches the agents' desktops every night, canary first.",
            "action": MaintenanceAction.SCRIPT,
            "script": DEMO_SCRIPT,
            "credential": credential,
            "schedule_kind": ScheduleKind.CRON,
            "cron": "30 1 * * *",
            "window_start": time(1, 0),
            "window_end": time(5, 0),
            "batch_size": 3,
            "max_parallel": 2,
            "pause_seconds": 10,
            "canary_size": 1,
            "max_failure_percent": 20,
            "in_use_policy": InUsePolicy.WAIT,
        },
        target_pools=[pool],
        actor="seed_demo",
    )
