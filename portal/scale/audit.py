"""The audit trail of a generated world: who did what to which of its objects,
over the weeks of its history."""

from portal.models import AuditEvent

from .bindings import STAFF
from .context import Context, insert_stream

# (action, object type) pairs of the audit trail, with their weights.
AUDIT_ACTIONS = [
    ("binding.create", "allocation.binding", 30),
    ("binding.release", "allocation.binding", 20),
    ("vm.swap", "pools.vm", 8),
    ("vm.reboot", "pools.vm", 8),
    ("vm.state", "pools.vm", 15),
    ("terminal.enroll", "allocation.terminal", 6),
    ("pool.update", "pools.vmpool", 3),
    ("host.update", "cloud.host", 3),
    ("alert.acknowledge", "monitoring.alert", 2),
    ("maintenancetask.update", "maintenance.maintenancetask", 2),
    ("staff.login", "auth.user", 3),
]


def _events(ctx: Context, targets: dict, choices: list, weights: list):
    # In the order of their times, as a real trail is written (a table whose rows
    # lie in time order reads a range of times from neighbouring pages).
    times = sorted(ctx.ago() for _ in range(ctx.size.audit_events))
    for created_at in times:
        action, object_type = ctx.rng.choices(choices, weights)[0]
        obj = ctx.rng.choice(targets[object_type])
        actor = ctx.rng.choice(STAFF)
        by_staff = actor != "system"
        yield AuditEvent(
            created_at=created_at,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            before={"state": "ready"},
            after={"state": "in_use", "by": actor},
            request_id=ctx.uid() if by_staff else "",
            source_ip=ctx.address(192, ctx.rng.randint(1, 250)) if by_staff else None,
        )


def build_audit(ctx: Context) -> None:
    targets = {
        "allocation.binding": ctx.active,
        "pools.vm": ctx.vms,
        "allocation.terminal": ctx.terminals,
        "pools.vmpool": ctx.pools,
        "cloud.host": ctx.hosts,
        "monitoring.alert": ctx.alerts,
        "maintenance.maintenancetask": ctx.tasks,
        "auth.user": ctx.users,
    }
    choices = [(a, t) for a, t, _ in AUDIT_ACTIONS if targets[t]]
    weights = [w for _, t, w in AUDIT_ACTIONS if targets[t]]
    written = insert_stream(AuditEvent, _events(ctx, targets, choices, weights)) if choices else 0
    ctx.count("audit events", written)
