"""Scheduled maintenance: guest credentials, maintenance tasks, their runs, the
per-VM items of a run and the run's log."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django_celery_beat.models import PeriodicTask

from allocation.models import Allocator
from pools.models import VM, VMPool

from .choices import (
    GUEST_ACTIONS,
    GuestTransport,
    InUsePolicy,
    ItemPhase,
    ItemStatus,
    MaintenanceAction,
    RunStatus,
    ScheduleKind,
    WinRMAuth,
)
from .policy import RunSpec

DEFAULT_NOTICE = (
    "This desktop goes down for maintenance in {minutes} minutes. Please save your work."
)


class GuestCredential(models.Model):
    """How DeskOps logs in to the guests of a task: the transport (SSH, WinRM, or
    the demo's simulated one), the account and its secrets. The password and the
    private key are stored encrypted (`maintenance.crypto`) and are never shown
    back: pages and the API only say whether each is set."""

    name = models.CharField(max_length=80, unique=True)
    transport = models.CharField(
        max_length=16, choices=GuestTransport.choices, default=GuestTransport.SIMULATED
    )
    username = models.CharField(max_length=150, blank=True)
    port = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="Empty: 22 for SSH, 5986 for WinRM over HTTPS, 5985 over HTTP.",
    )
    password_encrypted = models.TextField(blank=True, editable=False)
    private_key_encrypted = models.TextField(blank=True, editable=False)
    ssh_host_key = models.TextField(
        blank=True,
        help_text=(
            "SSH: the public host key the guests must present, as in known_hosts "
            "(e.g. 'ssh-ed25519 AAAA…'). Empty: any key is accepted and its fingerprint logged."
        ),
    )
    winrm_auth = models.CharField(max_length=16, choices=WinRMAuth.choices, default=WinRMAuth.NTLM)
    winrm_https = models.BooleanField(default=True, verbose_name="WinRM over HTTPS")
    winrm_verify_tls = models.BooleanField(default=True, verbose_name="Verify the guest's TLS")
    package_command = models.CharField(
        max_length=255,
        blank=True,
        help_text=(
            "How a package is installed; {package} is replaced by its name. Empty: "
            "'sudo -n apt-get install -y {package}' over SSH, "
            "'choco install {package} -y --no-progress' over WinRM."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def password_set(self) -> bool:
        return bool(self.password_encrypted)

    @property
    def private_key_set(self) -> bool:
        return bool(self.private_key_encrypted)


class MaintenanceTask(models.Model):
    """A scheduled operation over a set of VMs: run a script, install a package,
    reboot, power off, or roll a new image out to a pool. It runs in rolling
    batches (a canary batch first, a pause between batches, a cap on VMs worked on
    at once), only inside its window, halts when too many VMs fail, and handles
    VMs in use by skipping them, waiting for logoff or notifying and going ahead.
    Each start, by hand or by its schedule (django-celery-beat), makes a run."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    action = models.CharField(max_length=16, choices=MaintenanceAction.choices)
    script = models.TextField(
        blank=True, help_text="Shell script (SSH) or PowerShell (WinRM), run as the credential."
    )
    package = models.CharField(max_length=200, blank=True)
    image = models.CharField(max_length=255, blank=True, help_text="The image to roll out.")
    pool = models.ForeignKey(
        VMPool,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rollout_tasks",
        help_text="The pool an image roll-out replaces the VMs of.",
    )
    target_pools = models.ManyToManyField(VMPool, blank=True, related_name="maintenance_tasks")
    target_hosts = models.JSONField(
        default=list, blank=True, help_text="Host names: every VM running on one of them."
    )
    target_vms = models.ManyToManyField(VM, blank=True, related_name="maintenance_tasks")
    target_allocators = models.ManyToManyField(
        Allocator,
        blank=True,
        related_name="maintenance_tasks",
        help_text="Allocators: the VMs bound under them and the idle VMs of their pools.",
    )
    target_tags = models.JSONField(
        default=list,
        blank=True,
        help_text="Terminal tags: every VM bound to, or in a session at, a terminal tagged so.",
    )
    credential = models.ForeignKey(
        GuestCredential,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tasks",
        help_text="How to log in to the guests (scripts and packages).",
    )
    schedule_kind = models.CharField(
        max_length=8, choices=ScheduleKind.choices, default=ScheduleKind.MANUAL
    )
    run_at = models.DateTimeField(null=True, blank=True, help_text="When a one-off task starts.")
    cron = models.CharField(
        max_length=100,
        blank=True,
        help_text="minute hour day-of-month month day-of-week, e.g. '0 22 * * 1-5'.",
    )
    window_start = models.TimeField(null=True, blank=True)
    window_end = models.TimeField(null=True, blank=True)
    window_ends_next_day = models.BooleanField(
        default=False, help_text="The window runs past midnight (e.g. 22:00 to 05:00)."
    )
    batch_size = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)])
    max_parallel = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1)], help_text="Most VMs worked on at once."
    )
    pause_seconds = models.PositiveIntegerField(
        default=60, help_text="Pause between two batches, seconds."
    )
    canary_size = models.PositiveIntegerField(
        default=1,
        help_text="VMs in a first batch that must all succeed before the rest go (0: none).",
    )
    max_failure_percent = models.PositiveIntegerField(
        default=10,
        validators=[MaxValueValidator(100)],
        help_text="Halt when more than this share of the VMs done so far failed.",
    )
    in_use_policy = models.CharField(
        max_length=8, choices=InUsePolicy.choices, default=InUsePolicy.SKIP
    )
    notice_minutes = models.PositiveIntegerField(
        default=5, help_text="With 'notify and go ahead': minutes between the notice and the work."
    )
    notice_message = models.CharField(max_length=255, default=DEFAULT_NOTICE)
    timeout_seconds = models.PositiveIntegerField(
        default=600,
        validators=[MinValueValidator(10), MaxValueValidator(3600)],
        help_text="Longest a command in a guest may take.",
    )
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        PeriodicTask,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_by = models.CharField(max_length=150, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_rollout(self) -> bool:
        return self.action == MaintenanceAction.REBUILD

    def clean(self):
        """The rules that one task's own fields must follow together (its targets,
        many-to-many, are checked by `task_validate`)."""
        errors: dict[str, str] = {}
        if bool(self.window_start) != bool(self.window_end):
            errors["window_end"] = "Give both ends of the window, or neither."
        elif self.window_start and self.window_end:
            if not self.window_ends_next_day and self.window_end <= self.window_start:
                errors["window_end"] = (
                    "The window ends before it starts. For a window past midnight, "
                    "tick 'ends the next day'."
                )
            elif self.window_ends_next_day and self.window_end >= self.window_start:
                errors["window_end"] = (
                    "A window that ends the next day must end earlier in the day than it "
                    "starts (a window lasts less than 24 hours)."
                )
        if self.action == MaintenanceAction.REBUILD:
            if not self.pool_id:
                errors["pool"] = "An image roll-out needs the pool to roll the image out to."
            if not self.image.strip():
                errors["image"] = "An image roll-out needs the image to roll out."
            if self.in_use_policy == InUsePolicy.FORCE:
                errors["in_use_policy"] = (
                    "A roll-out never rebuilds a desktop in use: choose skip or wait."
                )
        if self.action == MaintenanceAction.SCRIPT and not self.script.strip():
            errors["script"] = "Write the script to run."
        if self.action == MaintenanceAction.PACKAGE:
            from .executors import PACKAGE_NAME

            if not PACKAGE_NAME.match(self.package):
                errors["package"] = "Give a package name (letters, digits and . + _ : = ~ @ / -)."
        if self.action in GUEST_ACTIONS and not self.credential_id:
            errors["credential"] = "Running commands in the guests needs a credential."
        if self.in_use_policy == InUsePolicy.WAIT and not self.window_start:
            errors.setdefault(
                "in_use_policy",
                "Waiting for logoff needs a window: it waits until the window ends.",
            )
        if self.schedule_kind == ScheduleKind.ONCE and not self.run_at:
            errors["run_at"] = "A one-off task needs the date and time to start."
        if self.schedule_kind == ScheduleKind.CRON:
            from .schedules import cron_error

            problem = cron_error(self.cron)
            if problem:
                errors["cron"] = problem
        if errors:
            raise ValidationError(errors)


class MaintenanceRun(models.Model):
    """One execution of a task over the VMs it targeted when it started. It keeps
    its own copy of the task's parameters (`spec`), its batch position, why it
    halted, and for an image roll-out the pool's image before and after and the
    history of every switch (roll-out, roll-back). The advance job moves it on;
    the run page reads it."""

    task = models.ForeignKey(MaintenanceTask, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.WAITING)
    trigger = models.CharField(max_length=16, default="manual")
    started_by = models.CharField(max_length=150, blank=True)
    spec = models.JSONField(default=dict)
    rollback_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="rollbacks"
    )
    pool = models.ForeignKey(
        VMPool, on_delete=models.PROTECT, null=True, blank=True, related_name="maintenance_runs"
    )
    previous_image = models.CharField(max_length=255, blank=True)
    new_image = models.CharField(max_length=255, blank=True)
    image_switched_at = models.DateTimeField(null=True, blank=True)
    image_history = models.JSONField(default=list, blank=True)
    current_batch = models.PositiveIntegerField(default=0)
    next_batch_at = models.DateTimeField(null=True, blank=True)
    halt_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    advanced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.task} run #{self.pk}"

    @property
    def run_spec(self) -> RunSpec:
        return RunSpec.from_json(self.spec)


