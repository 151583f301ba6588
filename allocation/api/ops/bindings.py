"""Bindings in the ops API (read only, every role): which VM serves which user,
seat or terminal, and since when; released bindings stay as history."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from allocation.models import Allocator, Binding, Terminal
from pools.models import VM, VMPool
from portal.api.resources import (
    DeferredJoinPagination,
    PortalPageField,
    QueryFilters,
    named,
    query_filters,
)
from portal.roles import Role


class BindingSerializer(serializers.ModelSerializer):
    allocator = serializers.CharField(source="allocator.name", read_only=True)
    user = serializers.CharField(source="user.username", default=None, read_only=True)
    terminal = serializers.CharField(source="terminal.serial", default=None, read_only=True)
    vm = serializers.CharField(source="vm.name", read_only=True)
    vm_id = serializers.IntegerField(read_only=True)
    vm_state = serializers.CharField(source="vm.state", read_only=True)
    pool = serializers.CharField(source="vm.pool.name", read_only=True)
    region = serializers.CharField(source="vm.pool.region.name", read_only=True)
    active = serializers.SerializerMethodField(help_text="Not released yet.")
    url = PortalPageField("allocation.binding")

    class Meta:
        model = Binding
        fields = [
            "id",
            "kind",
            "active",
            "allocator",
            "user",
            "seat",
            "terminal",
            "vm",
            "vm_id",
            "vm_state",
            "pool",
            "region",
            "data_volume_id",
            "created_at",
            "released_at",
            "url",
        ]
        read_only_fields = fields

    def get_active(self, binding: Binding) -> bool:
        return binding.released_at is None


class BindingFilters(QueryFilters):
    user = named(get_user_model().objects.all(), "username", "user", "A user name.")
    active = serializers.BooleanField(
        required=False, help_text="true: bindings in force; false: released ones."
    )
    pool = named(VMPool.objects.all(), "name", "pool", "A pool's name (of the bound VM).")
    allocator = named(Allocator.objects.all(), "name", "allocator", "An allocator's name.")
    terminal = named(Terminal.objects.all(), "serial", "terminal", "A terminal's serial.")
    vm = named(VM.objects.all(), "name", "VM", "A VM's name.")


@extend_schema_view(
    list=extend_schema(
        summary="List bindings, newest first",
        parameters=[BindingFilters],
    ),
    retrieve=extend_schema(summary="Read one binding"),
)
class BindingViewSet(viewsets.ReadOnlyModelViewSet):
    """Bindings between VMs and the users, seats or terminals they serve."""

    read_role = Role.VIEWER
    serializer_class = BindingSerializer
    # A page of a hundred thousand bindings must not join them all.
    pagination_class = DeferredJoinPagination

    def get_queryset(self):
        bindings = Binding.objects.select_related(
            "allocator", "user", "terminal", "vm__pool__region"
        ).order_by("-created_at", "-pk")
        if self.action != "list":
            return bindings
        wanted = query_filters(BindingFilters, self.request)
        if "active" in wanted:
            bindings = bindings.filter(released_at__isnull=wanted["active"])
        for name in ("user", "allocator", "terminal", "vm"):
            if name in wanted:
                bindings = bindings.filter(**{name: wanted[name]})
        if "pool" in wanted:
            bindings = bindings.filter(vm__pool=wanted["pool"])
        return bindings
