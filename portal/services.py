"""Writes of the portal app: the audit trail."""

from typing import Any

from django.db import models, transaction

from .logging import request_id_var, source_ip_var
from .models import AuditEvent

SYSTEM_ACTOR = "system"


def audit_record(
    *,
    action: str,
    obj: models.Model | None = None,
    actor: str = SYSTEM_ACTOR,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    request_id: str = "",
    source_ip: str | None = None,
    object_type: str = "",
    object_repr: str = "",
) -> AuditEvent:
    """Append one entry to the audit trail. Call it inside the service's own
    transaction so the record and the change it describes commit together.

    The object is a model instance, or for something that has no row (a failed
    login under an unknown name) a type and a description. The request id and
    source address default to those of the request being served, if any."""
    return AuditEvent.objects.create(
        actor=actor,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else object_type,
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=(object_repr or str(obj))[:200],
        before=before,
        after=after,
        request_id=request_id or request_id_var.get(),
        source_ip=source_ip or source_ip_var.get(),
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
