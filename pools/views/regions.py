"""Regions: the list of clouds with their hosts and pools counted, a region's page
(facts, its hosts and pools, the settings form for administrators), and the
scheduling policy page that sets the boot caps across regions."""

from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from cloud.choices import DriverKind, HostState
from cloud.models import Host, Region
from portal.listing import Column, Filter, Listing, listing_response, yes_no_filter
from portal.roles import Role, has_role, role_required

from ..choices import ALIVE_STATES
from ..forms import RegionForm, SchedulingPolicyForm
from ..models import VM, SchedulingPolicy, VMPool
from ..selectors import pool_summaries, pool_target
from .common import count_of, detail_url, save_form

# A region page lists this many of its hosts; the host list has them all.
REGION_HOSTS_SHOWN = 50


def _yes_no(value) -> str:
    return "yes" if value else "no"


class RegionListing(Listing):
    title = "Regions"
    noun = "regions"
    columns = [
        Column("name", "Region", url=lambda r: detail_url("pools:region-edit", r.pk)),
        Column("label", "Label"),
        Column("driver", "Driver"),
        Column("enabled", "Enabled", value=lambda r: _yes_no(r.enabled)),
        Column("reachable", "Cloud answering", value=lambda r: _yes_no(r.reachable)),
        Column(
            "host_count",
            "Hosts",
            url=lambda r: f"{reverse('pools:host-list')}?region={r.pk}",
        ),
        Column("hosts_in_service", "Hosts in service"),
        Column(
            "pool_count",
            "Pools",
            url=lambda r: f"{reverse('pools:pool-list')}?region={r.pk}",
        ),
        Column(
            "vm_count",
            "VMs alive",
            url=lambda r: f"{reverse('pools:vm-list')}?region={r.pk}&alive=yes",
        ),
        Column("shared_storage", "Shared storage", value=lambda r: _yes_no(r.shared_storage)),
        Column(
            "place_by_portal",
            "Placement",
            value=lambda r: "DeskOps" if r.place_by_portal else "the cloud's scheduler",
        ),
        Column(
            "max_concurrent_boots",
            "Boot cap",
            value=lambda r: r.max_concurrent_boots if r.max_concurrent_boots else "none",
        ),
        Column("hosts_synced_at", "Hosts synced"),
    ]
    filters = [
        Filter("driver", "Driver", DriverKind.choices),
        yes_no_filter("enabled", "Enabled", "enabled"),
        yes_no_filter("reachable", "Answering", "reachable"),
        yes_no_filter("shared_storage", "Shared storage", "shared_storage"),
    ]
    search_fields = ["name", "label", "openstack_cloud", "openstack_region"]
    search_placeholder = "Name, label, clouds.yaml entry…"
    default_sort = "name"
    row_template = "pools/region_row.html"
    csv_filename = "regions"

    def get_queryset(self):
        return Region.objects.annotate(
            host_count=count_of(Host.objects.all(), "region"),
            hosts_in_service=count_of(
                Host.objects.filter(state=HostState.UP, failed_at__isnull=True), "region"
            ),
            pool_count=count_of(VMPool.objects.all(), "region"),
            vm_count=count_of(VM.objects.filter(state__in=ALIVE_STATES), "pool__region"),
        )


@role_required(Role.VIEWER)
def region_list(request):
    return listing_response(request, RegionListing)


@role_required(Role.VIEWER, Role.ADMINISTRATOR)
def region_edit(request, pk):
    """A region's page: what it is and how it places, its hosts and pools, and
    its settings, which only administrators change."""
    region = get_object_or_404(Region.objects.select_related("simulation"), pk=pk)
    form = None
    if has_role(request.user, Role.ADMINISTRATOR):
        # The form validates a copy, so refused values never show as facts.
        form = RegionForm(request.POST or None, instance=Region.objects.get(pk=region.pk))
        if request.method == "POST" and save_form(request, form, str(region)):
            return redirect("pools:region-edit", pk=region.pk)
    hosts = Host.objects.filter(region=region).order_by("name")
    pools = list(pool_summaries().filter(region=region).prefetch_related("schedules"))
    for pool in pools:
        pool.current_target = pool_target(pool)
    context = {
        "region": region,
        "simulation": getattr(region, "simulation", None),
        "form": form,
        "hosts": hosts[:REGION_HOSTS_SHOWN],
        "host_count": hosts.count(),
        "pools": pools,
        "alive_vms": VM.objects.filter(pool__region=region, state__in=ALIVE_STATES).count(),
    }
    return render(request, "pools/region_detail.html", context)


@role_required(Role.VIEWER, Role.ADMINISTRATOR)
def scheduling(request):
    """The scheduling policy and each region's boot cap and placement mode."""
    policy = SchedulingPolicy.current()
    form = SchedulingPolicyForm(request.POST or None, instance=policy, prefix="policy")
    if request.method == "POST" and save_form(request, form, "the scheduling policy"):
        return redirect("pools:scheduling")
    regions = Region.objects.order_by("name")
    return render(request, "pools/scheduling.html", {"form": form, "regions": regions})
