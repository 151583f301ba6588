"""Serializers of the inventory API: what a script reads about regions, hosts, pools
and VMs, and the query-string filters of each list."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cloud.choices import HostState
from cloud.models import Host, Region
from portal.api.resources import PortalPageField, QueryFilters, choice_list, named

from ..choices import VMState
from ..flavors import class_extra_specs
from ..models import VM, FeatureClass, PoolSchedule, VMPool
from ..selectors import pool_target


class RegionSerializer(serializers.ModelSerializer):
    """A region as operators see it. Where its cloud credentials are kept is
    administrators' business and is not part of the answer."""

    host_count = serializers.IntegerField(read_only=True, help_text="Hosts known in the region.")
    pool_count = serializers.IntegerField(read_only=True, help_text="Pools in the region.")
    url = PortalPageField("cloud.region")

    class Meta:
        model = Region
        fields = [
            "id",
            "name",
            "label",
            "driver",
            "enabled",
            "reachable",
            "shared_storage",
            "place_by_portal",
            "max_concurrent_boots",
            "openstack_region",
            "hosts_synced_at",
            "host_count",
            "pool_count",
            "url",
        ]
        read_only_fields = fields


class HostSerializer(serializers.ModelSerializer):
    region = serializers.CharField(source="region.name", read_only=True)
    failed = serializers.SerializerMethodField(
        help_text="Declared failed: takes no placements until an operator clears it."
    )
    memory_load = serializers.FloatField(
        read_only=True, help_text="Share of the overcommitted memory in use, 0..1."
    )
    url = PortalPageField("cloud.host")

    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            "region",
            "state",
            "failed",
            "failed_at",
            "down_since",
            "vcpus",
            "vcpus_used",
            "memory_mb",
            "memory_mb_used",
            "cpu_allocation_ratio",
            "ram_allocation_ratio",
            "memory_load",
            "running_vms",
            "response_ms",
            "placement_group",
            "max_concurrent_boots",
            "boot_failures_in_row",
            "last_placed_at",
            "agent_reported_at",
            "agent_error",
            "load_1m",
            "memory_free_mb",
            "disk_latency_ms",
            "updated_at",
            "url",
        ]
        read_only_fields = fields

    def get_failed(self, host: Host) -> bool:
        return host.failed_at is not None


class FeatureClassSerializer(serializers.ModelSerializer):
    """A feature class with its CPU priority and the flavor extra specs it sets."""

    pool_count = serializers.IntegerField(read_only=True, help_text="Pools of the class.")
    extra_specs = serializers.SerializerMethodField(
        help_text="The flavor extra specs the class sets on its pools' flavors."
    )
    url = PortalPageField("pools.featureclass")

    class Meta:
        model = FeatureClass
        fields = [
            "id",
            "name",
            "label",
            "weight",
            "urgency",
            "cpu_cap_percent",
            "boost_factor",
            "extra_specs",
            "pool_count",
            "flavors_applied_at",
            "url",
        ]
        read_only_fields = fields

    def get_extra_specs(self, feature_class: FeatureClass) -> dict[str, str]:
        return class_extra_specs(feature_class)


class PoolSerializer(serializers.ModelSerializer):
    region = serializers.CharField(source="region.name", read_only=True)
    feature_class = serializers.CharField(source="feature_class.name", read_only=True)
    paused = serializers.SerializerMethodField(help_text="Refills are paused after boot errors.")
    ready_count = serializers.IntegerField(read_only=True, help_text="Idle, booted VMs.")
    booting_count = serializers.IntegerField(
        read_only=True, help_text="VMs requested, booting or being rebuilt."
    )
    in_use_count = serializers.IntegerField(read_only=True, help_text="VMs handed to users.")
    error_count = serializers.IntegerField(read_only=True, help_text="VMs in error.")
    url = PortalPageField("pools.vmpool")

    class Meta:
        model = VMPool
        fields = [
            "id",
            "name",
            "label",
            "region",
            "feature_class",
            "flavor",
            "vcpus",
            "memory_mb",
            "image",
            "network",
            "enabled",
            "target_ready",
            "min_ready",
            "max_size",
            "max_concurrent_boots",
            "ready_count",
            "booting_count",
            "in_use_count",
            "error_count",
            "paused",
            "paused_at",
            "pause_reason",
            "last_error",
            "last_error_at",
            "url",
        ]
        read_only_fields = fields

    def get_paused(self, pool: VMPool) -> bool:
        return pool.paused_at is not None


