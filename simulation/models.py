"""Models of the simulations: stored runs."""

from django.db import models


class PlacementRun(models.Model):
    """One replay of a simulated working day under every placement policy
    (dynamic priority, round-robin, Nova weigher): the parameters it ran with,
    and its report (per policy: host-load balance, boot and user waits,
    failures, per-class figures and the load-balance curve) once it is done.
    Started from the placement comparison page (run by a worker) or by the
    `simulate_placement --save` command."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    parameters = models.JSONField(help_text="The replay's configuration (seed, hosts, seats…).")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    results = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        params = self.parameters or {}
        return (
            f"placement replay #{self.pk} (seed {params.get('seed')}, "
            f"{params.get('hosts')} hosts, {params.get('seats')} seats)"
        )
