"""VM pools and the VMs in them."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from cloud.models import Region

from .choices import VMState


def validate_weekdays(value) -> None:
    """A calendar's weekdays: a list of ISO weekday numbers, 1 (Monday) to 7."""
    if not isinstance(value, list) or not all(
        isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 7 for day in value
    ):
        raise ValidationError("Give a list of ISO weekdays, 1 = Monday … 7 = Sunday.")


class FeatureClass(models.Model):
    """The kind of user a VM serves (the paper's F: supervisor, VIP agent, agent).

    `weight` feeds placement (F in the dynamic priority) and is also the class's
    relative CPU weight on the hypervisor; `cpu_cap_percent` caps what one vCPU of
    the class may take; a higher `urgency` is served first when it matters (refill
    order). `boost_factor` is the paper's boost: the CPU scheduler simulation puts
    a vCPU whose factor is above 0 on the BOOST queue. On OpenStack, weight and cap
    reach the hypervisor as flavor extra specs (pools/flavors.py); the boost has
    no KVM counterpart. `flavors_outcome` is what the last "apply to flavors" did,
    pool by pool."""

    name = models.SlugField(max_length=32, unique=True)
    label = models.CharField(max_length=64)
    weight = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="F: placement weight and relative CPU weight (1 = an ordinary VM).",
    )
    urgency = models.PositiveSmallIntegerField(
        default=1, help_text="Higher is served first (pools of the class refill first)."
    )
    cpu_cap_percent = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(100)],
        help_text="Most CPU time one vCPU may use, in % of one physical CPU; 0: uncapped.",
    )
    boost_factor = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(10)],
        help_text="Boost factor: slices a vCPU may run from the BOOST queue per credit "
        "refill; 0: never boosted.",
    )
    flavors_applied_at = models.DateTimeField(null=True, blank=True)
    flavors_outcome = models.JSONField(
        default=list, blank=True, help_text="Per pool, what the last apply to flavors did."
    )

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
    pause_after_errors = models.PositiveIntegerField(
        default=5, help_text="Pause refills after this many failed boots within the window."
    )
    pause_window_minutes = models.PositiveIntegerField(default=10)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "VM pool"

    def __str__(self) -> str:
        return self.label or self.name


class PoolSchedule(models.Model):
    """A calendar target: on the given weekdays between `starts` and `ends` (local
    time), the pool keeps `target_ready` VMs ready instead of its usual target, so
    desktops are booted, within the caps, before a shift arrives. When windows
    overlap, the highest target wins."""

    pool = models.ForeignKey(VMPool, on_delete=models.CASCADE, related_name="schedules")
    weekdays = models.JSONField(
        default=list,
        validators=[validate_weekdays],
        help_text="ISO weekdays, 1 = Monday … 7 = Sunday; empty: every day.",
    )
    starts = models.TimeField()
    ends = models.TimeField(
        help_text="May be earlier than the start: the window runs past midnight."
    )
    target_ready = models.PositiveIntegerField()
    label = models.CharField(max_length=80, blank=True)

    class Meta:
        ordering = ["pool", "starts"]

    def __str__(self) -> str:
        return f"{self.pool}: {self.target_ready} ready {self.starts:%H:%M}-{self.ends:%H:%M}"


class SchedulingPolicy(models.Model):
    """The cloud-wide knobs of booting and placement; one row. Caps keep a boot
    storm from saturating storage (unthrottled Windows boots once took 40 minutes
    at 100% disk); the placement factors are the paper's dynamic priority."""

    max_concurrent_boots = models.PositiveIntegerField(
        default=50, help_text="Most VMs booting at once across every region."
    )
    max_boots_per_minute = models.PositiveIntegerField(
        default=60, help_text="Most new boots started in any 60 seconds."
    )
    host_max_concurrent_boots = models.PositiveIntegerField(
        default=3, help_text="Most VMs booting at once on one host, unless the host says otherwise."
    )
    response_time_factor = models.FloatField(
        default=-0.05,
        help_text="mu: priority per ms of host response time (negative: slower ranks lower).",
    )
    max_boot_failures_in_row = models.PositiveIntegerField(
        default=3, help_text="K: a host whose last K boots failed gets no placements until cleared."
    )

    class Meta:
        verbose_name_plural = "scheduling policy"

    def __str__(self) -> str:
        return "Scheduling policy"

    @classmethod
    def current(cls) -> "SchedulingPolicy":
        policy, _ = cls.objects.get_or_create(pk=1)
        return policy


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
    placement = models.JSONField(
        null=True, blank=True, help_text="Why the host was chosen: the candidates and their scores."
    )
    quarantined_until = models.DateTimeField(null=True, blank=True)
    cloud_status = models.CharField(
        max_length=16, blank=True, help_text="The server's status at the cloud's last check."
    )
    ip_missing_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the cloud was first seen reporting no IP address for a running VM "
        "(a lost DHCP lease leaves a desktop nobody can reach).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "VM"
        indexes = [models.Index(fields=["pool", "state"])]

    def __str__(self) -> str:
        return self.name


class Shift(models.Model):
    """A shift of agents served by one pool: on its weekdays, `seats` desktops must
    be booted and ready when the shift starts (local time). The boot-storm planner
    (`pools/prewarm.py`) works out how early pre-warming must begin for that within
    every boot cap, and applying the plan writes one calendar window of the pool
    (`schedule`, labelled "prewarm: <label>") that keeps `seats` VMs ready from
    that moment to the shift's end. The target is the seats alone, not the seats on
    top of the pool's usual target."""

    pool = models.ForeignKey(VMPool, on_delete=models.CASCADE, related_name="shifts")
    label = models.CharField(max_length=64)
    weekdays = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_weekdays],
        help_text="ISO weekdays, 1 = Monday … 7 = Sunday; empty: every day.",
    )
    starts_at = models.TimeField(help_text="When the agents arrive: the seats are ready by then.")
    ends_at = models.TimeField(
        help_text="May be earlier than the start: the shift runs past midnight."
    )
    seats = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100000)],
        help_text="Desktops that must be ready at the shift's start.",
    )
    schedule = models.OneToOneField(
        PoolSchedule,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="shift",
        help_text="The calendar window the last applied plan wrote for this shift.",
    )

    class Meta:
        ordering = ["starts_at", "label"]
        constraints = [
            models.UniqueConstraint(fields=["pool", "label"], name="shift_label_unique_per_pool")
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.pool}, {self.seats} seats at {self.starts_at:%H:%M})"