class PoolScheduleSerializer(serializers.ModelSerializer):
    class Meta:
        model = PoolSchedule
        fields = ["weekdays", "starts", "ends", "target_ready", "label"]
        read_only_fields = fields


class PoolDetailSerializer(PoolSerializer):
    target_ready_now = serializers.SerializerMethodField(
        help_text="The ready VMs refill aims for at this moment, calendar windows included."
    )
    schedules = PoolScheduleSerializer(many=True, read_only=True)

    class Meta(PoolSerializer.Meta):
        fields = [*PoolSerializer.Meta.fields, "target_ready_now", "schedules"]
        read_only_fields = fields

    def get_target_ready_now(self, pool: VMPool) -> int:
        return pool_target(pool)


class VMSerializer(serializers.ModelSerializer):
    pool = serializers.CharField(source="pool.name", read_only=True)
    region = serializers.CharField(source="pool.region.name", read_only=True)
    host = serializers.CharField(
        source="host_name", read_only=True, help_text="The host it runs on; empty: not placed yet."
    )
    url = PortalPageField("pools.vm")

    class Meta:
        model = VM
        fields = [
            "id",
            "name",
            "pool",
            "region",
            "state",
            "host",
            "ip_address",
            "server_id",
            "cloud_status",
            "error",
            "requested_at",
            "boot_started_at",
            "ready_at",
            "assigned_at",
            "quarantined_until",
            "ip_missing_since",
            "updated_at",
            "url",
        ]
        read_only_fields = fields


class ActiveBindingSerializer(serializers.Serializer):
    """Who holds the VM now."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    allocator = serializers.CharField(source="allocator.name")
    user = serializers.CharField(source="user.username", default=None)
    seat = serializers.CharField()
    terminal = serializers.CharField(source="terminal.serial", default=None)
    created_at = serializers.DateTimeField()


class VMDetailSerializer(VMSerializer):
    binding = serializers.SerializerMethodField(
        help_text="The active binding holding the VM, if any."
    )

    class Meta(VMSerializer.Meta):
        fields = [*VMSerializer.Meta.fields, "placement", "binding"]
        read_only_fields = fields

    @extend_schema_field(ActiveBindingSerializer(allow_null=True))
    def get_binding(self, vm: VM):
        active = getattr(vm, "active_bindings", None)
        if active is None:
            active = list(vm.bindings.filter(released_at__isnull=True))
        return ActiveBindingSerializer(active[0]).data if active else None


def _values(choices) -> str:
    return ", ".join(value for value, _ in choices)


class HostFilters(QueryFilters):
    region = named(Region.objects.all(), "name", "region", "A region's name.")
    state = choice_list(
        HostState.choices, f"One or several, comma-separated: {_values(HostState.choices)}."
    )
    failed = serializers.BooleanField(
        required=False, help_text="true: only hosts declared failed; false: only the others."
    )


class PoolFilters(QueryFilters):
    region = named(Region.objects.all(), "name", "region", "A region's name.")
    paused = serializers.BooleanField(
        required=False, help_text="true: only pools whose refills are paused; false: the others."
    )


class VMFilters(QueryFilters):
    pool = named(VMPool.objects.all(), "name", "pool", "A pool's name.")
    region = named(Region.objects.all(), "name", "region", "A region's name.")
    host = serializers.CharField(
        required=False, max_length=255, help_text="A host's name (VMs placed on it)."
    )
    state = choice_list(
        VMState.choices, f"One or several, comma-separated: {_values(VMState.choices)}."
    )
    q = serializers.CharField(
        required=False,
        max_length=255,
        help_text="Search: part of the VM's name, IP address or server id.",
    )
