"""Writes of the portal app: the audit trail."""

from typing import Any

from django.db import models, transaction

from .models import AuditEvent

SYSTEM_ACTOR = "system"


def audit_record(
    *,
    action: str,
    obj: models.Model,
    actor: str = SYSTEM_ACTOR,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    request_id: str = "",
    source_ip: str | None = None,
) -> AuditEvent:
    """Append one entry to the audit trail. Call it inside the service's own
    transaction so the record and the change it describes commit together."""
    return AuditEvent.objects.create(
        actor=actor,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        before=before,
        after=after,
        request_id=request_id,
        source_ip=source_ip,
    )


def _plain(value: Any) -> Any:
    """A field value as JSON can hold it (times and dates as ISO text)."""
    return value.isoformat() if hasattr(value, "isoformat") else value


@transaction.atomic
def model_update(
    *, obj: models.Model, fields: dict[str, Any], actor: str, request_id: str = ""
) -> models.Model:
    """Change plain fields of an object and audit what changed (before / after of
    the changed fields only); a save that changes nothing writes no record."""
    before = {name: _plain(getattr(obj, name)) for name in fields}
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.full_clean()
    obj.save(update_fields=list(fields))
    after = {name: _plain(getattr(obj, name)) for name in fields}
    changed = [name for name in fields if before[name] != after[name]]
    if changed:
        audit_record(
            action=f"{obj._meta.model_name}.update",
            obj=obj,
            actor=actor,
            before={name: before[name] for name in changed},
            after={name: after[name] for name in changed},
            request_id=request_id,
        )
    return obj
