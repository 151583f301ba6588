"""Hosts: the list of compute nodes with their load, agent readings and
placement state; a host's page with its VMs; clearing a host's boot failures."""

from django.contrib import messages
from django.db.models import F, FloatField, QuerySet, Value
from django.db.models.functions import Cast, Coalesce, NullIf
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from cloud.choices import HostState
from cloud.models import Host, Region
from portal.listing import Column, Filter, Listing, listing_response, yes_no_filter
from portal.roles import Role, has_role, role_required

from ..choices import VMState
from ..forms import HostForm
from ..models import VM, SchedulingPolicy
from ..services import host_clear_failures
from .common import detail_url, redirect_back, save_form, who

# A host page lists this many of its VMs; the VM list filtered on the host has all.
HOST_VMS_SHOWN = 100


def _regions():
    return Region.objects.order_by("name").values_list("pk", "name")


def _placement_groups():
    groups = (
        Host.objects.exclude(placement_group="")
        .order_by("placement_group")
        .values_list("placement_group", flat=True)
        .distinct()
    )
    return [(group, group) for group in groups]


def _with_agent_error(queryset: QuerySet, value: str) -> QuerySet:
    if value == "yes":
        return queryset.exclude(agent_error="")
    return queryset.filter(agent_error="")


def vcpu_text(host: Host) -> str:
    return f"{host.vcpus_used} / {int(host.vcpus * host.cpu_allocation_ratio)}"


def memory_text(host: Host) -> str:
    if not host.memory_mb:
        return ""
    return f"{round(100 * host.memory_mb_used / host.memory_mb)}% of physical"


def agent_text(host: Host) -> str:
    if host.agent_error:
        return host.agent_error
    if host.agent_reported_at:
        return (
            f"load {host.load_1m or 0:.2f} · {host.memory_free_mb or 0} MiB free · "
            f"disk {host.disk_latency_ms or 0:.1f} ms"
        )
    return "no report yet" if host.agent_url else ""


class HostListing(Listing):
    title = "Hosts"
    noun = "hosts"
    columns = [
        Column("name", "Host", url=lambda h: detail_url("pools:host-edit", h.pk)),
        Column(
            "region.name",
            "Region",
            url=lambda h: detail_url("pools:region-edit", h.region_id),
        ),
        Column(
            "placement_group",
            "Group",
            value=lambda h: h.placement_group or h.region.name,
        ),
        Column("state", "State"),
        Column("vcpus_used", "vCPU used / capacity", value=vcpu_text),
        Column("memory_share", "Memory load", sort="memory_key", value=memory_text),
        Column("running_vms", "VMs running"),
        Column(
            "response_ms",
            "Response",
            sort="response_key",
            value=lambda h: "" if h.response_ms is None else f"{h.response_ms:.0f} ms",
        ),
        Column("agent", "Agent", sort="load_key", value=agent_text),
        Column(
            "max_concurrent_boots",
            "Boot cap",
            value=lambda h: h.max_concurrent_boots or "default",
        ),
        Column("boot_failures_in_row", "Failed boots in a row"),
        Column("failed_at", "Failed at"),
    ]
    filters = [
        Filter("region", "Region", _regions, lookup="region_id"),
        Filter("state", "State", HostState.choices),
        yes_no_filter("failed", "Failed", "failed_at__isnull", negate=True),
        Filter("group", "Group", _placement_groups, lookup="placement_group"),
        Filter(
            "agent_error", "Agent error", [("yes", "yes"), ("no", "no")], apply=_with_agent_error
        ),  # fmt: skip
    ]
    search_fields = ["name", "placement_group", "region__name"]
    search_placeholder = "Host, group, region…"
    default_sort = "name"
    row_template = "pools/host_row.html"
    csv_filename = "hosts"

    def get_queryset(self):
        # Unknown values sort as -1: first going up, last going down (the way an
        # operator looks for the busiest host), the same on every database.
        unknown = Value(-1.0)
        share = Cast(F("memory_mb_used"), FloatField()) / Cast(
            NullIf(F("memory_mb"), 0), FloatField()
        )
        return Host.objects.select_related("region").annotate(
            memory_key=Coalesce(share, unknown),
            response_key=Coalesce("response_ms", unknown),
            load_key=Coalesce("load_1m", unknown),
        )


@role_required(Role.VIEWER, Role.OPERATOR)
def host_list(request):
    return listing_response(
        request,
        HostListing,
        template="pools/host_list.html",
        extra={"policy": SchedulingPolicy.current()},
    )


@role_required(Role.VIEWER, Role.OPERATOR)
def host_edit(request, pk):
    """A host's page: its capacity, load and agent readings, the VMs placed on it,
    and the settings operators tune."""
    host = get_object_or_404(Host.objects.select_related("region"), pk=pk)
    form = None
    if has_role(request.user, Role.OPERATOR):
        # The form validates a copy, so refused values never show as facts.
        form = HostForm(request.POST or None, instance=Host.objects.get(pk=host.pk))
        if request.method == "POST" and save_form(request, form, host.name):
            return redirect("pools:host-edit", pk=host.pk)
    vms = (
        VM.objects.filter(pool__region_id=host.region_id, host_name=host.name)
        .exclude(state=VMState.DELETED)
        .select_related("pool")
        .order_by("-requested_at", "-pk")
    )
    context = {
        "host": host,
        "form": form,
        "policy": SchedulingPolicy.current(),
        "vms": vms[:HOST_VMS_SHOWN],
        "vm_count": vms.count(),
        "vm_list_url": f"{reverse('pools:vm-list')}?host={host.pk}",
        "vcpu_text": vcpu_text(host),
        "memory_text": memory_text(host),
    }
    return render(request, "pools/host_detail.html", context)


@role_required(Role.OPERATOR)
@require_POST
def host_clear(request, pk):
    host = get_object_or_404(Host, pk=pk)
    host_clear_failures(host=host, **who(request))
    messages.success(request, f"{host.name} takes placements again.")
    return redirect_back(request, "pools:host-list")
