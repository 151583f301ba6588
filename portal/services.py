"""Writes of the portal app: the audit trail."""

from typing import Any

from django.db import models

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
