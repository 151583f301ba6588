"""VM pools and the VMs in them."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from cloud.models import Region

from .choices import VMState


class FeatureClass(models.Model):
    """The kind of user a VM serves (the paper's F: supervisor, VIP agent, agent).
    `weight` feeds placement; a higher `urgency` is served first when it matters."""

    name = models.SlugField(max_length=32, unique=True)
    label = models.CharField(max_length=64)
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    urgency = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["-urgency", "name"]
        verbose_name_plural = "feature classes"

    def __str__(self) -> str:
        return self.label


class VMPool(models.Model):
    """VMs of one spec (region, flavor, image, network, feature class) that DeskOps
    keeps booted and idle, so a login is served in milliseconds instead of waiting
    minutes for a cold boot. Refill keeps `target_ready` VMs ready, never boots more
    than `max_concurrent_boots` at once and never lets the pool grow past
    `max_size` VMs in all."""

    name = models.SlugField(max_length=48, unique=True)
    label = models.CharField(max_length=120, blank=True)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="pools")
    feature_class = models.ForeignKey(FeatureClass, on_delete=models.PROTECT, related_name="pools")
    flavor = models.CharField(max_length=64)
    vcpus = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    memory_mb = models.PositiveIntegerField(validators=[MinValueValidator(256)])
    image = models.CharField(max_length=255)
    network = models.CharField(max_length=255, blank=True)
    target_ready = models.PositiveIntegerField(
        default=5, help_text="Idle, booted VMs to keep ready."
    )
    min_ready = models.PositiveIntegerField(
        default=1, help_text="Below this many ready VMs the pool is short."
    )
    max_size = models.PositiveIntegerField(
        default=100, help_text="Most VMs the pool may hold in all (ready, booting, in use)."
    )
    max_concurrent_boots = models.PositiveIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Most VMs of this pool booting at once.",
    )
    enabled = models.BooleanField(default=True)
    last_error = models.CharField(max_length=255, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "VM pool"

    def __str__(self) -> str:
        return self.label or self.name


class VM(models.Model):
    """One virtual machine that serves as one desktop, from request to deletion."""

    pool = models.ForeignKey(VMPool, on_delete=models.PROTECT, related_name="vms")
    name = models.CharField(max_length=64, unique=True)
    server_id = models.CharField(max_length=64, blank=True, db_index=True)
    state = models.CharField(max_length=16, choices=VMState.choices, default=VMState.REQUESTED)
    host_name = models.CharField(max_length=255, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    boot_started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "VM"
        indexes = [models.Index(fields=["pool", "state"])]

    def __str__(self) -> str:
        return self.name
