"""Sites, terminals, allocator rules, bindings and desktop sessions."""

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

from pools.models import VM, VMPool

from .choices import BindingPolicy, TerminalStatus


class Site(models.Model):
    """A call center. Terminals sit at a site; allocators may match on it."""

    name = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.label or self.name


class Terminal(models.Model):
    """A thin client, known by its serial. Only an enrolled, enabled terminal gets a
    desktop; one that calls in unknown is recorded as pending for an operator to
    enroll."""

    serial = models.CharField(max_length=64, unique=True)
    mac_address = models.CharField(max_length=17, blank=True)
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="terminals"
    )
    seat = models.CharField(max_length=64, blank=True, help_text="The agent position it sits at.")
    tags = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=TerminalStatus.choices, default=TerminalStatus.PENDING
    )
    enabled = models.BooleanField(default=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return self.serial

    @property
    def may_connect(self) -> bool:
        return self.status == TerminalStatus.ENROLLED and self.enabled


class Allocator(models.Model):
    """An ordered rule that decides which pool serves a login and how the desktop is
    bound. Allocators are tried by ascending `priority`; a rule matches when every
    condition it sets holds (any of its groups, any of its sites, all of its
    terminal tags); the single default allocator catches every login the others do
    not."""

    name = models.CharField(max_length=120, unique=True)
    priority = models.PositiveIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    groups = models.ManyToManyField(Group, blank=True, related_name="allocators")
    sites = models.ManyToManyField(Site, blank=True, related_name="allocators")
    terminal_tags = models.JSONField(default=list, blank=True)
    ou_subtrees = models.JSONField(
        default=list,
        blank=True,
        help_text="Directory subtrees (DNs); a user whose DN lies under any of them matches.",
    )
    binding_policy = models.CharField(
        max_length=16, choices=BindingPolicy.choices, default=BindingPolicy.USER
    )
    pools = models.ManyToManyField(VMPool, through="AllocatorPool", related_name="allocators")

    class Meta:
        ordering = ["is_default", "priority", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_allocator"
            )
        ]

    def __str__(self) -> str:
        return self.name


class AllocatorPool(models.Model):
    """A pool an allocator draws from; lower `order` is tried first."""

    allocator = models.ForeignKey(Allocator, on_delete=models.CASCADE, related_name="pool_links")
    pool = models.ForeignKey(VMPool, on_delete=models.PROTECT, related_name="allocator_links")
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["allocator", "pool"], name="allocator_pool_once")
        ]

    def __str__(self) -> str:
        return f"{self.allocator} #{self.order}: {self.pool}"


# A binding is active until it is released.
ACTIVE_BINDING = Q(released_at__isnull=True)


class Binding(models.Model):
    """A lasting link between a VM and whoever it serves: a user, a seat or a
    terminal (per the allocator's policy), or a user for one session (floating).
    Only one active binding may hold a VM, and one subject has at most one active
    binding per allocator; the database enforces both."""

    allocator = models.ForeignKey(Allocator, on_delete=models.PROTECT, related_name="bindings")
    kind = models.CharField(max_length=16, choices=BindingPolicy.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="bindings",
    )
    seat = models.CharField(max_length=64, blank=True)
    terminal = models.ForeignKey(
        Terminal, on_delete=models.CASCADE, null=True, blank=True, related_name="bindings"
    )
    vm = models.ForeignKey(VM, on_delete=models.PROTECT, related_name="bindings")
    data_volume_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="The user's data volume in the cloud; it follows the binding to a new VM.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # The bindings list and API sort newest first; history grows with every
        # floating session, so the sort must not read every binding.
        indexes = [models.Index(fields=["-created_at", "-id"], name="binding_newest_first")]
        constraints = [
            models.UniqueConstraint(
                fields=["vm"], condition=ACTIVE_BINDING, name="one_active_binding_per_vm"
            ),
            models.UniqueConstraint(
                fields=["allocator", "user"],
                condition=ACTIVE_BINDING & Q(kind__in=[BindingPolicy.USER, BindingPolicy.FLOATING]),
                name="one_active_user_binding_per_allocator",
            ),
            models.UniqueConstraint(
                fields=["allocator", "seat"],
                condition=ACTIVE_BINDING & Q(kind=BindingPolicy.SEAT),
                name="one_active_seat_binding_per_allocator",
            ),
            models.UniqueConstraint(
                fields=["allocator", "terminal"],
                condition=ACTIVE_BINDING & Q(kind=BindingPolicy.TERMINAL),
                name="one_active_terminal_binding_per_allocator",
            ),
        ]

    def __str__(self) -> str:
        subject = {
            BindingPolicy.SEAT: self.seat,
            BindingPolicy.TERMINAL: str(self.terminal),
        }.get(self.kind, str(self.user))
        return f"{self.vm} \u2192 {self.kind} {subject}"


class DesktopSession(models.Model):
    """One connection of a thin client to a desktop, from connect to disconnect."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="desktop_sessions"
    )
    terminal = models.ForeignKey(Terminal, on_delete=models.CASCADE, related_name="sessions")
    vm = models.ForeignKey(VM, on_delete=models.PROTECT, related_name="sessions")
    binding = models.ForeignKey(
        Binding, on_delete=models.SET_NULL, null=True, related_name="sessions"
    )
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=32, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.user} on {self.vm}"


class DirectoryProfile(models.Model):
    """What the directory said about a user at their last login: their DN, whose
    OU path allocator rules match by subtree. Kept so that "explain" can answer for
    a user who is not logging in right now."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_profile"
    )
    dn = models.CharField(max_length=1024)
    synced_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.dn


class VMSwap(models.Model):
    """A help-desk swap: a fresh VM from the same pool (or another, for a move) takes
    over a binding, and the old VM is quarantined. It completes at once when the
    pool has a ready VM, or as soon as one has booted; its duration, from the click
    to the new connection info being available, is what the help desk is measured
    by."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a ready VM"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    binding = models.ForeignKey(Binding, on_delete=models.CASCADE, related_name="swaps")
    pool = models.ForeignKey(VMPool, on_delete=models.PROTECT, related_name="swaps")
    old_vm = models.ForeignKey(VM, on_delete=models.PROTECT, related_name="swapped_out")
    new_vm = models.ForeignKey(
        VM, on_delete=models.PROTECT, null=True, blank=True, related_name="swapped_in"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=255)
    actor = models.CharField(max_length=150)
    request_id = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=255, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    incident = models.ForeignKey(
        "monitoring.Incident",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="swaps",
        help_text="Set when the swap moves a user off a failed host.",
    )

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["binding"],
                condition=Q(status="pending"),
                name="one_pending_swap_per_binding",
            )
        ]

    def __str__(self) -> str:
        return f"swap of {self.old_vm} ({self.get_status_display()})"

    @property
    def seconds(self) -> float | None:
        if self.completed_at is None:
            return None
        return (self.completed_at - self.requested_at).total_seconds()
