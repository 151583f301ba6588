"""The audit trail, shared by every app."""

from django.db import models


class AuditEvent(models.Model):
    """One entry of the audit trail: who (a user, or a Celery task) did what to
    which object, with the object's state before and after and the id of the
    request or task that did it. Services write these themselves, inside their own
    transaction, so work done by workers is recorded like work done in a request."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            # Pages of the trail, newest first, found in the index alone.
            models.Index(fields=["-created_at", "-id"], name="auditevent_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_repr}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("portal:audit-detail", args=[self.pk])

    def changes(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for every field either side names, in order;
        a side that does not name a field gives None."""
        before = self.before if isinstance(self.before, dict) else {}
        after = self.after if isinstance(self.after, dict) else {}
        names = list(dict.fromkeys([*before, *after]))
        return [(name, before.get(name), after.get(name)) for name in names]
