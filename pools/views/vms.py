"""VMs: the list of every VM with its pool, host, state and who it is bound to,
and a VM's page with why its host was chosen and what used it."""

from django.db.models import Exists, F, FilteredRelation, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, NullIf
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch

from allocation.models import Binding, VMSwap
from cloud.choices import ServerStatus
from cloud.models import Host, Region
from portal.links import DETAIL_PAGES, object_url
from portal.listing import YES_NO, Column, Filter, Listing, listing_response, yes_no_filter
from portal.roles import Role, role_required

from ..choices import ALIVE_STATES, VMState
from ..models import VM, VMPool
from .common import detail_url

# The fields the list reads (its columns, links and row template).
LIST_FIELDS = [
    "name",
    "pool__name",
    "pool__region__name",
    "state",
    "cloud_status",
    "host_name",
    "ip_address",
    "server_id",
    "error",
    "requested_at",
    "ready_at",
]

# How much of a VM's history its page lists.
VM_HISTORY_SHOWN = 20


def _pools():
    return VMPool.objects.order_by("name").values_list("pk", "name")


def _regions():
    return Region.objects.order_by("name").values_list("pk", "name")


def _hosts():
    hosts = Host.objects.order_by("region__name", "name").values_list("pk", "region__name", "name")
    return [(pk, f"{region} / {name}") for pk, region, name in hosts]


def _on_host(queryset: QuerySet, value: str) -> QuerySet:
    # A VM names its host by name; the same name may exist in another region.
    host = Host.objects.filter(pk=value)
    return queryset.filter(
        host_name=Subquery(host.values("name")[:1]),
        pool__region_id=Subquery(host.values("region_id")[:1]),
    )


def _alive(queryset: QuerySet, value: str) -> QuerySet:
    condition = Q(state__in=ALIVE_STATES)
    return queryset.filter(condition) if value == "yes" else queryset.exclude(condition)


def _bound(queryset: QuerySet, value: str) -> QuerySet:
    held = Exists(Binding.objects.filter(vm=OuterRef("pk"), released_at__isnull=True))
    return queryset.filter(held) if value == "yes" else queryset.exclude(held)


def bound_to(vm: VM) -> str:
    """Who holds the VM now, from the active binding the list query joined."""
    if vm.binding_pk is None:
        return ""
    if vm.bound_user:
        return vm.bound_user
    if vm.bound_seat:
        return f"seat {vm.bound_seat}"
    if vm.bound_terminal:
        return f"terminal {vm.bound_terminal}"
    return "bound"


def _host_url(vm: VM) -> str:
    return detail_url("pools:host-edit", vm.host_pk) if vm.host_pk else ""


def _bound_url(vm: VM) -> str:
    if not vm.binding_pk:
        return ""
    try:
        return detail_url(DETAIL_PAGES["allocation.binding"], vm.binding_pk)
    except NoReverseMatch:
        return ""


class VMListing(Listing):
    title = "VMs"
    noun = "VMs"
    columns = [
        Column("name", "VM", url=lambda vm: detail_url("pools:vm-detail", vm.pk)),
        Column(
            "pool.name",
            "Pool",
            url=lambda vm: detail_url("pools:pool-detail", vm.pool_id),
        ),
        Column(
            "pool.region.name",
            "Region",
            url=lambda vm: detail_url("pools:region-edit", vm.pool.region_id),
        ),
        Column("host_name", "Host", url=_host_url),
        Column("state", "State"),
        Column("cloud_status", "Cloud status"),
        Column("ip_address", "Address"),
        Column(
            "bound",
            "Bound to",
            sort="bound_key",
            value=bound_to,
            url=_bound_url,
        ),
        Column("requested_at", "Requested"),
        Column("ready_at", "Ready"),
        Column("error", "Error", sort=None),
    ]
    filters = [
        Filter("pool", "Pool", _pools, lookup="pool_id"),
        Filter("region", "Region", _regions, lookup="pool__region_id"),
        Filter("state", "State", VMState.choices),
        Filter("alive", "Alive", YES_NO, apply=_alive),
        Filter("host", "Host", _hosts, apply=_on_host),
        Filter("cloud_status", "Cloud status", ServerStatus.choices),
        yes_no_filter("no_ip", "No address", "ip_address__isnull"),
        Filter("bound", "Bound", YES_NO, apply=_bound),
    ]
    search_fields = ["name", "ip_address", "server_id", "active_binding__user__username"]
    search_placeholder = "VM, address, server id, user…"
    default_sort = "-requested_at"
    time_field = "requested_at"
    row_template = "pools/vm_row.html"
    csv_filename = "vms"

    def get_queryset(self):
        # Filters, search and sorting work on the VMs alone; the joins that fill
        # the columns are made for the rows of the page only (see `rows`).
        vms = VM.objects.annotate(active_binding=_active_binding())
        if self.sort.lstrip("-") == "bound":
            # What the column shows; unbound VMs sort as "" on every database.
            vms = vms.alias(
                bound_key=Coalesce(
                    "active_binding__user__username",
                    NullIf("active_binding__seat", Value("")),
                    "active_binding__terminal__serial",
                    Value(""),
                )
            )
        return vms

    def rows(self) -> "_PageRows":
        return _PageRows(super().rows())


