"""Regions and hosts as the portal knows them, and the state of the simulated cloud.

`Region` and `Host` are the portal's inventory: hosts are refreshed from each
region's driver. The `Sim*` models are not the portal's view of anything: they are
the simulated cloud itself, kept in the database so the web process and every
Celery worker talk to the same cloud."""

import uuid

from django.db import models

from .choices import DriverKind, HostState, ServerStatus


class Region(models.Model):
    """One cloud (an OpenStack region, a provincial resource domain). Pools belong to
    a region; every call about its VMs goes through the region's driver."""

    name = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=120, blank=True)
    driver = models.CharField(
        max_length=16, choices=DriverKind.choices, default=DriverKind.SIMULATED
    )
    enabled = models.BooleanField(default=True)
    hosts_synced_at = models.DateTimeField(null=True, blank=True)
    openstack_cloud = models.CharField(
        max_length=120,
        blank=True,
        help_text="OpenStack only: the entry of clouds.yaml that holds this region's credentials.",
    )
    max_concurrent_boots = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Most VMs booting in this region at once (boot-storm protection); empty: no cap.",
    )
    place_by_portal = models.BooleanField(
        default=True,
        help_text="DeskOps picks each VM's host by dynamic priority (on OpenStack this needs "
        "admin rights); off: the cloud's own scheduler picks.",
    )
    reachable = models.BooleanField(
        default=True, help_text="Whether the region's cloud answered its last host sync."
    )
    shared_storage = models.BooleanField(
        default=False,
        help_text="The region's disks are on shared storage: the VMs of a failed host are "
        "evacuated (rebuilt elsewhere with their disks) instead of replaced by fresh ones.",
    )
    openstack_region = models.CharField(
        max_length=120,
        blank=True,
        help_text="OpenStack only: the region name in that cloud, when it has several.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.label or self.name


class Host(models.Model):
    """A compute node (hypervisor) of a region, as last reported by its driver:
    capacity, usage and overcommit ratios, and whether its compute service is up."""

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="hosts")
    name = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=HostState.choices, default=HostState.UP)
    vcpus = models.PositiveIntegerField(default=0)
    vcpus_used = models.PositiveIntegerField(default=0)
    memory_mb = models.PositiveIntegerField(default=0)
    memory_mb_used = models.PositiveIntegerField(default=0)
    cpu_allocation_ratio = models.FloatField(default=2.0)
    ram_allocation_ratio = models.FloatField(default=1.2)
    running_vms = models.PositiveIntegerField(default=0)
    response_ms = models.FloatField(
        null=True, blank=True, help_text="Measured response time (LT in the placement rule)."
    )
    placement_group = models.CharField(
        max_length=64,
        blank=True,
        help_text="Hosts of one group share placement: the best group first, round-robin inside.",
    )
    max_concurrent_boots = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Most VMs booting on this host at once; empty: the scheduling policy's default.",
    )
    boot_failures_in_row = models.PositiveIntegerField(default=0)
    down_since = models.DateTimeField(
        null=True, blank=True, help_text="When the host was first seen not up; empty while up."
    )
    failed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When DeskOps declared the host failed and moved its users; a failed host "
        "takes no placements until an operator returns it to service.",
    )
    agent_url = models.URLField(
        blank=True, help_text="The host agent's address, e.g. http://10.0.0.11:9180/; empty: none."
    )
    agent_reported_at = models.DateTimeField(null=True, blank=True)
    agent_error = models.CharField(max_length=255, blank=True)
    load_1m = models.FloatField(null=True, blank=True, help_text="Load average (agent).")
    memory_free_mb = models.PositiveIntegerField(
        null=True, blank=True, help_text="Memory available (agent)."
    )
    disk_latency_ms = models.FloatField(
        null=True, blank=True, help_text="Latency of a small synced write (agent)."
    )
    last_placed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["region__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["region", "name"], name="host_unique_per_region")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def memory_load(self) -> float:
        """Share of the host's overcommitted memory in use, 0..1 (memory is what
        runs out first on a desktop cloud)."""
        capacity = self.memory_mb * self.ram_allocation_ratio
        return self.memory_mb_used / capacity if capacity else 0.0


class SimulatedRegion(models.Model):
    """Knobs of a simulated region: how long a boot takes, and the faults to inject
    (a share of boots that fail, slow or failing API calls)."""

    region = models.OneToOneField(Region, on_delete=models.CASCADE, related_name="simulation")
    boot_seconds_min = models.FloatField(default=20.0)
    boot_seconds_max = models.FloatField(default=45.0)
    boot_failure_rate = models.FloatField(
        default=0.0, help_text="Share of new boots that end in ERROR, 0..1."
    )
    api_latency_ms = models.PositiveIntegerField(
        default=0, help_text="Delay added to every API call."
    )
    api_failure_rate = models.FloatField(
        default=0.0, help_text="Share of API calls that fail as if the cloud were down, 0..1."
    )
    flavor_extra_specs = models.JSONField(
        default=dict,
        blank=True,
        help_text="The simulated flavors' extra specs: flavor name to {key: value}.",
    )

    def __str__(self) -> str:
        return f"simulation of {self.region}"


class SimHost(models.Model):
    """A hypervisor of the simulated cloud, with real capacity arithmetic."""

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="sim_hosts")
    name = models.CharField(max_length=255)
    address = models.GenericIPAddressField(help_text="Where SPICE clients connect.")
    vcpus = models.PositiveIntegerField(default=32)
    memory_mb = models.PositiveIntegerField(default=131072)
    cpu_allocation_ratio = models.FloatField(default=2.0)
    ram_allocation_ratio = models.FloatField(default=1.2)
    state = models.CharField(max_length=16, choices=HostState.choices, default=HostState.UP)
    response_ms = models.FloatField(default=20.0, help_text="Simulated response time.")

    class Meta:
        ordering = ["region__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["region", "name"], name="simhost_unique_per_region")
        ]

    def __str__(self) -> str:
        return self.name


class SimServer(models.Model):
    """A server of the simulated cloud. A build finishes when `ready_at` has passed;
    the state moves forward lazily, when the server is next read."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="sim_servers")
    host = models.ForeignKey(SimHost, on_delete=models.PROTECT, related_name="servers")
    name = models.CharField(max_length=255)
    flavor = models.CharField(max_length=64)
    vcpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    image = models.CharField(max_length=255)
    network = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=16, choices=ServerStatus.choices, default=ServerStatus.BUILD
    )
    task_state = models.CharField(max_length=32, blank=True, default="spawning")
    fault = models.CharField(max_length=255, blank=True)
    ready_at = models.DateTimeField()
    fails_boot = models.BooleanField(default=False)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    spice_port = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.name


class SimVolume(models.Model):
    """A data volume of the simulated cloud, attached to at most one server."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="sim_volumes")
    name = models.CharField(max_length=255, blank=True)
    size_gb = models.PositiveIntegerField(default=20)
    server = models.ForeignKey(
        SimServer, on_delete=models.SET_NULL, null=True, blank=True, related_name="volumes"
    )

    def __str__(self) -> str:
        return self.name or str(self.id)
