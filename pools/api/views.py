"""The inventory API (read only, every role): regions, hosts, pools and VMs, for
operators' scripts. Lists come in pages and take validated filters; each page
costs the same few queries whatever its size."""

from django.db.models import Count, Prefetch, Q
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from allocation.models import Binding
from cloud.models import Host, Region
from portal.api.resources import OpsPagination, query_filters
from portal.roles import Role

from ..models import VM
from ..selectors import feature_class_summaries, pool_summaries
from .serializers import (
    FeatureClassSerializer,
    HostFilters,
    HostSerializer,
    PoolDetailSerializer,
    PoolFilters,
    PoolSerializer,
    RegionSerializer,
    VMDetailSerializer,
    VMFilters,
    VMSerializer,
)


class InventoryViewSet(viewsets.ReadOnlyModelViewSet):
    """Read only, for every role; a list validates its filters (`filters_class`)."""

    read_role = Role.VIEWER
    pagination_class = OpsPagination
    filters_class = None

    def list_filters(self) -> dict:
        """The list's validated filters (none for one object)."""
        if self.action != "list" or self.filters_class is None:
            return {}
        return query_filters(self.filters_class, self.request)


@extend_schema_view(
    list=extend_schema(summary="List regions, with their host and pool counts"),
    retrieve=extend_schema(summary="Read one region"),
)
class RegionViewSet(InventoryViewSet):
    """Regions (clouds), by name. Credentials never appear here."""

    serializer_class = RegionSerializer

    def get_queryset(self):
        # distinct: the two joins multiply each other's rows.
        return Region.objects.annotate(
            host_count=Count("hosts", distinct=True),
            pool_count=Count("pools", distinct=True),
        ).order_by("name")


@extend_schema_view(
    list=extend_schema(
        summary="List hosts, by region and name",
        parameters=[HostFilters],
    ),
    retrieve=extend_schema(summary="Read one host"),
)
class HostViewSet(InventoryViewSet):
    """Compute hosts as last reported by their region's driver and host agent."""

    serializer_class = HostSerializer
    filters_class = HostFilters

    def get_queryset(self):
        hosts = Host.objects.select_related("region").order_by("region__name", "name", "pk")
        wanted = self.list_filters()
        if "region" in wanted:
            hosts = hosts.filter(region=wanted["region"])
        if wanted.get("state"):
            hosts = hosts.filter(state__in=wanted["state"])
        if "failed" in wanted:
            hosts = hosts.filter(failed_at__isnull=not wanted["failed"])
        return hosts


@extend_schema_view(
    list=extend_schema(
        summary="List pools, with their ready, booting and in-use VM counts",
        parameters=[PoolFilters],
    ),
    retrieve=extend_schema(
        summary="Read one pool, with its calendar targets",
        responses=PoolDetailSerializer,
    ),
)
class PoolViewSet(InventoryViewSet):
    """VM pools, by name, with their VMs counted by state."""

    filters_class = PoolFilters

    def get_serializer_class(self):
        return PoolSerializer if self.action == "list" else PoolDetailSerializer

    def get_queryset(self):
        pools = pool_summaries().order_by("name")
        if self.action != "list":
            return pools.prefetch_related("schedules")
        wanted = self.list_filters()
        if "region" in wanted:
            pools = pools.filter(region=wanted["region"])
        if "paused" in wanted:
            pools = pools.filter(paused_at__isnull=not wanted["paused"])
        return pools


@extend_schema_view(
    list=extend_schema(
        summary="List VMs, by name; search by name, IP address or server id",
        parameters=[VMFilters],
    ),
    retrieve=extend_schema(
        summary="Read one VM, with why its host was chosen and who holds it",
        responses=VMDetailSerializer,
    ),
)
class VMViewSet(InventoryViewSet):
    """Virtual machines, one per desktop, from request to deletion."""

    filters_class = VMFilters

    def get_serializer_class(self):
        return VMSerializer if self.action == "list" else VMDetailSerializer

    def get_queryset(self):
        vms = VM.objects.select_related("pool__region").order_by("name")
        if self.action != "list":
            active = Binding.objects.filter(released_at__isnull=True).select_related(
                "allocator", "user", "terminal"
            )
            return vms.prefetch_related(
                Prefetch("bindings", queryset=active, to_attr="active_bindings")
            )
        wanted = self.list_filters()
        if "pool" in wanted:
            vms = vms.filter(pool=wanted["pool"])
        if "region" in wanted:
            vms = vms.filter(pool__region=wanted["region"])
        if "host" in wanted:
            vms = vms.filter(host_name=wanted["host"])
        if wanted.get("state"):
            vms = vms.filter(state__in=wanted["state"])
        if "q" in wanted:
            text = wanted["q"]
            vms = vms.filter(
                Q(name__icontains=text)
                | Q(ip_address__icontains=text)
                | Q(server_id__icontains=text)
            )
        return vms


@extend_schema_view(
    list=extend_schema(summary="List feature classes, most urgent first"),
    retrieve=extend_schema(summary="Read one feature class, with its flavor extra specs"),
)
class FeatureClassViewSet(InventoryViewSet):
    """Feature classes (the paper's F): placement weight, urgency, CPU cap and
    boost, and the flavor extra specs they set on OpenStack."""

    serializer_class = FeatureClassSerializer

    def get_queryset(self):
        return feature_class_summaries()