def _active_binding() -> FilteredRelation:
    """The VM's active binding: at most one (a unique constraint), so joining it
    never repeats a VM. A new object each time: a query takes it over."""
    return FilteredRelation("bindings", condition=Q(bindings__released_at__isnull=True))


def _vms_with_columns() -> QuerySet:
    """VMs with everything the list's columns show, in one query."""
    host = Host.objects.filter(
        region_id=OuterRef("pool__region_id"), name=OuterRef("host_name")
    ).order_by()
    return (
        VM.objects.select_related("pool__region")
        .only(*LIST_FIELDS)
        .annotate(
            active_binding=_active_binding(),
            binding_pk=F("active_binding__pk"),
            bound_user=F("active_binding__user__username"),
            bound_user_pk=F("active_binding__user_id"),
            bound_seat=F("active_binding__seat"),
            bound_terminal=F("active_binding__terminal__serial"),
            host_pk=Subquery(host.values("pk")[:1]),
        )
    )


class _PageRows:
    """The matching VMs as the paginator and the CSV export read them. A page
    is found on the VM table alone (ten thousand narrow rows sort fast), then
    only its rows are read with their pool, region, host and binding: joining
    every VM before sorting would cost a lookup per VM on every page."""

    ordered = True

    def __init__(self, matching: QuerySet):
        self.matching = matching

    def count(self) -> int:
        return self.matching.count()

    def __getitem__(self, window: slice) -> list[VM]:
        return self._read(list(self.matching[window].values_list("pk", flat=True)))

    def iterator(self, chunk_size: int):
        ids = list(self.matching.values_list("pk", flat=True))
        for start in range(0, len(ids), chunk_size):
            yield from self._read(ids[start : start + chunk_size])

    @staticmethod
    def _read(ids: list[int]) -> list[VM]:
        """These VMs with their columns, in the order of `ids`."""
        found = {vm.pk: vm for vm in _vms_with_columns().filter(pk__in=ids)}
        return [found[pk] for pk in ids if pk in found]


@role_required(Role.VIEWER)
def vm_list(request):
    return listing_response(request, VMListing, template="pools/vm_list.html")


@role_required(Role.VIEWER, Role.OPERATOR)
def vm_detail(request, pk):
    """A VM's page: where it runs and why there, and who used it (bindings,
    sessions, swaps)."""
    vm = get_object_or_404(VM.objects.select_related("pool__region", "pool__feature_class"), pk=pk)
    host = None
    if vm.host_name:
        host = Host.objects.filter(region_id=vm.pool.region_id, name=vm.host_name).first()
    bindings = list(
        vm.bindings.select_related("allocator", "user", "terminal").order_by("-created_at")[
            :VM_HISTORY_SHOWN
        ]
    )
    for binding in bindings:
        binding.detail_url = object_url("allocation.binding", binding.pk)
        binding.terminal_url = (
            object_url("allocation.terminal", binding.terminal_id) if binding.terminal_id else ""
        )
    sessions = list(
        vm.sessions.select_related("user", "terminal").order_by("-started_at")[:VM_HISTORY_SHOWN]
    )
    for session in sessions:
        session.terminal_url = object_url("allocation.terminal", session.terminal_id)
    swaps = (
        VMSwap.objects.filter(Q(old_vm=vm) | Q(new_vm=vm))
        .select_related("old_vm", "new_vm", "incident")
        .order_by("-requested_at")[:VM_HISTORY_SHOWN]
    )
    context = {
        "vm": vm,
        "host": host,
        "candidates": (vm.placement or {}).get("candidates", []),
        "bindings": bindings,
        "sessions": sessions,
        "swaps": swaps,
    }
    return render(request, "pools/vm_detail.html", context)