class RunItem(models.Model):
    """One VM of a run: its status, the batch it ran in, how many tries, what it is
    waiting for (`phase`, `not_before`, `note`) and what the guest or the cloud
    answered."""

    run = models.ForeignKey(MaintenanceRun, on_delete=models.CASCADE, related_name="items")
    vm = models.ForeignKey(VM, on_delete=models.PROTECT, related_name="maintenance_items")
    vm_name = models.CharField(max_length=64)
    position = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    phase = models.CharField(max_length=16, choices=ItemPhase.choices, blank=True)
    batch = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    vm_held = models.BooleanField(
        default=False, help_text="The idle VM was taken out of its pool while worked on."
    )
    note = models.CharField(max_length=255, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    notice_sent_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    output = models.TextField(blank=True)
    error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["run", "vm"], name="one_item_per_vm_and_run")
        ]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"{self.vm_name} ({self.status})"


class RunLog(models.Model):
    """A line of a run's log, optionally about one of its VMs."""

    run = models.ForeignKey(MaintenanceRun, on_delete=models.CASCADE, related_name="logs")
    item = models.ForeignKey(
        RunItem, on_delete=models.CASCADE, null=True, blank=True, related_name="logs"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    level = models.CharField(max_length=8, default="info")
    message = models.TextField()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.created_at:%H:%M:%S} {self.level} {self.message[:80]}"
